"""Thin wrappers over ``skopeo`` for pushing, pulling and inspecting images on test registries.

All calls use ``--insecure-policy`` (no dependency on /etc/containers/policy.json) and plain HTTP
towards registries (``--tls-verify=false``: the test registries listen on 127.0.0.1 without TLS).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from typing import Optional, Sequence

from llbkit.testutil.errors import CommandError
from llbkit.testutil.tools import find_tool


def skopeo(*args: str, timeout: float = 300, text: bool = True) -> subprocess.CompletedProcess:
    """Run ``skopeo --insecure-policy ARGS``; raise :class:`CommandError` if it fails."""
    argv = [str(find_tool("skopeo")), "--insecure-policy", *args]
    try:
        res = subprocess.run(argv, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise CommandError(argv, -1, "", f"timed out after {timeout}s") from e
    if res.returncode != 0:
        raise CommandError(argv, res.returncode, res.stdout.decode(errors="replace"),
                           res.stderr.decode(errors="replace"))
    if text:
        res.stdout = res.stdout.decode()
        res.stderr = res.stderr.decode(errors="replace")
    return res


def _creds(flag: str, creds: Optional[Sequence[str]]) -> list[str]:
    return [flag, f"{creds[0]}:{creds[1]}"] if creds else []


def copy(
    src: str,
    dest: str,
    *,
    all_platforms: bool = True,
    src_creds: Optional[Sequence[str]] = None,
    dest_creds: Optional[Sequence[str]] = None,
) -> None:
    """``skopeo copy`` between transports (``oci:DIR:TAG``, ``docker://HOST/REPO:TAG``...).

    Digests are preserved (``--preserve-digests``): a copy never rewrites manifests.
    """
    args = ["copy", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false"]
    if all_platforms:
        args.append("--all")
    args += _creds("--src-creds", src_creds) + _creds("--dest-creds", dest_creds)
    skopeo(*args, src, dest)


def inspect_raw(ref: str, creds: Optional[Sequence[str]] = None) -> bytes:
    """The raw manifest (or index) bytes of ``docker://REF`` on a plain-HTTP registry."""
    args = ["inspect", "--raw", "--tls-verify=false", *_creds("--creds", creds), f"docker://{ref}"]
    return skopeo(*args, text=False).stdout


def inspect(
    ref: str, creds: Optional[Sequence[str]] = None, platform: Optional[str] = None
) -> dict:
    """``skopeo inspect`` (image config summary) of one platform of ``docker://REF``."""
    args = ["inspect", "--tls-verify=false", *_creds("--creds", creds)]
    if platform:
        os_, arch = platform.split("/")[:2]
        args += ["--override-os", os_, "--override-arch", arch]
    return json.loads(skopeo(*args, f"docker://{ref}").stdout)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
