"""Benchmarks and load tests: run on demand (`make bench`, `make load`), never in `make test`."""
