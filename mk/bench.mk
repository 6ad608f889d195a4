# Memory, notebook by notebook (issue: a learner's laptop gives a notebook about 2 GB).
.PHONY: bench-memory

bench-memory: data $(DEV_STAMP) ## Each notebook alone on an empty cache: its peak memory (PSS of its processes), the cell, its CPU time
	@cache=$$(mktemp -d); trap 'rm -rf "$$cache"' EXIT; MNIST_STUDY_CACHE_DIR=$$cache $(PY) -m benchmarks.memory
