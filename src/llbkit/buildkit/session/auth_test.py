from __future__ import annotations

import base64
import json
import subprocess

import pytest

from llbkit.buildkit.session.auth import AuthError, Credentials, DockerAuthProvider, StaticAuthProvider, docker_config_dir


def _config(tmp_path, data):
    (tmp_path / "config.json").write_text(json.dumps(data))
    return DockerAuthProvider(str(tmp_path))


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def test_auths_entries(tmp_path):
    p = _config(tmp_path, {"auths": {
        "127.0.0.1:5000": {"auth": _b64("u:p:with:colons")},
        "https://ghcr.io/v2/": {"username": "gh", "password": "pw"},
        "https://index.docker.io/v1/": {"auth": _b64("hub:hunter2")},
        "tok.example": {"identitytoken": "idtok"},
    }})
    assert p.credentials("127.0.0.1:5000") == Credentials("u", "p:with:colons")
    assert p.credentials("ghcr.io") == Credentials("gh", "pw")
    for hub in ("docker.io", "registry-1.docker.io", "index.docker.io"):
        assert p.credentials(hub) == Credentials("hub", "hunter2")
    assert p.credentials("tok.example") == Credentials("", "idtok")
    assert p.credentials("unknown.example") == Credentials()
    assert "hunter2" not in repr(p.credentials("docker.io"))


def test_missing_and_malformed_config(tmp_path):
    assert DockerAuthProvider(str(tmp_path / "none")).credentials("x") == Credentials()
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(AuthError, match="cannot read docker config"):
        DockerAuthProvider(str(tmp_path)).credentials("x")
    p = _config(tmp_path, {"auths": {"x": {"auth": _b64("nocolon")}}})
    with pytest.raises(AuthError, match="user:password"):
        p.credentials("x")


class FakeHelper:
    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv, input, capture_output, timeout):
        self.calls.append((argv, input.decode()))
        rc, out = self.answers[argv[0]]
        return subprocess.CompletedProcess(argv, rc, out.encode(), b"")


def test_credential_helpers(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({
        "credsStore": "store",
        "credHelpers": {"gcr.io": "gcr"},
        "auths": {"gcr.io": {}, "plain.example": {"auth": _b64("ignored:byStore")}},
    }))
    run = FakeHelper({
        "docker-credential-gcr": (0, json.dumps({"Username": "<token>", "Secret": "t0k"})),
        "docker-credential-store": (1, "credentials not found in native keychain"),
    })
    p = DockerAuthProvider(str(tmp_path), run=run)
    assert p.credentials("gcr.io") == Credentials("", "t0k")
    assert p.credentials("plain.example") == Credentials()  # credsStore wins over auths
    assert p.credentials("docker.io") == Credentials()
    assert run.calls[0] == (["docker-credential-gcr", "get"], "gcr.io")
    assert run.calls[-1] == (["docker-credential-store", "get"], "https://index.docker.io/v1/")
    run.answers["docker-credential-store"] = (1, "keychain locked")
    with pytest.raises(AuthError, match="keychain locked"):
        p.credentials("plain.example")


def test_docker_config_dir_and_static():
    assert docker_config_dir({"DOCKER_CONFIG": "/x"}) == "/x"
    assert docker_config_dir({}).endswith(".docker")
    s = StaticAuthProvider({"https://reg.example/": Credentials("a", "b")})
    assert s.credentials("reg.example") == Credentials("a", "b")
