"""Developer scripts: run from the repo root as `python -m scripts.<name>`."""
