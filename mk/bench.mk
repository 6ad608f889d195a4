# Memory: a learner's laptop gives a notebook about 2 GB, and the main job about 4 GB.
.PHONY: bench-memory bench-warm

# BENCH_CACHE=folder: the run fills that folder (absent or empty) and keeps it; else a temporary one.
BENCH_CACHE ?=

bench-memory: data $(DEV_STAMP) ## The main job on an empty cache: its peak memory and each notebook's (PSS), the cells, the CPU times
	@if [ -n "$(BENCH_CACHE)" ]; then cache="$(abspath $(BENCH_CACHE))"; \
		if [ -n "$$(ls -A "$$cache" 2>/dev/null)" ]; then echo "error: $$cache is not empty" >&2; exit 1; fi; \
	else cache=$$(mktemp -d); trap 'rm -rf "$$cache"' EXIT; fi; \
	MNIST_STUDY_CACHE_DIR=$$cache $(PY) -m benchmarks.memory

bench-warm: data $(DEV_STAMP) ## The main job warm: all re-executed, nothing changed, one notebook changed; into RESULTS.md
	@$(PY) -m benchmarks.warm
