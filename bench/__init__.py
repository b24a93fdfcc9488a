"""Benchmarks: ``bench/bench_<name>.py`` modules with ``run() -> list[Figure]``.

Run them all with ``make bench`` (``python -m bench.run_all``), or one with
``python -m bench.run_all bench_checkout``; results go to ``docs/benchmarks.md``.
"""
