# One command for the main job, one for the tests (see README).
UV ?= $(shell command -v uv 2>/dev/null || echo .venv-bootstrap/bin/uv)
# Telemetry is switched off by the `flows` package itself (flows/__init__.py), for every
# command and test.

.PHONY: install demo test test-fast lint bench

.venv-bootstrap/bin/uv:
	python3 -m venv .venv-bootstrap
	.venv-bootstrap/bin/pip install --quiet "uv>=0.9,<1"

install: $(UV)
	$(UV) sync --frozen

demo: install
	$(UV) run --frozen solvency demo

lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

# Everything: unit, end-to-end, notebooks, browser and database tests.
test: lint
	$(UV) run --frozen pytest

# The inner loop: the same without the tests marked slow.
test-fast: lint
	$(UV) run --frozen pytest -m "not slow"

bench: install
	$(UV) run --frozen python -m benchmarks.bench_generate_ingest
	$(UV) run --frozen python -m benchmarks.bench_features
	$(UV) run --frozen python -m benchmarks.bench_train
	$(UV) run --frozen python -m benchmarks.bench_limits
	$(UV) run --frozen python -m benchmarks.bench_daily
	$(UV) run --frozen python -m benchmarks.bench_decision_store
	$(UV) run --frozen python -m benchmarks.bench_requests
	$(UV) run --frozen python -m benchmarks.bench_workbench
	$(UV) run --frozen python -m benchmarks.bench_learning_curve
	$(UV) run --frozen python -m benchmarks.bench_seeds
	$(UV) run --frozen python -m benchmarks.bench_polish
