"""The benchmarks (make bench): run from the repo root as `python -m bench.run_bench`."""
