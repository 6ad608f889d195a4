# The study's commands. `make help` lists them; the README names the two that matter:
# `make figures` (run every notebook, regenerate every README figure) and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check --quiet
STAMP := $(VENV)/.installed
FIXTURE := tests/fixtures/mnist_784_fixture.npz
# Notebooks run at a time by figures, smoke and verify (empty: the runner's default, 2)
JOBS ?=
RUNNER := $(PY) -m tools.run_notebooks $(if $(JOBS),--jobs $(JOBS))

.PHONY: help env data figures smoke verify bench test test-full lint format lock clean distclean

help: ## List the targets with one line each
	@echo "Usage: make TARGET   (the environment in $(VENV) is created on first use)"
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11'" >&2; exit 1; }
	@echo "Creating $(VENV) with $$($(PYTHON) --version) and the pinned packages of requirements.lock …"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PIP) install -r requirements.lock
	@$(PIP) install --no-deps -e .
	@touch $@

env: $(STAMP) ## Create .venv (Python 3.11) with the pinned packages and the helper package

data: $(STAMP) ## Fetch, verify and cache MNIST (into data/, or the folder in MNIST_STUDY_DATA_DIR)
	@$(PY) -m mnist_study.data

figures: data ## Main job: fetch the data, run every notebook (JOBS=1: one at a time), regenerate readme_images/
	@$(RUNNER)

smoke: $(STAMP) ## Run every notebook on the small test fixture into build/smoke (never readme_images/)
	@$(RUNNER) --smoke

verify: data ## Regenerate everything from the full data; fail, naming files, if any differs from git
	@$(RUNNER) --check

bench: data ## Benchmark: book-style baseline vs make figures cold and warm (ratios, memory); 10–25 min
	@$(PY) -m benchmarks.run

lint: $(STAMP) ## Check code and notebooks with ruff
	@$(VENV)/bin/ruff check src tools tests benchmarks notebooks
	@$(VENV)/bin/ruff format --check src tools tests benchmarks

format: $(STAMP) ## Reformat code with ruff
	@$(VENV)/bin/ruff format src tools tests benchmarks
	@$(VENV)/bin/ruff check --fix src tools tests benchmarks notebooks

test: lint ## Run ruff and the offline test suite (no network, uses the committed fixture)
	@$(VENV)/bin/pytest -m "not full_data and not browser"

test-full: data ## Run the tests that need the full dataset (the book's numbers, the loader's digests)
	@$(VENV)/bin/pytest -m full_data

lock: $(STAMP) ## Rewrite requirements.lock from the current .venv (then update environment.yml)
	@{ sed -n '1,3p' requirements.lock; $(PIP) freeze --exclude-editable; } > requirements.lock.new
	@mv requirements.lock.new requirements.lock

clean: ## Remove cached model results and scratch output (keeps the dataset and .venv)
	rm -rf .cache build .pytest_cache .ruff_cache

distclean: clean ## Also remove the dataset cache and the virtual environment
	rm -rf data $(VENV)

# Further targets, grouped by topic (each file has its own .PHONY line and `## ` help texts).
include $(sort $(wildcard mk/*.mk))
