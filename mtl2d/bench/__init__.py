"""Benchmarks that print ratios against a peer or a measured machine peak.

`python -m mtl2d.bench.dtw` (DTW vs peers); `mtl2d.bench.models` (used by
`experiments/benchmark.py`: train-step time, FLOP/s vs a measured conv peak, XLA memory).
"""
