"""unlearnkit benchmarks: speed and memory of our path against a naive baseline, side by side.

Run ``python -m benchmarks.run [--quick] [--only NAME] [--json PATH]``; see README.md.
"""
