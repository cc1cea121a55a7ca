# The two commands: `make run` serves the seed example, `make test` runs the whole suite.
# Each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: run test lint bench bench-quick fuzz soak dist check-install aiohttp-suite plugins aiohttp-examples autobahn clean

# Dependencies first (scripts/requirements.py reads them from pyproject.toml), then squall itself:
# installed, not editable, because its request path is compiled where the machine can (setup.py);
# reinstalled whenever a source changes. `SQUALL_NO_COMPILE=1 make ...` installs pure Python.
SOURCES := $(shell find src -name '*.py') setup.py pyproject.toml

$(VENV)/.base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PYTHON) scripts/requirements.py | $(PY) -m pip install -q -r /dev/stdin
	touch $@

$(VENV)/.test: $(VENV)/.base
	$(PYTHON) scripts/requirements.py test | $(PY) -m pip install -q -r /dev/stdin
	touch $@

$(VENV)/.bench: $(VENV)/.test
	$(PYTHON) scripts/requirements.py bench | $(PY) -m pip install -q -r /dev/stdin
	touch $@

$(VENV)/.squall: $(VENV)/.base $(SOURCES)
	$(PY) -m pip install -q --no-deps --force-reinstall .
	touch $@

run: $(VENV)/.squall
	$(PY) examples/seed.py

# The suite runs twice: on the sources as Python (PYTHONPATH=src: the pure-Python fallback, and
# what a developer just edited), then on the installed package (compiled, where it could be).
test: $(VENV)/.test $(VENV)/.squall
	PYTHONPATH=src $(PY) -m pytest -q
	$(PY) -m pytest -q
	$(PY) -m ruff check .
	$(PY) -m mypy

lint: $(VENV)/.test
	$(PY) -m ruff check .
	$(PY) -m mypy

bench: $(VENV)/.bench $(VENV)/.squall
	$(PY) benchmarks/run.py

bench-quick: $(VENV)/.bench $(VENV)/.squall
	$(PY) benchmarks/run.py --quick

# A long random fuzzing campaign (SQUALL_FUZZ examples per property; `make test` runs a short,
# deterministic one) and a mixed-load soak of one server (SOAK_SECONDS, 10 minutes by default).
fuzz: $(VENV)/.test $(VENV)/.squall
	SQUALL_FUZZ=$${SQUALL_FUZZ:-5000} $(PY) -m pytest -q tests/test_fuzz.py tests/test_fuzz_multipart.py

soak: $(VENV)/.test $(VENV)/.squall
	$(PY) benchmarks/soak.py

# An sdist and a wheel in dist/ (the wheel compiled for this machine where it can be; `pip
# install` of either elsewhere: docs/install.md), checked by twine. SQUALL_EXPECT_COMPILED=1 makes
# a build that cannot compile fail instead of falling back to pure Python.
dist: $(VENV)/.base
	$(PY) -m pip install -q build twine
	rm -rf dist
	$(PY) -m build --outdir dist .
	$(PY) -m twine check --strict dist/*

# Build the wheel as a user would (a fresh venv outside the checkout, pip's isolated build), install
# it with [testing], check it is compiled, and run the seed example and a pytest file there.
check-install:
	$(PYTHON) scripts/check_install.py

# aiohttp's own server-side tests, unmodified, on aiohttp and on squall through
# install_as_aiohttp(); downloads aiohttp's sdist into build/. Minutes; not in `test`: CI runs
# it on squall with ARGS="--squall-only --check" (fails on a failure not in the known list).
aiohttp-suite: $(VENV)/.test
	$(PY) scripts/aiohttp_suite.py $(ARGS)

# The unmodified tests of five aiohttp plugins (aiohttp-jinja2, -session, -cors, -sse, -security),
# on aiohttp and on squall through install_as_aiohttp(); downloads their sdists into
# build/plugins/. A few minutes; not in `test`. One plugin: make plugins ARGS="--plugins aiohttp-sse"
plugins: $(VENV)/.test
	$(PY) scripts/plugins.py $(ARGS)

# aiohttp's own server-side example programs (its sdist's examples/, into build/), unmodified, on
# aiohttp and on squall through the alias: what their clients see, compared. Uses port 8080.
aiohttp-examples: $(VENV)/.test
	$(PY) scripts/aiohttp_examples.py $(ARGS)

# Autobahn|Testsuite's fuzzing client (Python 2.7, installed into build/autobahn/) against
# squall's aiohttp.web and ASGI echoes and aiohttp's, all 517 cases: about half an hour, most of
# it the 12.*/13.* deflate cases; not in `test`. Exits 1 on a FAILED case of squall's.
# A subset: make autobahn ARGS="--exclude '12.*,13.*'" (or --cases '6.*,7.*', --jobs 3, ...).
autobahn: $(VENV)/.test $(VENV)/.squall
	$(PY) scripts/autobahn.py $(ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
