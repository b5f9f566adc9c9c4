"""A `dockerfile_image` as the `base` of a `container_image` (or the FROM of another
`dockerfile_image`): its packaged OCI layout, served
to buildkitd from the client as an `oci-layout://` source (see `llbkit.builder.oci_layouts`).

`DockerfileLayoutBaseRequest(address, platforms)` -> `DockerfileLayoutBase`: the Dockerfile
image packaged (the same build, from the same cache, as `pants package` of it), and per
platform its manifest digest and config, which the child's lowering pins and inherits. The tar
enters the child's build process as an input (its content is in the key), named by the store
name `name`.
"""

from __future__ import annotations

import io
import re
import tarfile
from dataclasses import dataclass
from typing import Dict, Tuple

from pants.core.goals.package import BuiltPackage, PackageFieldSet
from pants.engine.addresses import Address
from pants.engine.fs import CreateDigest, Digest, DigestContents, DigestEntries, FileEntry
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import WrappedTarget, WrappedTargetRequest

from llbkit_pants.dockerfile.field_sets import DockerfileImagePackageFieldSet
from llbkit_pants.dockerfile.parser import DockerfileError

LAYOUTS_DIR = "layouts"


def layout_name(address: Address) -> str:
    """The store name of a Dockerfile image base: a valid image-name component."""
    raw = f"{address.spec_path}-{address.target_name}".lower()
    return re.sub(r"[^a-z0-9]+", "-", raw).strip("-") or "base"


def blobs(tar_bytes: bytes, digests) -> Dict[str, bytes]:
    """The blobs `digests` (`sha256:...`) of an OCI layout tar, read in memory."""
    want = {f"blobs/sha256/{d.split(':', 1)[1]}": d for d in digests}
    out: Dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:*") as tf:
        for m in tf:
            name = m.name[2:] if m.name.startswith("./") else m.name
            if name in want and m.isfile():
                f = tf.extractfile(m)
                assert f is not None
                out[want[name]] = f.read()
    return out


@dataclass(frozen=True)
class DockerfileLayoutBaseRequest:
    address: Address
    platforms: Tuple[str, ...]


@dataclass(frozen=True)
class DockerfileLayoutBase:
    name: str
    tar: Digest  # the layout tar alone, at `layouts/NAME.oci.tar`
    path: str
    bases: Tuple[Tuple[str, str, bytes], ...]  # (platform, manifest digest, config bytes)


@rule(desc="Package a dockerfile_image used as a base")
async def dockerfile_layout_base(request: DockerfileLayoutBaseRequest) -> DockerfileLayoutBase:
    import json

    from llbkit.platforms import canonical_platform

    wrapped = await Get(WrappedTarget, WrappedTargetRequest(request.address, description_of_origin=str(request.address)))
    field_set = DockerfileImagePackageFieldSet.create(wrapped.target)
    image_path, record_path = field_set.output_paths()
    if not image_path.endswith(".oci.tar"):
        raise DockerfileError(
            f"dockerfile_image {request.address} is the base of another image, so it must be packaged as "
            'an OCI layout: remove output_format="docker" (or build on it through a registry).')
    pkg = await Get(BuiltPackage, PackageFieldSet, field_set)
    contents = {c.path: c.content for c in await Get(DigestContents, Digest, pkg.digest)}
    record = json.loads(contents[record_path])
    by_platform = {canonical_platform(p["platform"]): p for p in record["platforms"]}
    missing = [p for p in request.platforms if canonical_platform(p) not in by_platform]
    if missing:
        raise DockerfileError(
            f"dockerfile_image {request.address} is built for {', '.join(by_platform)}, but an image on it is "
            f"built for {', '.join(missing)}: add those to its `platforms`.")
    wanted = [by_platform[canonical_platform(p)] for p in request.platforms]
    configs = blobs(contents[image_path], [p["config"]["digest"] for p in wanted])
    name = layout_name(request.address)
    entries = await Get(DigestEntries, Digest, pkg.digest)
    entry = next(e for e in entries if isinstance(e, FileEntry) and e.path == image_path)
    path = f"{LAYOUTS_DIR}/{name}.oci.tar"
    tar = await Get(Digest, CreateDigest([FileEntry(path, entry.file_digest)]))
    return DockerfileLayoutBase(name, tar, path, tuple(
        (p, w["manifest"]["digest"], configs[w["config"]["digest"]]) for p, w in zip(request.platforms, wanted)))


def rules():
    return collect_rules()
