"""`python -m llbkit push` against the fixture registries: digests kept, tags set, blobs skipped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional

from llbkit.testutil.oci_images import two_platform_layout
from llbkit.oci.types import sha256_digest
from llbkit.testutil import skopeo


def push(layout: Path, *refs: str, metadata: Path, docker_config: Optional[Path] = None) -> subprocess.CompletedProcess:
    env: Dict[str, str] = {**os.environ, "DOCKER_CONFIG": str(docker_config or metadata.parent / "no-docker")}
    return subprocess.run([sys.executable, "-m", "llbkit", "push", "--layout", str(layout),
                           "--metadata-file", str(metadata), *refs], capture_output=True, text=True, env=env)


def test_push_keeps_the_digest_sets_every_tag_and_skips_present_blobs(registry, tmp_path: Path) -> None:
    layout = two_platform_layout(tmp_path / "layout")
    (root,) = json.loads((layout / "index.json").read_text())["manifests"]
    refs = [f"{registry.host}/cli-push/app:1.0", f"{registry.host}/cli-push/app:latest"]
    meta = tmp_path / "push.json"
    res = push(layout, *refs, metadata=meta)
    assert res.returncode == 0, res.stderr
    first = json.loads(meta.read_text())
    assert first["digest"] == root["digest"]
    (pushed,) = first["pushed"]
    assert pushed["references"] == refs and pushed["blobs_skipped"] == []
    assert len(pushed["blobs_uploaded"]) == 5  # 2 configs, 3 layers (one shared)
    for ref in refs:
        assert sha256_digest(skopeo.inspect_raw(ref)) == root["digest"]
    assert f"pushed {refs[0]} ({root['digest']})" in res.stdout

    again = push(layout, *refs, metadata=meta)
    assert again.returncode == 0, again.stderr
    (pushed,) = json.loads(meta.read_text())["pushed"]
    assert pushed["blobs_uploaded"] == [] and len(pushed["blobs_skipped"]) == 5


def test_credentials_come_from_docker_config(registry_auth, tmp_path: Path) -> None:
    layout = two_platform_layout(tmp_path / "layout")
    ref = f"{registry_auth.host}/cli-push/private:1"
    meta = tmp_path / "push.json"
    refused = push(layout, ref, metadata=meta)
    assert refused.returncode == 1
    assert f"registry {registry_auth.host} refused" in refused.stderr and "docker login" in refused.stderr
    assert "Traceback" not in refused.stderr and not meta.exists()

    config = registry_auth.docker_config(tmp_path / "docker")
    res = push(layout, ref, metadata=meta, docker_config=config)
    assert res.returncode == 0, res.stderr
    raw = skopeo.inspect_raw(ref, creds=(registry_auth.username, registry_auth.password))
    assert sha256_digest(raw) == json.loads(meta.read_text())["digest"]


def test_unreachable_registry_is_named(tmp_path: Path) -> None:
    layout = two_platform_layout(tmp_path / "layout")
    res = push(layout, "127.0.0.1:9/cli-push/app:1", metadata=tmp_path / "push.json")
    assert res.returncode == 1
    assert "cannot reach registry 127.0.0.1:9" in res.stderr and "Traceback" not in res.stderr
