# The study's commands. `make help` lists them; the README names the two that matter:
# `make figures` (run every notebook, regenerate every README figure) and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# The Pythons the study supports, newest first (requires-python in pyproject.toml says the same):
# the first of these that runs and is CPython 3.11.5 to 3.14 creates .venv. `make PYTHON=...` overrides.
PYTHON ?= python3.14 python3.13 python3.12 python3.11 python3
SUPPORTED := import sys; sys.exit(not (sys.implementation.name == "cpython" and (3, 11, 5) <= sys.version_info[:3] and sys.version_info[:2] <= (3, 14)))
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check --quiet
DEPS_STAMP := $(VENV)/.installed-deps
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet --allow-unsafe \
	--no-emit-index-url --no-emit-find-links --strip-extras
FIXTURE := tests/fixtures/mnist_784_fixture.npz
# Notebooks run at a time by figures, smoke and verify (empty: the runner's default, 2)
JOBS ?=
RUNNER := $(PY) -m tools.run_notebooks $(if $(JOBS),--jobs $(JOBS))

# The Pythons whose wheels `make check-wheels` asks for: the series of PYTHON above, the oldest
# at its oldest admitted release (pip would read 3.11 as 3.11.0).
WHEEL_PYTHONS := $(patsubst 3.11,3.11.5,$(patsubst python%,%,$(filter python3.%,$(PYTHON))))

.PHONY: help env data figures smoke verify bench test test-full check-wheels lint format lock clean distclean

help: ## List the targets with one line each
	@echo "Usage: make TARGET   (the environment in $(VENV) is created on first use)"
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(DEPS_STAMP): requirements.lock
	@test -x $(PY) || { \
		python=$$(for p in $(PYTHON); do if "$$p" -c '$(SUPPORTED)' 2>/dev/null; then echo "$$p"; break; fi; done); \
		if [ -z "$$python" ]; then \
			echo "error: found no CPython 3.11.5 to 3.14 (tried: $(PYTHON))." >&2; \
			echo "Install one (python.org, your system's packages, or pyenv), or run 'make PYTHON=/path/to/python3.X'." >&2; \
			exit 1; \
		fi; \
		echo "Creating $(VENV) with $$("$$python" --version) ($$python) …"; \
		"$$python" -m venv $(VENV); }
	@echo "Installing the pinned packages of requirements.lock into $(VENV) …"
	@$(PIP) install -r requirements.lock
	@touch $@

# The study's package, installed as a reader installs it (not editable: an editable install's
# .pth file holds the checkout's path, which Python cannot read from a non-ASCII path under
# LC_ALL=C); reinstalled whenever its sources change.
$(STAMP): $(DEPS_STAMP) pyproject.toml $(wildcard src/mnist_study/*.py src/mnist_study/static/*)
	@echo "Installing the study's package into $(VENV) …"
	@$(PIP) install --no-deps --force-reinstall .
	@rm -rf build/lib build/bdist.*  # setuptools' scratch
	@touch $@

# The development set (pytest, ruff, playwright, pip-tools) on top, for the tests and the browser targets.
$(DEV_STAMP): $(STAMP) requirements-dev.lock
	@echo "Installing the development set of requirements-dev.lock into $(VENV) …"
	@$(PIP) install -r requirements-dev.lock
	@touch $@

env: $(STAMP) ## Create .venv (CPython 3.11.5 to 3.14) with the pinned packages a reader needs, and the helper package

data: $(STAMP) ## Fetch, verify and cache MNIST (into data/, or the folder in MNIST_STUDY_DATA_DIR)
	@$(PY) -m tools.fetch_data

figures: data ## Main job: fetch the data, run every notebook (JOBS=1: one at a time), regenerate readme_images/
	@$(RUNNER)

smoke: $(STAMP) ## Run every notebook on the small test fixture into build/smoke (never readme_images/)
	@$(RUNNER) --smoke

verify: data ## Regenerate everything (make figures), then fail, naming them, if git sees a changed file
	@$(RUNNER)
	@changed=$$(git status --porcelain -- notebooks readme_images); \
	if [ -n "$$changed" ]; then echo "error: regenerating changed these files:" >&2; \
		echo "$$changed" >&2; exit 1; fi; echo "verified: notebooks/ and readme_images/ match the commit"

bench: data $(DEV_STAMP) ## Benchmark: book-style baseline vs the main job cold and warm, the KNN search side by side, the widget; about an hour
	@$(PY) -m benchmarks.run

lint: $(DEV_STAMP) ## Check code and notebooks with ruff
	@$(VENV)/bin/ruff check src tools tests benchmarks notebooks
	@$(VENV)/bin/ruff format --check src tools tests benchmarks

format: $(DEV_STAMP) ## Reformat code with ruff
	@$(VENV)/bin/ruff format src tools tests benchmarks
	@$(VENV)/bin/ruff check --fix src tools tests benchmarks notebooks

test: lint ## Run ruff and the offline test suite, the smoke run of every notebook included (marked smoke)
	@$(VENV)/bin/pytest -m "not full_data and not browser"

check-wheels: $(STAMP) ## Ask the package registry whether every pinned package has a wheel for each Python
	@for python in $(WHEEL_PYTHONS); do echo "Python $$python:"; \
		$(PIP) install --dry-run --quiet --no-deps --only-binary=:all: --python-version $$python \
			--target "$$(mktemp -d)" -r requirements.lock -r requirements-dev.lock || exit 1; done

test-full: data $(DEV_STAMP) ## Run the tests that need the full dataset (the book's numbers, the loader's digests)
	@$(VENV)/bin/pytest -m full_data

lock: $(DEV_STAMP) ## Recompile both lock files with pip-compile, keeping their versions (then update environment.yml)
	@$(PIP_COMPILE) --output-file requirements.lock pyproject.toml
	@$(PIP_COMPILE) --output-file requirements-dev.lock requirements-dev.in

clean: ## Remove cached model results and scratch output (keeps the dataset and .venv); refused during a run
	@if [ -x $(PY) ]; then $(PY) -m tools.run_notebooks --clean; else rm -rf .cache build; fi
	rm -rf .pytest_cache .ruff_cache

distclean: clean ## Also remove the dataset cache and the virtual environment
	rm -rf data $(VENV)

# Further targets, grouped by topic (each file has its own .PHONY line and `## ` help texts).
include $(sort $(wildcard mk/*.mk))
