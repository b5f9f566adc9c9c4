"""pytest fixtures: real buildkitd daemons and a seeded registry, one of each per test session.

Load them from a conftest (``from llbkit.testutil.fixtures import *``, or
``pytest_plugins = ["llbkit.testutil.fixtures"]`` in a root conftest). Session-scoped, started
on first use and stopped by PID at the end of the session:

- ``buildkitd_amd64``: :class:`Buildkitd` on a unix socket, native linux/amd64 (emulates arm64);
  it grants the ``network.host`` entitlement to builds that ask for it (``--allow network.host``).
- ``buildkitd_arm64_tls``: :class:`Buildkitd` whose native platform is linux/arm64, on
  ``tcp://127.0.0.1:PORT`` with mutual TLS (``.tls``, ``.tls_dir``, ``.ca_cert``...).
- ``registry``: :class:`Registry` on 127.0.0.1:PORT seeded with the busybox index
  (``.busybox_ref`` = ``127.0.0.1:PORT/busybox:latest``, ``.busybox`` = :class:`BusyboxImage`).
- ``registry_auth``: a second registry requiring basic auth (``.auth`` = (user, password)),
  also seeded with busybox.
- ``busybox_image``: the cached busybox OCI layout; ``buildkitd_tls_files``: the CA, server and
  client certificates of ``buildkitd_arm64_tls``.

A fixture that cannot start (a tool missing, a port taken, a daemon dying at start) fails every
test that uses it at once, with a message saying what is missing and how to install it. When a
test fails, the tails of the logs of the daemons it used are added to its report.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from llbkit.testutil.buildkitd import Buildkitd, delete_runc_containers
from llbkit.testutil.busybox_image import BusyboxImage, busybox_image as _busybox_image
from llbkit.testutil.certs import TLSFiles, make_tls_files
from llbkit.testutil.errors import FixtureError
from llbkit.testutil.procs import make_temp_dir, remove_tree, sweep_stale_temp_dirs
from llbkit.testutil.registry import Registry

__all__ = [
    "busybox_image",
    "buildkitd_amd64",
    "buildkitd_arm64_tls",
    "registry",
    "registry_auth",
    "buildkitd_tls_files",
    "pytest_runtest_makereport",
]

REGISTRY_AUTH = ("llbkit", "test-password")


def _fail(err: FixtureError) -> None:
    pytest.fail(f"test environment: {err}", pytrace=False)


@pytest.fixture(scope="session")
def busybox_image() -> BusyboxImage:
    try:
        return _busybox_image()
    except FixtureError as e:
        _fail(e)
        raise


@pytest.fixture(scope="session")
def buildkitd_tls_files() -> Iterator[TLSFiles]:
    path = make_temp_dir("tls")
    try:
        yield make_tls_files(path)
    except FixtureError as e:
        _fail(e)
    finally:
        remove_tree(path)


_swept = False


def _serve(daemon: "Buildkitd | Registry", seed: "BusyboxImage | None" = None) -> Iterator:
    global _swept
    if not _swept:  # dirs left by sessions that were killed outright
        _swept = True
        sweep_stale_temp_dirs(before_remove=delete_runc_containers)
    try:
        daemon.start()
        if seed is not None:
            daemon.seed_busybox(seed)  # type: ignore[union-attr]
    except FixtureError as e:
        daemon.stop()
        _fail(e)
    except BaseException:
        daemon.stop()
        raise
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def buildkitd_amd64() -> Iterator[Buildkitd]:
    # network.host: the LLB examples check that network none cannot reach the registry against a
    # control run with network host, which buildkitd refuses unless the daemon allows it.
    daemon = Buildkitd(
        name="buildkitd_amd64", extra_args=["--allow-insecure-entitlement", "network.host"]
    )
    yield from _serve(daemon)


@pytest.fixture(scope="session")
def buildkitd_arm64_tls(buildkitd_tls_files: TLSFiles) -> Iterator[Buildkitd]:
    daemon = Buildkitd(
        name="buildkitd_arm64_tls", platform="linux/arm64", tcp=True, tls=buildkitd_tls_files
    )
    yield from _serve(daemon)


@pytest.fixture(scope="session")
def registry(busybox_image: BusyboxImage) -> Iterator[Registry]:
    yield from _serve(Registry(name="registry"), seed=busybox_image)


@pytest.fixture(scope="session")
def registry_auth(busybox_image: BusyboxImage) -> Iterator[Registry]:
    yield from _serve(Registry(name="registry_auth", auth=REGISTRY_AUTH), seed=busybox_image)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for name, value in getattr(item, "funcargs", {}).items():
        if isinstance(value, (Buildkitd, Registry)) and value.state_dir is not None:
            header = f"{name} (pid {value.pid if value.running() else 'exited'}) {value.log_path}"
            report.sections.append((header, value.log_tail(40)))
