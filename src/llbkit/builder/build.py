"""Build one image spec into its packaged outputs: an OCI layout tar (or docker archive) and
its ``image.json`` record, through the content cache.

::

    bases = resolve_bases(spec, platforms, connect)            # tag -> digest, config per platform
    lowered = plan(spec, base_configs=bases, context_digest=..., source_date_epoch=0)
    out = build_outputs(lowered, opts, context_dir=..., connect=connect, cache=ImageCache())
    out.image_bytes, out.record_bytes, out.cached

``connect(platform)`` returns ``(client, worker name)``: the caller decides which buildkitd serves
which platform (configured workers, or the auto-started local one) and connects lazily, so a
fully cached build touches no daemon. Each platform is solved in its own build, in parallel;
results are assembled in the declared order, whatever order they finish in.
"""

from __future__ import annotations

import concurrent.futures
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from llbkit.builder.cache import ImageCache, build_key, code_fingerprint
from llbkit.buildkit.local_daemon import BUILDKIT_VERSION
from llbkit.errors import BuildKitError
from llbkit.image import ImageSpec, Lowered, ResolvedBase, registry_bases
from llbkit.llb.reference import parse_image_reference

__all__ = ["BuildOptions", "BuildOutputs", "build_outputs", "cached_outputs", "outputs_key", "resolve_bases", "Connect"]

#: ``connect(platform) -> (client, worker name)``; the client is closed by the caller of build.
Connect = Callable[[str], Tuple[Any, str]]
IMAGE_FILE = "image.tar"
RECORD_FILE = "image.json"


@dataclass(frozen=True)
class BuildOptions:
    """What to export. Everything but ``cache_from``/``cache_to``/``progress`` enters the key."""

    output_format: str = "oci"  # "oci": an OCI layout tar with one index; "docker": docker load
    ref_names: Tuple[str, ...] = ()  # index.json ref names of the OCI layout (the tags)
    docker_tags: Tuple[str, ...] = ()  # NAME:TAG names of a docker archive
    record_tags: Tuple[str, ...] = ()  # the full references listed in image.json
    annotations: Tuple[Tuple[str, str], ...] = ()
    source_date_epoch: int = 0
    cache_from: Tuple[Any, ...] = ()  # llbkit.buildkit.CacheOption values
    cache_to: Tuple[Any, ...] = ()
    progress: Optional[Callable[[Any], None]] = field(default=None, compare=False)

    def export_key(self) -> Dict[str, Any]:
        return {
            "format": self.output_format, "ref_names": list(self.ref_names),
            "docker_tags": list(self.docker_tags), "record_tags": list(self.record_tags),
            "annotations": [list(kv) for kv in self.annotations], "source_date_epoch": self.source_date_epoch,
            "rewrite_timestamp": True,
        }


@dataclass(frozen=True)
class BuildOutputs:
    key: str
    image_path: Path
    record_path: Path
    cached: bool

    @property
    def record(self) -> Dict[str, Any]:
        return json.loads(self.record_path.read_bytes())


def _has_digest(ref: str) -> bool:
    try:
        return bool(parse_image_reference(ref, op="base").digest)
    except Exception:
        return False


def resolve_bases(
    spec: ImageSpec, platforms: Sequence[str], connect: Connect, cache: Optional[ImageCache] = None
) -> Dict[Tuple[str, str], ResolvedBase]:
    """Resolve every registry base of ``spec``'s chain for each platform, through a worker's
    ResolveImageConfig: a tag is resolved to a digest, which pins the base in the definition.
    Configs of bases given by digest are kept in ``cache`` (they cannot change), so building
    them again needs no daemon."""
    out: Dict[Tuple[str, str], ResolvedBase] = {}
    for ref in registry_bases(spec):
        for p in platforms:
            store = None
            if cache is not None and _has_digest(ref):
                store = cache.root.parent / "base-configs" / (
                    ref.replace("/", "_").replace(":", "_").replace("@", "_") + "_" + p.replace("/", "_") + ".json")
                if store.exists():
                    doc = json.loads(store.read_bytes())
                    out[(ref, p)] = ResolvedBase(doc["config"].encode(), doc["digest"])
                    continue
            client, worker = connect(p)
            found: Dict[str, Any] = {}

            def fn(gw: Any) -> Any:
                from llbkit.buildkit.solve import BuildResult

                found["r"] = gw.resolve_image_config(ref, platform=p)
                return BuildResult.of(None)

            try:
                client.build(fn)
            except BuildKitError as e:
                raise BuildKitError(f"failed to resolve base image {ref} for {p} on {worker}: {e}") from e
            r = found["r"]
            out[(ref, p)] = ResolvedBase(r.raw_config, r.digest)
            if store is not None:
                store.parent.mkdir(parents=True, exist_ok=True)
                tmp = store.with_suffix(".tmp")
                tmp.write_text(json.dumps({"config": r.raw_config.decode(), "digest": r.digest}))
                tmp.replace(store)
    return out


def _solve_one(lowered: Lowered, connect: Connect, context_dir: Optional[Path], tmp: Path, i: int,
               opts: BuildOptions) -> Tuple[Any, str]:
    from llbkit.buildkit.options import Export
    from llbkit.buildkit.solve import BuildResult
    from llbkit.oci import open_layout, split

    client, worker = connect(lowered.platform)
    dest = tmp / f"platform-{i}.tar"
    attrs = {"rewrite-timestamp": "true"}
    attrs.update({f"annotation.{k}": v for k, v in opts.annotations})
    definition = lowered.definition
    config = lowered.oci_config_bytes()

    def fn(gw: Any) -> Any:
        return BuildResult.of(gw.solve(definition), config)

    local_dirs = {"context": str(context_dir)} if context_dir is not None else None
    try:
        client.build(fn, exports=[Export("oci", attrs, str(dest))], local_dirs=local_dirs,
                      source_date_epoch=opts.source_date_epoch, cache_imports=list(opts.cache_from),
                      cache_exports=list(opts.cache_to), progress=opts.progress)
    except BuildKitError as e:
        raise BuildKitError(f"failed to solve {lowered.spec.name} for {lowered.platform} on {worker}: {e}") from e
    images = split(open_layout(dest))
    if len(images) != 1:
        raise BuildKitError(f"{lowered.spec.name} ({lowered.platform}): expected one image from {worker}, "
                            f"got {len(images)}")
    return images[0], worker


def outputs_key(lowered: Sequence[Lowered], opts: BuildOptions, context_digest: Optional[str]) -> str:
    """The content key of building ``lowered`` (one per platform, in index order) with ``opts``."""
    return build_key(
        [(lw.platform, lw.definition.to_bytes(), lw.oci_config_bytes()) for lw in lowered],
        context_digest, opts.export_key(), f"{code_fingerprint()};buildkit-{BUILDKIT_VERSION}",
    )


def cached_outputs(cache: ImageCache, key: str) -> Optional[BuildOutputs]:
    entry = cache.get(key)
    if entry is not None and IMAGE_FILE in entry and RECORD_FILE in entry:
        return BuildOutputs(key, entry[IMAGE_FILE], entry[RECORD_FILE], True)
    return None


def build_outputs(
    lowered: Sequence[Lowered],
    opts: BuildOptions,
    *,
    context_digest: Optional[str],
    context_dir: Callable[[], Optional[Path]],
    connect: Connect,
    cache: ImageCache,
) -> BuildOutputs:
    """The outputs of ``lowered`` (one per platform, in index order), from ``cache`` when its key
    is there, else solved (``context_dir()`` is called only then) and stored in ``cache``."""
    from llbkit.oci import assemble, image_record, write_docker_archive, write_oci_tar
    from llbkit.oci.metadata import dumps

    if opts.output_format not in ("oci", "docker"):
        raise ValueError(f"unknown output format {opts.output_format!r}: use 'oci' or 'docker'")
    if opts.output_format == "docker" and len(lowered) != 1:
        raise ValueError("a docker archive holds one platform: build one platform, or use the oci format")
    key = outputs_key(lowered, opts, context_digest)
    hit = cached_outputs(cache, key)
    if hit is not None:
        return hit

    ctx = context_dir()
    with tempfile.TemporaryDirectory(prefix="llbkit-build-") as tmpdir:
        tmp = Path(tmpdir)
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(lowered))) as pool:
            futures = [pool.submit(_solve_one, lw, connect, ctx, tmp, i, opts) for i, lw in enumerate(lowered)]
            results = [f.result() for f in futures]  # by input index, never completion order
        images = [img for img, _ in results]
        workers: Mapping[str, str] = {str(img.platform): w for img, w in results}
        assembled = assemble(images, dict(opts.annotations) or None)
        out = tmp / IMAGE_FILE
        if opts.output_format == "oci":
            write_oci_tar(assembled, out, opts.ref_names)
        else:
            write_docker_archive(images[0], out, opts.docker_tags)
        record = image_record(assembled, opts.record_tags, workers,
                              extra={"format": opts.output_format, "build_key": key})
        entry = cache.put(key, {IMAGE_FILE: out, RECORD_FILE: dumps(record)})
    return BuildOutputs(key, entry[IMAGE_FILE], entry[RECORD_FILE], False)
