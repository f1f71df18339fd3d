# Every target creates its own virtual environment; nothing is installed outside .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT

.PHONY: run test lint format clean docs bench soak fleet drain-bench dist

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# A stamp per extras set, remade when the package's metadata changes.
$(VENV)/.installed-%: $(BIN)/python setup.cfg setup.py pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[$*]'
	touch $@

## run: serve example_app under gunicorn on $PORT (default 8000), SQLite by default. Its stdout
## is mozlog JSON only (gunicorn's own lines go to stderr), so make echoes none of its commands.
## version.json, written afresh for the current commit, goes where the Flask shim looks by
## default and where the Docker image has it: the parent of the app's directory, the checkout.
run: $(VENV)/.installed-example
	$(BIN)/dockerflow-wsgi version-json --output version.json
	$(BIN)/gunicorn --config example_app/gunicorn.conf.py app:app

.SILENT: run $(BIN)/python $(VENV)/.installed-example

# The build front end alone: building needs none of the extras. It makes its own isolated
# environment with the build system pyproject.toml names.
$(VENV)/.installed-build: $(BIN)/python
	$(BIN)/python -m pip install --quiet 'build>=1.0'
	touch $@

DIST ?= dist
## dist: build the sdist and the wheel into $(DIST) (default dist/), for pip install <wheel>
dist: $(VENV)/.installed-build
	$(BIN)/python -m build --outdir $(DIST) .

# The tests that write summaries and log lines, run again by `make test` with the summary's
# direct write off (dockerflow_wsgi/direct_log.py): both ways must write the same lines.
LOG_TESTS := tests/test_direct_log.py tests/test_logging.py tests/test_configure.py \
	tests/test_mozlog_handler_name.py tests/test_secrets.py tests/test_middleware.py \
	tests/test_asgi.py tests/test_sanic.py

## test: lint, then the whole test suite, then the summary's and logging's tests again with the
## summary written through Logger.handle (DOCKERFLOW_TEST_NO_DIRECT_LOG=1), as plain logging does
test: $(VENV)/.installed-test lint docs
	$(BIN)/python -m pytest
	DOCKERFLOW_TEST_NO_DIRECT_LOG=1 $(BIN)/python -m pytest -m "not servers and not slow" $(LOG_TESTS)

$(VENV)/.installed-bench: $(VENV)/.installed-test benchmarks/requirements.txt
	$(BIN)/python -m pip install --quiet -r benchmarks/requirements.txt
	touch $@

## bench: side-by-side benchmark against the dockerflow package (figures, PASS/FAIL per target)
bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

## fleet: what heartbeats cost PostgreSQL and Redis (counted on the wire) at 1, 10 and 100
## probes/s, on demand / heartbeat_cache_ttl / heartbeat_interval; then the check runs per
## interval per pod for 1, 2, 4 and 8 workers with and without heartbeat_shared, and the log
## lines of a steady failure before and after health_log_repeat; needs both servers running
fleet: $(VENV)/.installed-test
	$(BIN)/python benchmarks/fleet.py $(FLEET_ARGS)
	$(BIN)/python benchmarks/fleet_pod.py $(FLEET_POD_ARGS)

## drain-bench: rolling restarts behind Debian's HAProxy (/usr/sbin/haproxy), gunicorn and uvicorn,
## with plain SIGTERM, `dockerflow-wsgi drain` first, and the gunicorn hook: client-visible errors
## of each, side by side (about 10 minutes; DRAIN_BENCH_ARGS=--quick for one restart each)
drain-bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/drain_bench.py $(DRAIN_BENCH_ARGS)

SOAK_MINUTES ?= 30
## soak: 10^6 requests in one process, then SOAK_MINUTES (30) of gunicorn load with Redis
## restarts (every SOAK_REDIS_RESTART_EVERY minutes, default six in the run); not in CI
soak: $(VENV)/.installed-test
	$(BIN)/python tests/reliability/soak.py inprocess
	$(BIN)/python tests/reliability/soak.py gunicorn --minutes $(SOAK_MINUTES) \
		$(if $(SOAK_REDIS_RESTART_EVERY),--redis-restart-every $(SOAK_REDIS_RESTART_EVERY))

## docs: build the documentation, failing on any warning or unresolved reference
docs: $(VENV)/.installed-test
	$(BIN)/python -m sphinx -n -W --keep-going -q -b html docs docs/_build/html

## lint: ruff's checks and formatting, read-only
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## format: apply ruff's fixes and formatting
format: $(VENV)/.installed-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis docs/_build \
		version.json example_app/*.sqlite3
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
