"""Versioned YAML configuration files (limit policy, monitoring): one way to read them.

Each file is validated by a frozen pydantic model that refuses unknown fields; every error
names the field by its path in the file (`capacity.equity_multiple.3: Input should be
greater than or equal to 0`), so the manager editing the file sees what to fix. The loaded
object carries the SHA-256 of the file's bytes, logged beside its version.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError


class StrictModel(BaseModel):
    """A configuration section: unknown keys are errors, the loaded value is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Config = TypeVar("Config", bound=BaseModel)


def _field_path(location: tuple) -> str:
    return ".".join(str(part) for part in location) or "(top level)"


def validate_config(
    model: type[Config], config: object, source: str, error: type[Exception]
) -> Config:
    """Validate an already-parsed mapping; `error` lists every bad field by its path."""
    if not isinstance(config, dict):
        raise error(f"{source}: expected a mapping of settings, got {type(config).__name__}")
    try:
        return model.model_validate(config)
    except ValidationError as exc:
        lines = [f"  {_field_path(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise error(f"{source} is invalid:\n" + "\n".join(lines)) from None


def load_config(model: type[Config], path: str | Path, what: str, error: type[Exception]) -> Config:
    """Read, parse and validate a YAML file; the result carries the file's fingerprint."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read the {what} {path}: {exc.strerror}") from None
    try:
        config = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise error(f"{path} is not valid YAML: {exc}") from None
    parsed = validate_config(model, config, str(path), error)
    return parsed.model_copy(update={"fingerprint": hashlib.sha256(raw).hexdigest()})
