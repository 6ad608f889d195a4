# Memory: a learner's laptop gives a notebook about 2 GB, and the main job about 4 GB.
.PHONY: bench-memory

bench-memory: data $(DEV_STAMP) ## The main job on an empty cache: its peak memory and each notebook's (PSS), the cells, the CPU times
	@cache=$$(mktemp -d); trap 'rm -rf "$$cache"' EXIT; MNIST_STUDY_CACHE_DIR=$$cache $(PY) -m benchmarks.memory
