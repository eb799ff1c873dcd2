"""Benchmarks (`python -m mtl2d.bench.dtw`)."""
