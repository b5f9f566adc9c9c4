"""``llbkit push``: push a packaged image (an OCI layout tar or directory, or a docker archive)
to registries, with the exact bytes and digests the package holds.

::

    python -m llbkit push --layout dist/app/app.oci.tar registry.example.com/acme/app:1.4.0 \\
        registry.example.com/acme/app:latest mirror.example.com:5000/acme/app:1.4.0

For each registry and repository: blobs first (those already present are skipped), then the
manifests by digest, then the index, then each tag, so a tag never names a half-pushed image.
Credentials come from Docker's config (``$DOCKER_CONFIG/config.json``, else
``~/.docker/config.json``: ``auths``, ``credHelpers``, ``credsStore``).

This module needs only the standard library (no grpc): ``pants publish`` runs it with any
interpreter that can import llbkit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

from llbkit.errors import LlbkitError

__all__ = ["add_push_parser", "cmd_push", "PushTarget", "group_references"]


def add_push_parser(sub: Any) -> None:
    """Register the ``push`` subcommand on ``sub`` (an argparse subparsers action)."""
    p = sub.add_parser(
        "push", help="push a packaged image (OCI layout or docker archive) to registries",
        description="Push the image a layout names (exactly one: an index or a manifest) to each "
                    "REF, byte for byte: blobs first (skipping those already there), manifests by "
                    "digest, then the index, then the tags. Credentials come from Docker's "
                    "config.json ($DOCKER_CONFIG, else ~/.docker).")
    p.add_argument("refs", nargs="+", metavar="REF",
                   help="where to push: REGISTRY/REPOSITORY[:TAG], e.g. registry.example.com/acme/app:1.4.0 "
                        "(without a tag the image is pushed by digest only)")
    p.add_argument("--layout", required=True, metavar="PATH",
                   help="the image: an OCI layout tar (what `pants package` writes as NAME.oci.tar), an "
                        "OCI layout directory, or a docker archive (NAME.docker.tar)")
    p.add_argument("--plain-http", action="store_true",
                   help="speak plain HTTP to every registry (default: only to localhost and 127.0.0.1)")
    p.add_argument("--metadata-file", default=None, metavar="FILE",
                   help="write what was pushed (references, digests, blobs uploaded and skipped) as JSON")
    p.set_defaults(handler=cmd_push)


@dataclass(frozen=True)
class PushTarget:
    """One repository on one registry, and the tags to set there."""

    registry: str
    repository: str
    tags: Tuple[str, ...]


def group_references(refs: List[str]) -> List[PushTarget]:
    """Group ``REGISTRY/REPOSITORY[:TAG]`` references by repository (in first-seen order), so each
    repository gets its blobs once and then all of its tags. A reference with ``@sha256:`` is
    refused: the digest is the layout's, not the caller's to choose."""
    from llbkit.reference import parse_reference

    grouped: Dict[Tuple[str, str], List[str]] = {}
    for ref in refs:
        r = parse_reference(ref, op="push")
        if r.digest:
            raise LlbkitError(
                f"push: {ref!r} names a digest; the digest pushed is the layout's own. Give "
                f"{str(r).split('@')[0]!r} instead")
        first, sep, _ = ref.partition("/")
        if not (sep and ("." in first or ":" in first or first == "localhost")):
            # `acme/app:1.0` would silently go to Docker Hub: make the registry explicit.
            raise LlbkitError(
                f"push: {ref!r} names no registry; write REGISTRY/REPOSITORY[:TAG], e.g. "
                f"registry.example.com/{ref} (or docker.io/{ref} for Docker Hub)")
        tags = grouped.setdefault((r.registry, r.repository), [])
        if r.tag and r.tag not in tags:
            tags.append(r.tag)
    return [PushTarget(reg, repo, tuple(tags)) for (reg, repo), tags in grouped.items()]


def _write_json_atomic(path: str, data: Any) -> None:
    from llbkit.atomic import write_bytes_atomic

    write_bytes_atomic(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def cmd_push(args: argparse.Namespace) -> int:
    from llbkit.buildkit.local_daemon import cache_dir
    from llbkit.oci.layout import OCILayout
    from llbkit.oci.pushed_blobs import PushedBlobs
    from llbkit.oci.registry import RegistryClient, push

    if not os.path.exists(args.layout):
        raise LlbkitError(
            f"push: no image at {args.layout!r}; give the OCI layout tar `pants package` wrote "
            f"(dist/PATH/NAME.oci.tar) or an OCI layout directory")
    targets = group_references(args.refs)
    pushed: List[Dict[str, Any]] = []
    memory = PushedBlobs(cache_dir(os.environ) / "pushed-blobs")
    with OCILayout(args.layout) as layout:
        roots = {d.digest: d for d in layout.manifests}
        if len(roots) != 1:
            raise LlbkitError(
                f"push: {layout.describe()}: index.json names {len(roots)} different images; a "
                f"package holds exactly one (an index or a manifest)")
        # Ref-name and image-name annotations belong to this layout's index.json, not the image.
        root = next(iter(roots.values())).replace(annotations={}, platform=None)
        for t in targets:
            client = RegistryClient(t.registry, insecure=True if args.plain_http else None, env=os.environ)
            result = push(client, t.repository, root, layout, t.tags, memory=memory)
            where = f"{t.registry}/{t.repository}"
            names = [f"{where}:{tag}" for tag in result.tags] or [f"{where}@{result.digest}"]
            for name in names:
                print(f"pushed {name} ({result.digest})")
            donors = sorted(set(result.blobs_mounted.values()))
            mounted = (f" ({len(result.blobs_mounted)} mounted from {', '.join(donors)})"
                       if result.blobs_mounted else "")
            print(f"  {len(result.blobs_uploaded)} blob(s) uploaded, {len(result.blobs_skipped)} already "
                  f"present{mounted}", file=sys.stderr)
            pushed.append({
                "registry": t.registry, "repository": t.repository, "tags": list(result.tags),
                "references": names, "digest": result.digest, "media_type": root.media_type,
                "blobs_uploaded": result.blobs_uploaded, "blobs_skipped": result.blobs_skipped,
                "blobs_mounted": dict(result.blobs_mounted),
            })
    if args.metadata_file:
        _write_json_atomic(args.metadata_file, {"digest": root.digest, "pushed": pushed})
    return 0
