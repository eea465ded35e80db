"""Side-by-side benchmarks of minibert against transformers (run through scripts/bench.py)."""
