"""Machine settings (no daemon): the JSON file the Pants backend writes and build processes read,
the workers they name, clear errors for a missing or damaged file, and secret values kept out
of every repr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llbkit.builder.settings import SETTINGS_FILE, MachineSettings, SettingsError, WorkerSetting, load_settings
from llbkit.buildkit.session import SecretSource

SECRET = "s3cr3t-value-0123456789"


def _settings(**kw) -> MachineSettings:  # type: ignore[no-untyped-def]
    base = dict(
        workers=(WorkerSetting("unix:///run/buildkit/buildkitd.sock"),
                 WorkerSetting("tcp://10.0.0.6:1234", ("linux/arm64", "linux/arm/v7"), tls_ca="/certs/ca.pem",
                               tls_cert="/certs/cert.pem", tls_key="/certs/key.pem", tls_server_name="arm")),
        auto_start=False, allow_emulation=False, max_attempts=2, concurrency=4,
        cache_from=("type=local,src=/cache",), cache_to=("type=local,dest=/cache,mode=max",),
        progress="plain", environment={"PATH": "/usr/bin", "HOME": "/home/u"},
        secrets={"token": {"value": SECRET}, "npmrc": {"file": "/home/u/.npmrc"}},
        python="/usr/bin/python3.9",
        entitlements=("network.host",), ssh={"default": "/run/user/1000/agent.sock"},
    )
    base.update(kw)
    return MachineSettings(**base)  # type: ignore[arg-type]


def test_json_round_trip(tmp_path: Path) -> None:
    s = _settings()
    text = s.to_json()
    assert MachineSettings.from_json(text) == s
    assert _settings().to_json() == text  # stable text
    (tmp_path / SETTINGS_FILE).write_text(text)
    loaded = load_settings(tmp_path)
    assert loaded == s
    assert loaded.workers[1].platforms == ("linux/arm64", "linux/arm/v7")
    assert MachineSettings.from_json(MachineSettings().to_json()) == MachineSettings()  # the defaults


def test_worker_configs_tls_for_tcp_only() -> None:
    unix, arm = _settings().worker_configs()
    assert (unix.address, unix.tls, unix.platforms) == ("unix:///run/buildkit/buildkitd.sock", None, ())
    assert arm.platforms == ("linux/arm64", "linux/arm/v7")
    assert arm.tls is not None and (arm.tls.ca_cert, arm.tls.server_name) == ("/certs/ca.pem", "arm")


def test_buildkit_host_only_when_no_workers_are_configured() -> None:
    env = {"BUILDKIT_HOST": "tcp://buildkit.example:1234", "PATH": "/usr/bin"}
    configured = _settings(environment=env).worker_configs()
    assert [c.address for c in configured] == ["unix:///run/buildkit/buildkitd.sock", "tcp://10.0.0.6:1234"]
    (host,) = _settings(workers=(), environment=env).worker_configs()
    assert host.address == "tcp://buildkit.example:1234" and "BUILDKIT_HOST" in host.name
    assert _settings(workers=(), environment={"PATH": "/usr/bin"}).worker_configs() == ()  # the local daemon
    assert _settings(workers=(), environment={"BUILDKIT_HOST": ""}).worker_configs() == ()


def test_secret_sources() -> None:
    s = _settings()
    assert s.secret_sources() == {"token": SecretSource(value=SECRET.encode()),
                                  "npmrc": SecretSource(file="/home/u/.npmrc")}
    assert list(s.secret_sources(["npmrc", "unknown"])) == ["npmrc"]


def test_missing_settings_say_who_writes_them(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as e:
        load_settings(tmp_path / "nowhere")
    message = str(e.value)
    assert str(tmp_path / "nowhere" / SETTINGS_FILE) in message
    assert "llbkit Pants backend" in message and "writes them first" in message


@pytest.mark.parametrize("text", [
    "", "{not json", "[]", "null",
    json.dumps({"schema": "llbkit.machine-settings.v0"}),
    json.dumps({k: v for k, v in json.loads(MachineSettings().to_json()).items() if k != "workers"}),
    json.dumps(dict(json.loads(MachineSettings().to_json()), workers=[{"platforms": []}])),
    json.dumps(dict(json.loads(MachineSettings().to_json()), max_attempts="many")),
])
def test_damaged_settings_say_how_to_fix(tmp_path: Path, text: str) -> None:
    (tmp_path / SETTINGS_FILE).write_text(text)
    with pytest.raises(SettingsError) as e:
        load_settings(tmp_path)
    message = str(e.value)
    assert str(tmp_path / SETTINGS_FILE) in message and "is damaged" in message
    assert "run the build again to rewrite it" in message


def test_secret_values_never_appear_in_repr() -> None:
    s = _settings(environment={"PATH": "/usr/bin"})
    assert SECRET not in repr(s) and SECRET not in str(s)
    assert SECRET not in repr(s.secret_sources())
    assert SECRET not in repr(MachineSettings.from_json(s.to_json()))
    assert SECRET in s.to_json()  # the file holds it (mode 0600, written by the backend)
