# One command for the main job, one for the tests (see README).
UV ?= $(shell command -v uv 2>/dev/null || echo .venv-bootstrap/bin/uv)
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export MLFLOW_DISABLE_TELEMETRY ?= true
export DO_NOT_TRACK ?= 1

.PHONY: install demo test lint bench

.venv-bootstrap/bin/uv:
	python3 -m venv .venv-bootstrap
	.venv-bootstrap/bin/pip install --quiet "uv>=0.9,<1"

install: $(UV)
	$(UV) sync --frozen

demo: install
	$(UV) run --frozen solvency demo

test: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen pytest

bench: install
	$(UV) run --frozen python -m benchmarks.bench_generate_ingest
	$(UV) run --frozen python -m benchmarks.bench_features
	$(UV) run --frozen python -m benchmarks.bench_train
	$(UV) run --frozen python -m benchmarks.bench_limits
	$(UV) run --frozen python -m benchmarks.bench_daily
	$(UV) run --frozen python -m benchmarks.bench_polish
