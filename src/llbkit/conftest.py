"""Shared pytest fixtures for every llbkit test: real buildkitd daemons and a seeded registry.

See :mod:`llbkit.testutil.fixtures`. They start only when a test asks for them.
"""

from llbkit.testutil.fixtures import (  # noqa: F401 - pytest finds fixtures and hooks by name
    buildkitd_amd64,
    buildkitd_arm64_tls,
    busybox_image,
    pytest_runtest_makereport,
    registry,
    registry_auth,
    buildkitd_tls_files,
)
