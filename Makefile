# Two commands for a fresh machine:  make run  (set up + quickstart)   make test  (set up + tests)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STUDY ?= studies/quickstart.yaml

.PHONY: install run test lint clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,onnx]"
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) -m mote_optuna run $(STUDY)
	$(PY) -m mote_optuna report $(STUDY)

test: install
	.ci/with_postgres.sh $(PY) -m pytest -q -n auto --dist worksteal

lint: install
	$(PY) -m ruff check mote_optuna tests examples
	$(PY) -m ruff format --check mote_optuna tests examples
	$(PY) -m mypy

clean:
	rm -rf $(VENV) studies/*.db studies/*-report
