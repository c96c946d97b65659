# Everything runs from a project-local virtualenv that `make` creates from uv.lock on first use.
# Nothing here resolves versions except `make lock` and `make upgrade`: a fresh machine
# installs exactly what CI tested, whatever the package index serves that day.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.synced-stamp

# uv itself comes from requirements/uv.txt (one pinned version, every wheel's hash), in a
# virtualenv of its own, so the only thing a machine needs is Python with venv and pip.
UV_VENV := .venv-uv
UV      := $(UV_VENV)/bin/uv
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS    := never

# uv's own export line, kept stable so `make lint` can tell a stale function/requirements.txt.
EXPORT_FUNCTION := $(UV) export --frozen --only-group function --no-emit-project --no-header --format requirements.txt

.PHONY: test test-fast lint demo bench install lock upgrade clean

include mk/infra.mk

install: $(STAMP)

$(UV): requirements/uv.txt
	test -x $(UV_VENV)/bin/python || $(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install --quiet --require-hashes --no-deps -r requirements/uv.txt
	touch $(UV)

$(STAMP): uv.lock pyproject.toml $(UV)
	$(UV) sync --locked --all-extras --python $(PYTHON) --quiet
	touch $(STAMP)

# Four workers on two cores: most of the suite waits on servers and subprocesses starting.
# --dist loadfile keeps each file's module-scoped stacks in one worker.
test: $(STAMP)
	$(PY) -m pytest -q -n 4 --dist loadfile

# The edit loop: unit tests and the function's wire tests (no deploys, no wheels, no stacks).
test-fast: $(STAMP)
	$(PY) -m pytest -q -m fast -n 4 --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	mkdir -p .mypy-path && ln -sfn ../deployer .mypy-path/vertex_cron && ln -sfn ../local .mypy-path/vertex_cron_local && ln -sfn ../function/vertex_cron_trigger .mypy-path/vertex_cron_trigger
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy function/main.py
	$(UV) lock --check --quiet
	$(EXPORT_FUNCTION) --quiet | cat mk/function-requirements-header.txt - | diff -u function/requirements.txt - \
	  || { echo "function/requirements.txt is not uv.lock's: run make lock"; exit 1; }

demo: $(STAMP)
	$(VENV)/bin/vertex-cron local demo

bench: $(STAMP)
	$(PY) -m bench

# Resolve pyproject.toml's ranges into uv.lock (changing only what they force), then export
# the function's runtime with exact pins and hashes. Commit both files together.
lock: $(UV)
	$(UV) lock
	$(EXPORT_FUNCTION) --quiet | cat mk/function-requirements-header.txt - > function/requirements.txt

# A deliberate upgrade: the newest versions the ranges allow, then the whole suite.
upgrade: $(UV)
	$(UV) lock --upgrade
	$(MAKE) lock lint test

clean:
	rm -rf $(VENV) $(UV_VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
