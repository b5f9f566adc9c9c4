"""The one credential lookup (:mod:`llbkit.oci.auth`): Docker's order and host normalization."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess

import pytest

from llbkit.oci.auth import Credentials, lookup_credentials, normalize_host, parse_challenge
from llbkit.oci.errors import RegistryAuthError


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


class FakeHelpers:
    """``subprocess.run`` for credential helpers: ``answers[exe] = (returncode, stdout)``."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv, input, capture_output, timeout, env):
        self.calls.append((argv[0], input.decode()))
        rc, out = self.answers[argv[0]]
        return subprocess.CompletedProcess(argv, rc, out.encode(), b"")


def _helper_answer(user, secret):
    return 0, json.dumps({"Username": user, "Secret": secret})


def test_conflicting_sources_credhelpers_then_credsstore_then_auths(tmp_path):
    """One host named in credHelpers, credsStore and auths: Docker's order decides the winner."""
    (tmp_path / "config.json").write_text(json.dumps({
        "credHelpers": {"both.example": "helper"},
        "credsStore": "store",
        "auths": {
            "both.example": {"auth": _b64("from:auths")},
            "https://store.example/v2/": {"auth": _b64("from:auths")},
        },
    }))
    run = FakeHelpers({
        "docker-credential-helper": _helper_answer("from", "helper"),
        "docker-credential-store": _helper_answer("from", "store"),
    })
    env = {"DOCKER_CONFIG": str(tmp_path)}
    # credHelpers for the host beats credsStore and auths
    c = lookup_credentials("both.example", env, run=run)
    assert (c.username, c.password, c.source) == ("from", "helper", "credential helper docker-credential-helper")
    # no helper for the host: credsStore beats the auths entry
    c = lookup_credentials("store.example", env, run=run)
    assert (c.username, c.password) == ("from", "store")
    assert run.calls == [("docker-credential-helper", "both.example"), ("docker-credential-store", "store.example")]
    # the store has nothing: still not the file's auths (a configured store owns the credentials)
    run.answers["docker-credential-store"] = (1, "credentials not found in native keychain")
    c = lookup_credentials("store.example", env, run=run)
    assert c.anonymous and "credsStore store" in c.source
    # without a store, auths decides
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"both.example": {"auth": _b64("from:auths")}}}))
    assert lookup_credentials("both.example", env).password == "auths"


def test_hub_names_are_one_server_and_other_hosts_lose_scheme_and_path(tmp_path):
    for hub in ("docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"):
        assert normalize_host(hub) == "https://index.docker.io/v1/"
    assert normalize_host("https://ghcr.io/v2/") == "ghcr.io"
    assert normalize_host("http://127.0.0.1:5000/x") == "127.0.0.1:5000"
    (tmp_path / "config.json").write_text(json.dumps({
        "credHelpers": {"index.docker.io": "hub"},
        "auths": {"https://ghcr.io/v2/": {"username": "gh", "password": "pw"}, "tok.example": {"identitytoken": "idtok"}},
    }))
    run = FakeHelpers({"docker-credential-hub": _helper_answer("<token>", "t0k")})
    env = {"DOCKER_CONFIG": str(tmp_path)}
    for hub in ("docker.io", "registry-1.docker.io"):
        assert lookup_credentials(hub, env, run=run).identity_token == "t0k"
    assert run.calls[0] == ("docker-credential-hub", "https://index.docker.io/v1/")
    assert lookup_credentials("ghcr.io", env) == Credentials("gh", "pw", source=f"{tmp_path}/config.json auths[https://ghcr.io/v2/]")
    assert lookup_credentials("tok.example", env).identity_token == "idtok"
    assert "pw" not in repr(lookup_credentials("ghcr.io", env))


def test_missing_malformed_and_failing(tmp_path):
    assert "anonymous (no " in lookup_credentials("x", {"DOCKER_CONFIG": str(tmp_path / "none")}).source
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(RegistryAuthError, match="cannot read"):
        lookup_credentials("x", {"DOCKER_CONFIG": str(tmp_path)})
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"x": {"auth": _b64("nocolon")}}}))
    with pytest.raises(RegistryAuthError, match="user:password"):
        lookup_credentials("x", {"DOCKER_CONFIG": str(tmp_path)})
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "locked"}))
    run = FakeHelpers({"docker-credential-locked": (1, "keychain locked")})
    with pytest.raises(RegistryAuthError, match="keychain locked"):
        lookup_credentials("x", {"DOCKER_CONFIG": str(tmp_path)}, run=run)
    with pytest.raises(RegistryAuthError, match="docker-credential-locked is not on PATH"):
        lookup_credentials("x", {"DOCKER_CONFIG": str(tmp_path), "PATH": str(tmp_path / "nothing")})


def test_real_helper_found_on_the_given_path(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-fake"
    helper.write_text('#!/bin/sh\nread server\n'
                      'echo "{\\"ServerURL\\":\\"$server\\",\\"Username\\":\\"carol\\",'
                      '\\"Secret\\":\\"pw-$server\\"}"\n')
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "fake"}))
    env = {"DOCKER_CONFIG": str(tmp_path), "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    c = lookup_credentials("reg.example", env)
    assert (c.username, c.password) == ("carol", "pw-reg.example")
    assert c.source == "credential helper docker-credential-fake"


def test_parse_challenge():
    c = parse_challenge('Bearer realm="https://auth.example/token",service="reg",'
                        'scope="repository:a/b:pull,push"')
    assert c.scheme == "bearer"
    assert c.params == {"realm": "https://auth.example/token", "service": "reg",
                        "scope": "repository:a/b:pull,push"}
    assert parse_challenge('Basic realm="x"').scheme == "basic"
