"""The package works where it is installed, not only in the developer's checkout.

Builds the wheel, installs it with the locked dependencies into a fresh virtual environment,
and from a folder outside the checkout runs `solvency --help` and a tiny book end to end
(generate, ingest, train, promote, score) on the embedded defaults: the configuration files
travel as package data, and every file the run writes lands under that folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _uv() -> str:
    """uv from PATH, or the copy `make` bootstraps into .venv-bootstrap."""
    found = shutil.which("uv") or str(ROOT / ".venv-bootstrap" / "bin" / "uv")
    assert Path(found).exists(), "uv is needed to build the wheel: run `make install` first"
    return found


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=1200
    )
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.slow
def test_the_wheel_installs_and_scores_a_tiny_book_outside_the_checkout(tmp_path):
    uv = _uv()
    _run(uv, "build", "--wheel", "--out-dir", tmp_path / "dist", ROOT, cwd=ROOT)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    requirements = tmp_path / "requirements.txt"
    _run(uv, "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes",
         "-o", requirements, cwd=ROOT)  # fmt: skip
    venv = tmp_path / "venv"
    _run(uv, "venv", "--python", sys.executable, venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(uv, "pip", "install", "--python", python, "-r", requirements, wheel, cwd=tmp_path)

    work = tmp_path / "work"
    work.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SOLVENCY_", "MLFLOW_TRACKING", "PYTHON", "VIRTUAL_ENV"))
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    installed = _run(python, "-c", "import models, config; print(models.__file__, "
                     "config.packaged('master_scale.toml'))", cwd=work, env=env)  # fmt: skip
    assert str(ROOT) not in installed and "site-packages" in installed

    solvency = venv / "bin" / "solvency"
    assert "rescore" in _run(solvency, "--help", cwd=work, env=env)
    _run(solvency, "generate", "--buyers", "300", "--months", "48", "--default-rate", "0.06",
         "--out", "book", cwd=work, env=env)  # fmt: skip
    _run(solvency, "ingest", "book", "--load-date", "2026-11-30", cwd=work, env=env)
    _run(solvency, "train", cwd=work, env=env)
    _run(solvency, "promote", cwd=work, env=env)
    scored = _run(solvency, "score", "--as-of", "2026-11-30", cwd=work, env=env)
    assert "buyers by grade (model v1)" in scored

    import pandas as pd

    scores = next(
        (work / "data" / "lake" / "outputs" / "daily" / "2026-11-30").glob("*/scores.parquet")
    )
    frame = pd.read_parquet(scores)
    assert len(frame) == 300 and frame["pd"].between(0, 1).all()
    assert (work / "data" / "mlflow" / "artifacts").is_dir() and not (work / "mlruns").exists()
