"""The session's Auth providers; the lookup itself is tested in llbkit/oci/auth_test.py."""

from __future__ import annotations

import base64
import json

from llbkit.buildkit.session.auth import Credentials, DockerAuthProvider, StaticAuthProvider


def test_docker_provider_uses_the_one_lookup_with_its_env(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:hunter2").decode()}}}))
    p = DockerAuthProvider({"DOCKER_CONFIG": str(tmp_path)})
    c = p.credentials("registry-1.docker.io")
    assert (c.username, c.password) == ("hub", "hunter2")
    assert p.credentials("unknown.example").anonymous


def test_static_provider_normalizes_hosts():
    s = StaticAuthProvider({"https://reg.example/": Credentials("a", "b")})
    assert s.credentials("reg.example") == Credentials("a", "b")
    assert s.credentials("other.example") == Credentials()
