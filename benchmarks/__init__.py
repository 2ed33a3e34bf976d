"""The product benchmarks: every figure in the docs comes from one of these scripts.

Run each from the repository root as a module, ``python -m benchmarks.bench_store``, so
that it imports this checkout's packages (and the test helpers it shares with the tests).
"""
