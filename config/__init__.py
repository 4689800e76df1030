"""The shipped configuration files (master scale, limit policy, monitoring, production example).

They are package data: an installed wheel carries them, and code finds them with
`importlib.resources` instead of a path relative to a source checkout.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def packaged(name: str) -> Path:
    """The path of a shipped configuration file (wheels install it as a real file)."""
    return Path(str(files(__name__).joinpath(name)))
