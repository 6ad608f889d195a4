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
# The runner's settings. JOBS: notebooks run at a time; RERUN=1: run each notebook even if nothing
# it depends on changed (make verify does); NOTEBOOKS: which ones (all those numbered, by default);
# PROGRESS: seconds between the lines saying that a long cell still runs.
JOBS ?= 2
RERUN ?=
PROGRESS ?= 30
NOTEBOOK_DIR ?= notebooks
FIGURE_DIR ?= readme_images
BUILD_DIR ?= build
NOTEBOOKS ?= $(notdir $(wildcard $(NOTEBOOK_DIR)/[0-9][0-9]_*.ipynb))
SMOKE_DIR := $(BUILD_DIR)/smoke
# Nothing changes .venv while a run holds $(BUILD_DIR)/run.lock (the run itself excepted).
FREE = $(PY) -m tools.run_notebooks free $(BUILD_DIR)
# A run: the lock's holder checks the folders, takes the lock and starts a make of its own, which
# installs, fetches the data and executes each notebook whose inputs changed (the rules at the end).
RUN = exec $(PY) -m tools.run_notebooks run $(BUILD_DIR) $(2) $(MAKE) --no-print-directory \
	-j$(JOBS) MODE=$(1)

# The Pythons whose wheels `make check-wheels` asks for: the series of PYTHON above, the oldest
# at its oldest admitted release (pip would read 3.11 as 3.11.0).
WHEEL_PYTHONS := $(patsubst 3.11,3.11.5,$(patsubst python%,%,$(filter python3.%,$(PYTHON))))

.PHONY: help env data figures smoke verify bench test test-full check-wheels lint format lock clean distclean FORCE

help: ## List the targets with one line each
	@echo "Usage: make TARGET   (the environment in $(VENV) is created on first use)"
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

# A .venv without pip (its creation was interrupted) is created again.
$(DEPS_STAMP): requirements.lock
	@$(PY) -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV); \
		python=$$(for p in $(PYTHON); do if "$$p" -c '$(SUPPORTED)' 2>/dev/null; then echo "$$p"; break; fi; done); \
		if [ -z "$$python" ]; then \
			echo "error: found no CPython 3.11.5 to 3.14 (tried: $(PYTHON))." >&2; \
			echo "Install one (python.org, your system's packages, or pyenv), or run 'make PYTHON=/path/to/python3.X'." >&2; \
			exit 1; \
		fi; \
		echo "Creating $(VENV) with $$("$$python" --version) ($$python) …"; \
		"$$python" -m venv $(VENV); }
	@if [ -f $@ ]; then $(FREE); fi
	@echo "Installing the pinned packages of requirements.lock into $(VENV) …"
	@$(PIP) install -r requirements.lock
	@touch $@

# The study's package, installed as a reader installs it (not editable: an editable install's
# .pth file holds the checkout's path, which Python cannot read from a non-ASCII path under
# LC_ALL=C); reinstalled whenever its sources change.
$(STAMP): $(DEPS_STAMP) pyproject.toml $(wildcard src/mnist_study/*.py src/mnist_study/static/*)
	@$(FREE)
	@echo "Installing the study's package into $(VENV) …"
	@$(PIP) install --no-deps --force-reinstall .
	@rm -rf build/lib build/bdist.*  # setuptools' scratch
	@touch $@

# The development set on top: the runner's tools (papermill, nbstripout, tqdm), the tests' and the
# browser targets' (pytest, ruff, playwright), pip-tools.
$(DEV_STAMP): $(STAMP) requirements-dev.lock
	@$(FREE)
	@echo "Installing the development set of requirements-dev.lock into $(VENV) …"
	@$(PIP) install -r requirements-dev.lock
	@touch $@

env: $(STAMP) ## Create .venv (CPython 3.11.5 to 3.14) with the pinned packages a reader needs, and the helper package

data: $(STAMP) ## Fetch, verify and cache MNIST (into data/, or the folder in MNIST_STUDY_DATA_DIR)
	@$(PY) -m tools.fetch_data

ifndef MNIST_STUDY_RUN
figures: $(DEPS_STAMP) ## Main job: fetch the data, run each notebook whose code, library, lock file or data changed, place it and its figures
	+@$(call RUN,full,$(NOTEBOOK_DIR) $(FIGURE_DIR)) notebooks

smoke: $(DEPS_STAMP) ## The same on the small test fixture, into build/smoke (never readme_images/)
	+@$(call RUN,smoke,$(SMOKE_DIR)/notebooks $(SMOKE_DIR)/readme_images) notebooks

verify: $(DEPS_STAMP) ## Run every notebook (RERUN=1), then fail, naming them, if git sees a changed file
	+@$(call RUN,full,$(NOTEBOOK_DIR) $(FIGURE_DIR)) RERUN=1 notebooks
	@changed=$$(git status --porcelain -- $(NOTEBOOK_DIR) $(FIGURE_DIR)); \
	if [ -n "$$changed" ]; then echo "error: regenerating changed these files:" >&2; \
		echo "$$changed" >&2; exit 1; fi; echo "verified: notebooks/ and readme_images/ match the commit"

# One notebook: `make notebooks/04_multiclass_error_analysis.ipynb`, or build/smoke/notebooks/… .
$(NOTEBOOK_DIR)/%.ipynb: $(DEPS_STAMP) FORCE
	+@$(call RUN,full,$(NOTEBOOK_DIR) $(FIGURE_DIR)) $@
$(SMOKE_DIR)/notebooks/%.ipynb: $(DEPS_STAMP) FORCE
	+@$(call RUN,smoke,$(SMOKE_DIR)/notebooks $(SMOKE_DIR)/readme_images) $@
endif

bench: data $(DEV_STAMP) ## Every part below, one after the other: bench-cold, -warm, -baseline, -knn, -widgets (budget 4 h)
	@for part in cold warm baseline knn widgets; do $(MAKE) --no-print-directory bench-$$part || exit 1; done

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

clean: ## Empty the results cache (.cache/ or MNIST_STUDY_CACHE_DIR) and build/ (keeps the dataset and .venv); refused during a run
	@if [ -f $(STAMP) ]; then $(PY) -m tools.run_notebooks clean $(BUILD_DIR); else rm -rf .cache $(BUILD_DIR); fi
	rm -rf .pytest_cache .ruff_cache

distclean: clean ## Also remove the dataset cache and the virtual environment
	rm -rf data $(VENV)

# Inside a run (the lock's holder sets MNIST_STUDY_RUN): one rule per notebook. Its key, the digest
# of its code cells, the library, requirements.lock and the data (or fixture), is rewritten only when
# it changes; the notebook runs when its key is newer than it (or RERUN=1). Make stops starting
# notebooks at the first failure and lets those running finish.
ifdef MNIST_STUDY_RUN
ifeq ($(MODE),smoke)
OUT_NOTEBOOKS := $(SMOKE_DIR)/notebooks
OUT_FIGURES := $(SMOKE_DIR)/readme_images
FIXTURE_CACHE := $(abspath $(BUILD_DIR))/smoke-cache
READY := $(DEV_STAMP)
else
OUT_NOTEBOOKS := $(NOTEBOOK_DIR)
OUT_FIGURES := $(FIGURE_DIR)
FIXTURE_CACHE :=
READY := data $(DEV_STAMP)
endif
KEYS := $(BUILD_DIR)/keys/$(MODE)
.PHONY: notebooks
.PRECIOUS: $(OUT_NOTEBOOKS)/%.ipynb $(KEYS)/%.key

notebooks: $(addprefix $(OUT_NOTEBOOKS)/,$(NOTEBOOKS))
	@:
$(KEYS)/%.key: FORCE | $(READY)
	@$(PY) -m tools.run_notebooks key $(NOTEBOOK_DIR)/$*.ipynb $@ $(MODE)
$(OUT_NOTEBOOKS)/%.ipynb: $(KEYS)/%.key $(if $(RERUN),FORCE) | $(READY)
	@$(PY) -m tools.execute $(NOTEBOOK_DIR)/$*.ipynb $(OUT_NOTEBOOKS) $(OUT_FIGURES) \
		$(BUILD_DIR)/runs/$(MODE)/$* $(PROGRESS) $(FIXTURE_CACHE)
endif

FORCE:

# Further targets, grouped by topic (each file has its own .PHONY line and `## ` help texts).
include $(sort $(wildcard mk/*.mk))
