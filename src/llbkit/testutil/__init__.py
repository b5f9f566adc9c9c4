"""Test support: real daemons (buildkitd, a registry) and a tiny busybox base image.

Plain classes and functions, usable without pytest (the Pants-side tests and benchmarks reuse
them); pytest fixtures on top live in :mod:`llbkit.testutil.fixtures`. Load those with
``pytest_plugins = ["llbkit.testutil.fixtures"]`` in a conftest.

Everything these helpers start is stopped by PID (``stop()``, and an ``atexit`` backstop), on
loopback addresses only, with its state in temporary directories that are removed afterwards.
"""

from __future__ import annotations

from llbkit.testutil.errors import FixtureError

__all__ = ["FixtureError"]
