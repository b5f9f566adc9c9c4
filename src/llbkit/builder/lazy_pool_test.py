"""Worker options and the lazy pool (no daemon)."""

from __future__ import annotations

import pytest

from llbkit.builder.lazy_pool import LazyPool, NoWorkersConfiguredError, parse_worker
from llbkit.buildkit import TLSConfig


def test_parse_worker_address_platforms_and_tls() -> None:
    tls = TLSConfig(ca_cert="ca.pem")
    unix = parse_worker("unix:///run/buildkit/buildkitd.sock", tls)
    assert (unix.address, unix.platforms, unix.tls) == ("unix:///run/buildkit/buildkitd.sock", (), None)
    arm = parse_worker(" tcp://10.0.0.6:1234=linux/arm64, linux/arm/v7 ", tls)
    assert arm.address == "tcp://10.0.0.6:1234"
    assert arm.platforms == ("linux/arm64", "linux/arm/v7")
    assert arm.tls is tls  # TLS goes to tcp:// workers only
    assert parse_worker("tcp://h:1=linux/aarch64").platforms == ("linux/arm64",)  # normalized


@pytest.mark.parametrize("text, fragment", [
    ("http://x", "invalid worker 'http://x'"),
    ("tcp://h:1=", "list platforms after '='"),
    ("tcp://h:1=linux", "invalid platform 'linux'"),
])
def test_bad_workers_say_what_to_fix(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match="invalid worker") as e:
        parse_worker(text)
    assert fragment in str(e.value)


def test_nothing_is_contacted_until_get() -> None:
    pool = LazyPool([parse_worker("unix:///nonexistent/buildkitd.sock")])
    assert not pool.started
    got = pool.get()
    assert pool.started and pool.get() is got
    assert [s.reachable for s in got.statuses()] == [None]  # made, not yet checked
    pool.close()
    assert not pool.started


def test_no_workers_and_no_auto_start_is_a_clear_error() -> None:
    with pytest.raises(NoWorkersConfiguredError, match=r"list workers in \[buildkit\].workers, or set \[buildkit\].auto_start = true"):
        LazyPool([], auto_start=False).get()


def test_the_shared_load_reaches_the_pool(tmp_path) -> None:
    from llbkit.buildkit.shared_load import SharedLoad

    load = SharedLoad(tmp_path / "load")
    pool = LazyPool([parse_worker("unix:///nonexistent/buildkitd.sock")], shared_load=load)
    assert pool.get()._shared is load
    pool.close()


def test_the_local_daemon_is_found_through_env(monkeypatch) -> None:
    import llbkit.buildkit.local_daemon as local_daemon

    made = []

    class FakeDaemon:
        def __init__(self, env=None, entitlements=()) -> None:
            made.append((env, tuple(entitlements)))

        def ensure(self) -> str:
            return "unix:///fake/llbkit-cache/buildkitd.sock"

    monkeypatch.setattr(local_daemon, "LocalDaemon", FakeDaemon)
    env = {"LLBKIT_CACHE": "/fake/llbkit-cache", "PATH": "/usr/bin"}
    pool = LazyPool([], env=env, entitlements=["network.host"])
    assert made == []  # nothing started before get()
    (status,) = pool.get().statuses()
    assert made == [(env, ("network.host",))]  # it allows the enabled entitlements
    assert (status.name, status.address) == ("local buildkitd", "unix:///fake/llbkit-cache/buildkitd.sock")
    pool.close()
