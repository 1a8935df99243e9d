"""``make bench``: the running system measures itself (``python -m bench [--quick]``).

Benchmarks are tools, not tests: pytest does not collect this package (``testpaths`` is
``tests``); the tests of its pure parts are ``tests/bench_tooling/test_harness.py``. See
``__main__.py`` for what one run does; ``profile`` (one load, CPU and Redis commands a ticket),
``billing_period_close`` and ``triage_throughput`` are run by hand.
"""
