"""``make bench``: the running system measures itself (``python -m tests.bench [--quick]``).

Benchmarks are not tests: nothing here is named ``test_*`` except the small test of the
harness's pure parts (``test_harness.py``). See ``__main__.py`` for what one run does.
"""
