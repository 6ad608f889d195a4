# The parts of `make bench`: each writes its own section of benchmarks/RESULTS.md, within the time
# budget of its help line on 2 cores.
.PHONY: bench-cold bench-warm bench-baseline bench-knn bench-widgets

# BENCH_CACHE=folder: bench-cold fills that folder (absent or empty) and keeps it, and bench-warm
# runs on it; else bench-cold uses a temporary folder, and bench-warm the usual results cache.
BENCH_CACHE ?=

bench-cold: data $(DEV_STAMP) ## The main job on an empty cache: time, CPU and peak memory per notebook and its cell (budget 90 min)
	@if [ -n "$(BENCH_CACHE)" ]; then cache="$(abspath $(BENCH_CACHE))"; \
		if [ -n "$$(ls -A "$$cache" 2>/dev/null)" ]; then echo "error: $$cache is not empty" >&2; exit 1; fi; \
	else cache=$$(mktemp -d); trap 'rm -rf "$$cache"' EXIT; fi; \
	MNIST_STUDY_CACHE_DIR=$$cache $(PY) -m benchmarks.cold

bench-warm: data $(DEV_STAMP) ## The main job on a filled cache: all re-executed, nothing changed, one notebook changed (budget 5 min)
	@$(if $(BENCH_CACHE),MNIST_STUDY_CACHE_DIR="$(abspath $(BENCH_CACHE))") $(PY) -m benchmarks.warm

bench-baseline: data $(DEV_STAMP) ## The book's chapter-3 cells as the book runs them, the study's own SVMs beside them (budget 90 min)
	@$(PY) -m benchmarks.baseline

bench-knn: data $(DEV_STAMP) ## The book's KNN grid search on 60,000 images: plain GridSearchCV against shared neighbours (budget 30 min)
	@$(PY) -m benchmarks.knn_search

bench-widgets: data $(DEV_STAMP) ## The drawing widget and the threshold explorer: start and answer times; load_mnist() (budget 10 min)
	@$(PY) -m benchmarks.widgets
