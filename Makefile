# Two commands for a fresh machine:  make run  (set up + quickstart)   make test  (set up + tests)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STUDY ?= studies/quickstart.yaml

.PHONY: install run test test-slow test-all lint clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,onnx]"
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) -m mote_optuna run $(STUDY)
	$(PY) -m mote_optuna report $(STUDY)

# every test but the few marked slow (minutes of one core each), on every core
test: install
	.ci/with_postgres.sh $(PY) -m pytest -q -n auto --dist worksteal -m "not slow"

# the slow ones (CI runs them after `make test`)
test-slow: install
	$(PY) -m pytest -q -n auto --dist worksteal -m slow

test-all: test test-slow

lint: install
	$(PY) -m ruff check mote_optuna tests examples scripts
	$(PY) -m ruff format --check mote_optuna tests examples scripts
	$(PY) -m mypy

clean:
	rm -rf $(VENV) studies/*.db studies/*-report
