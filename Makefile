# The two commands: `make run` serves the seed example, `make test` runs the whole suite.
# Each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: run test lint bench bench-quick fuzz soak clean

$(VENV)/.base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test: $(VENV)/.base
	$(PY) -m pip install -q -e '.[test]'
	touch $@

$(VENV)/.bench: $(VENV)/.test
	$(PY) -m pip install -q -e '.[bench]'
	touch $@

run: $(VENV)/.base
	$(PY) examples/seed.py

test: $(VENV)/.test
	$(PY) -m pytest -q
	$(PY) -m ruff check .
	$(PY) -m mypy

lint: $(VENV)/.test
	$(PY) -m ruff check .
	$(PY) -m mypy

bench: $(VENV)/.bench
	$(PY) benchmarks/run.py

bench-quick: $(VENV)/.bench
	$(PY) benchmarks/run.py --quick

# A long random fuzzing campaign (SQUALL_FUZZ examples per property; `make test` runs a short,
# deterministic one) and a mixed-load soak of one server (SOAK_SECONDS, 10 minutes by default).
fuzz: $(VENV)/.test
	SQUALL_FUZZ=$${SQUALL_FUZZ:-5000} $(PY) -m pytest -q tests/test_fuzz.py tests/test_fuzz_multipart.py

soak: $(VENV)/.test
	$(PY) benchmarks/soak.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
