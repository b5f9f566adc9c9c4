"""From a `container_image` target's fields to the library's `ImageSpec` and its build context.

`ContainerImageSpecRequest(address)` -> `ContainerImageSpec`: the target's `base` chain is
followed by address (a base that is not a `container_image`, and cycles, are errors naming the
chain); every `copy()` source is resolved to a path in one build context, whose files are a Pants
`Digest` (exactly the files the copies name, across the chain); the library then validates the
spec, and each of its errors is re-raised as an `InvalidFieldException` naming the field alias,
the target, the value and the fix.

In the build context, a path source keeps its path from the build root
(`copy("conf/app.yaml", ...)` in `svc/BUILD` is `svc/conf/app.yaml`); a target source lives in
`.llbkit-targets/<address>/`: its package's files, or its files/resources sources relative to
the target's directory.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Tuple

from pants.core.goals.package import BuiltPackage, PackageFieldSet
from pants.core.target_types import (
    FileSourceField,
    FilesGeneratingSourcesField,
    ResourceSourceField,
    ResourcesGeneratingSourcesField,
)
from pants.engine.addresses import Address, Addresses, UnparsedAddressInputs
from pants.engine.fs import EMPTY_DIGEST, AddPrefix, Digest, MergeDigests, PathGlobs, RemovePrefix, Snapshot
from pants.engine.internals.graph import Owners, OwnersRequest
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    FieldSetsPerTarget,
    FieldSetsPerTargetRequest,
    HydratedSources,
    HydrateSourcesRequest,
    InvalidFieldException,
    SourcesField,
    Target,
    Targets,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.util.strutil import softwrap

from llbkit.image import (
    AddStep,
    ContextSource,
    CopyStep,
    ImageSpec,
    ImageSpecError,
    RegistryBase,
    RunStep,
    ScratchBase,
    SpecBase,
    SshMount,
    UrlSource,
    image_graph,
    validate_spec,
)
from llbkit.image.entitlements import MissingEntitlementError, check_entitlements
from llbkit_pants import build_file_helpers as helpers
from llbkit_pants.subsystems.buildkit import BuildKitSubsystem
from llbkit_pants.target_types import (
    ContainerImageAnnotationsField,
    ContainerImageBaseField,
    ContainerImageCmdField,
    ContainerImageEntrypointField,
    ContainerImageEnvField,
    ContainerImageExposedPortsField,
    ContainerImageLabelsField,
    ContainerImageOutputFormatField,
    ContainerImagePlatformsField,
    ContainerImageRegistriesField,
    ContainerImageRepositoryField,
    ContainerImageStepsField,
    ContainerImageStopSignalField,
    ContainerImageTagsField,
    ContainerImageUserField,
    ContainerImageVolumesField,
    ContainerImageWorkdirField,
)

CONTEXT_NAME = "context"
TARGETS_DIR = ".llbkit-targets"
SCRATCH = "scratch"
# Library field names whose Pants alias differs.
_ALIASES = {"tags": "image_tags"}
_FILE_FIELDS = (FileSourceField, ResourceSourceField, FilesGeneratingSourcesField, ResourcesGeneratingSourcesField)


def is_address(value: str) -> bool:
    """`base` and `copy()` sources name a target when they start with `:` or `//`."""
    return value.startswith(":") or value.startswith("//")


def _field_error(address: Address, alias: str, message: str) -> InvalidFieldException:
    return InvalidFieldException(f"Invalid field `{alias}` in container_image target {address}: {message}")


def _wrap_spec_error(address: Address, e: ImageSpecError) -> InvalidFieldException:
    """The library's error against the target's field: its alias (`steps`, `image_tags`...) from
    `e.field` (`steps[0].chmod` is the `steps` field), then the problem, the value and the fix."""
    if e.field is None:  # about no single field: the base chain (cycles, non-image bases)
        text = e.message[len(f"{e.spec_name}: "):] if e.spec_name and e.message.startswith(f"{e.spec_name}: ") else e.message
        return _field_error(address, "base", text)
    name = re.split(r"[.\[]", e.field, maxsplit=1)[0]
    alias = _ALIASES.get(name, name)
    where = f"{e.field}: " if e.field != name else ""  # the alias already says which field
    return _field_error(address, alias, f"{where}{e.problem} {e.value!r}: {e.fix}")


@dataclass(frozen=True)
class ContainerImageSpecRequest:
    address: Address


@dataclass(frozen=True)
class ContainerImageSpec:
    """A target's `ImageSpec` (its base targets composed in as `SpecBase`s), the build context the
    copies read (`context`, with `context_digest` its content digest, `None` without copies), and
    the chain of `container_image` addresses: this one first, then its bases."""

    address: Address
    spec: ImageSpec
    context: Digest
    context_digest: Optional[str]
    chain: Tuple[Address, ...]


@dataclass(frozen=True)
class CopySourceRequest:
    address: Address
    index: int
    source: str


@dataclass(frozen=True)
class CopySource:
    """Where a `copy()` source is in the build context, and the files it adds there."""

    path: str
    digest: Digest


def _target_dir(address: Address) -> str:
    return posixpath.join(TARGETS_DIR, re.sub(r"[^A-Za-z0-9._-]+", "_", address.spec.lstrip("/")).strip("_") or "root")


class CopyPathError(ValueError):
    """A `copy()` path source that cannot be used: `reason` is "absolute", "escapes" or "pattern"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def copy_source_path(spec_path: str, source: str) -> str:
    """The path from the build root of a `copy()` path source in the BUILD file of `spec_path`
    (dependency inference and the spec rule both use it); `CopyPathError` when it cannot be used."""
    if not source or source.startswith("/"):
        raise CopyPathError("absolute")
    norm = posixpath.normpath(source)
    if norm == ".." or norm.startswith("../"):
        raise CopyPathError("escapes")
    if re.search(r"[*?\[\]]", source):
        raise CopyPathError("pattern")
    return posixpath.normpath(posixpath.join(spec_path, norm))


def _check_relative(address: Address, index: int, source: str) -> str:
    where = f"steps[{index}] copy() source {source!r}"
    here = address.spec_path or "the build root"
    try:
        return copy_source_path(address.spec_path, source)
    except CopyPathError as e:
        if e.reason == "absolute":
            raise _field_error(address, "steps", softwrap(
                f"""
                {where} must be a path relative to the BUILD file's directory ({here}),
                or a target address such as ':files'; drop the leading '/': {source.lstrip('/')!r}.
                """)) from None
        if e.reason == "escapes":
            raise _field_error(address, "steps", softwrap(
                f"""
                {where} leaves the BUILD file's directory ({here}). Copy
                files from elsewhere through a target: declare `files(name="...", sources=[...])` in
                their own directory and use copy("//path/to/dir:name", ...).
                """)) from None
        raise _field_error(address, "steps", f"{where} is a pattern; name each file or directory exactly, "
                           "or copy a `files` target that globs them.") from None


@rule(desc="Resolve a copy() source of a container_image")
async def resolve_copy_source(request: CopySourceRequest) -> CopySource:
    address, source = request.address, request.source
    where = f"steps[{request.index}] copy() source {source!r}"
    if is_address(source):
        addresses = await Get(Addresses, UnparsedAddressInputs(
            [source], owning_address=address,
            description_of_origin=f"the {where} in the `steps` field of {address}"))
        if addresses[0] == address:
            # Packaging it would need this very image: Pants would report a rule-graph cycle.
            raise _field_error(address, "steps", softwrap(
                f"""
                {where} is this container_image itself; an image cannot contain its own package.
                Copy the files or the target it is built from instead.
                """))
        wrapped = await Get(WrappedTarget, WrappedTargetRequest(addresses[0], description_of_origin=str(address)))
        tgt = wrapped.target
        prefix = _target_dir(tgt.address)
        field_sets = await Get(FieldSetsPerTarget, FieldSetsPerTargetRequest(PackageFieldSet, [tgt]))
        if field_sets.field_sets:
            built = await Get(BuiltPackage, PackageFieldSet, field_sets.field_sets[0])
            snapshot = await Get(Snapshot, Digest, built.digest)
            digest = await Get(Digest, AddPrefix(built.digest, prefix))
            path = posixpath.join(prefix, snapshot.files[0]) if len(snapshot.files) == 1 else prefix
            return CopySource(path, digest)
        if any(tgt.has_field(f) for f in _FILE_FIELDS):
            hydrated = await Get(HydratedSources, HydrateSourcesRequest(tgt[SourcesField]))
            files = hydrated.snapshot.files
            if not files:
                raise _field_error(address, "steps", f"{where}: target {tgt.address} has no files.")
            digest = hydrated.snapshot.digest
            spec_path = tgt.address.spec_path
            if spec_path and all(f.startswith(spec_path + "/") for f in files):
                digest = await Get(Digest, RemovePrefix(digest, spec_path))
            digest = await Get(Digest, AddPrefix(digest, prefix))
            return CopySource(prefix, digest)
        raise _field_error(address, "steps", softwrap(
            f"""
            {where} is a `{tgt.alias}` target, which has neither a package (such as a `pex_binary`
            or an `archive`) nor files/resources sources: copy a packageable target, or a `files`
            or `resources` target.
            """))

    repo_path = _check_relative(address, request.index, source)
    globs = [f"{repo_path}/**"] if repo_path == "." else [repo_path, f"{repo_path}/**"]
    snapshot = await Get(Snapshot, PathGlobs(globs))
    if not snapshot.files:
        raise _field_error(address, "steps", softwrap(
            f"""
            {where}: there is no file or directory {repo_path!r}. Paths are relative to the BUILD
            file's directory ({address.spec_path or 'the build root'}).
            """))
    owners = await MultiGet(Get(Owners, OwnersRequest((f,))) for f in snapshot.files)
    all_owners = sorted({a for o in owners for a in o})
    targets = await Get(Targets, Addresses(all_owners))
    file_owners = {t.address for t in targets if any(t.has_field(f) for f in _FILE_FIELDS)}
    unowned = [f for f, o in zip(snapshot.files, owners) if not file_owners.intersection(o)]
    if unowned:
        rels = [posixpath.relpath(f, address.spec_path or ".") for f in unowned]
        raise _field_error(address, "steps", softwrap(
            f"""
            {where}: {', '.join(repr(r) for r in rels[:5])}{' ...' if len(rels) > 5 else ''} is not
            owned by a `files` or `resources` target, so Pants would not know when it changes.
            Declare one in {address.spec_path or 'the root'}/BUILD, e.g.
            `files(name="files", sources={[rels[0]]!r})`; copy() then finds it (no need to
            list it in `dependencies`).
            """))
    return CopySource(repo_path, snapshot.digest)


@dataclass(frozen=True)
class MountSourceRequest:
    address: Address
    index: int
    source: str


@dataclass(frozen=True)
class ResolvedMountSource:
    """A bind or cache mount's source as the library's value, and the build-context files (and
    mounted images' contexts) it adds."""

    source: object  # ContextSource | RegistryBase | SpecBase
    digest: Digest


@rule(desc="Resolve a bind_mount()/cache_mount() source of a container_image")
async def resolve_mount_source(request: MountSourceRequest) -> ResolvedMountSource:
    address, source = request.address, request.source
    where = f"steps[{request.index}] mount source {source!r}"
    if not isinstance(source, str) or not source:
        raise _field_error(address, "steps", f"{where} must be a target address, a path or an image pinned by "
                           "digest, e.g. bind_mount(':builder', '/build')")
    if "@sha256:" in source and not is_address(source):
        return ResolvedMountSource(RegistryBase(source), EMPTY_DIGEST)
    if is_address(source):
        addresses = await Get(Addresses, UnparsedAddressInputs(
            [source], owning_address=address,
            description_of_origin=f"the {where} in the `steps` field of {address}"))
        if addresses[0] == address:
            raise _field_error(address, "steps", f"{where} is this container_image itself; a run cannot mount "
                               "the image it is building. Mount its base or another target instead.")
        wrapped = await Get(WrappedTarget, WrappedTargetRequest(addresses[0], description_of_origin=str(address)))
        if wrapped.target.has_field(ContainerImageBaseField):
            # Another image: its filesystem, composed in the same graph (no package, no registry).
            other = await Get(ContainerImageSpec, ContainerImageSpecRequest(addresses[0]))
            return ResolvedMountSource(SpecBase(other.spec), other.context)
    copied = await Get(CopySource, CopySourceRequest(address, request.index, source))
    return ResolvedMountSource(ContextSource(CONTEXT_NAME, copied.path), copied.digest)


def _run_step(step: helpers.RunStep, sources: Dict[int, object]) -> RunStep:
    """The helpers' mounts already are llbkit.image values; a bind or cache mount's `source`
    string is replaced by what `sources` resolved it to (keyed by mount index)."""
    mounts = tuple(replace(m, source=sources[j]) if j in sources else m for j, m in enumerate(step.mounts))
    return RunStep(step.command, mounts=mounts, network=step.network or "default", secrets=step.secrets,
                   security=step.security or "sandbox")


def _mount_sources(step: object) -> List[Tuple[int, str]]:
    if not isinstance(step, helpers.RunStep):
        return []
    return [(j, m.source) for j, m in enumerate(step.mounts)
            if getattr(m, "source", None) is not None and isinstance(m.source, str)]


_ENTITLEMENT_FIX = 'enable it in pants.toml: [buildkit] entitlements = ["{entitlement}"]'


def check_run_privileges(spec: ImageSpec, buildkit: BuildKitSubsystem) -> None:
    """Entitlements and ssh agents the image's runs need must be enabled in `[buildkit]`; an
    `InvalidFieldException` naming the target, the step, the value and the option otherwise."""
    try:
        check_entitlements(spec, buildkit.entitlements, how_to_enable=_ENTITLEMENT_FIX)
    except MissingEntitlementError as e:
        raise InvalidFieldException(
            f"Invalid field `steps` in container_image target {e.spec_name}: {e.field}: {e.problem} "
            f"{e.value!r}: {e.fix}.") from None
    configured = {s.partition("=")[0].strip() for s in buildkit.ssh}
    for s in image_graph(spec):
        for i, step in enumerate(s.steps):
            if not isinstance(step, RunStep):
                continue
            for j, m in enumerate(step.all_mounts):
                if isinstance(m, SshMount) and m.required and m.id not in configured:
                    raise InvalidFieldException(
                        f"Invalid field `steps` in container_image target {s.name}: steps[{i}].mounts[{j}]: "
                        f"ssh_mount({m.id!r}) needs the ssh agent {m.id!r}, which is not configured: add it "
                        f'to pants.toml: [buildkit] ssh = ["{m.id}"] (the agent of $SSH_AUTH_SOCK) or '
                        f'["{m.id}=/path/to/agent.sock"], or pass required=False.')


async def _base_chain(address: Address) -> List[Target]:
    """This target, then each `container_image` its `base` names, nearest first."""
    chain: List[Target] = []
    current = address
    while True:
        wrapped = await Get(WrappedTarget, WrappedTargetRequest(current, description_of_origin=str(address)))
        tgt = wrapped.target
        if chain and not tgt.has_field(ContainerImageBaseField):
            prev = chain[-1]
            raise _field_error(prev.address, "base", softwrap(
                f"""
                {prev[ContainerImageBaseField].value!r} is a `{tgt.alias}` target, not a
                `container_image`: use the address of a container_image target, a registry
                reference such as 'docker.io/library/busybox:1.36', or 'scratch'.
                """))
        if any(t.address == tgt.address for t in chain):
            names = " -> ".join(str(t.address) for t in chain + [tgt])
            raise _field_error(chain[0].address, "base", softwrap(
                f"""
                cyclic base chain {names}: an image cannot be built on itself; point one of them
                at a registry image or 'scratch'.
                """))
        chain.append(tgt)
        value = tgt[ContainerImageBaseField].value or ""
        if not is_address(value):
            return chain
        addresses = await Get(Addresses, UnparsedAddressInputs(
            [value], owning_address=tgt.address,
            description_of_origin=f"the `base` field of {tgt.address}"))
        current = addresses[0]


def _lib_step(step: object, source_path: Optional[str], mount_sources: Dict[int, object]) -> object:
    if isinstance(step, helpers.CopyStep):
        assert source_path is not None
        return CopyStep(ContextSource(CONTEXT_NAME, source_path), step.dest, step.chmod, step.chown)
    if isinstance(step, helpers.AddStep):
        if step.is_url:
            return AddStep(UrlSource(step.source, step.checksum), step.dest, step.chmod, step.chown)  # type: ignore[arg-type]
        assert source_path is not None
        return AddStep(ContextSource(CONTEXT_NAME, source_path), step.dest, step.chmod, step.chown)
    assert isinstance(step, helpers.RunStep)
    return _run_step(step, mount_sources)


@rule(desc="Compile a container_image target's fields to an image spec")
async def container_image_spec(request: ContainerImageSpecRequest, buildkit: BuildKitSubsystem) -> ContainerImageSpec:
    chain = await _base_chain(request.address)
    spec: Optional[ImageSpec] = None
    digests: List[Digest] = []
    for tgt in reversed(chain):  # the root base first
        address = tgt.address
        steps = tgt[ContainerImageStepsField].value or ()
        copies = [(i, s) for i, s in enumerate(steps) if isinstance(s, helpers.CopyStep)
                  or (isinstance(s, helpers.AddStep) and not s.is_url)]
        sources = await MultiGet(Get(CopySource, CopySourceRequest(address, i, s.source)) for i, s in copies)
        source_paths = {i: src.path for (i, _), src in zip(copies, sources)}
        digests.extend(src.digest for src in sources)
        mount_keys = [(i, j, src) for i, s in enumerate(steps) for j, src in _mount_sources(s)]
        mounted = await MultiGet(Get(ResolvedMountSource, MountSourceRequest(address, i, src))
                                 for i, _, src in mount_keys)
        digests.extend(m.digest for m in mounted)
        mount_sources: Dict[int, Dict[int, object]] = {}
        for (i, j, _), m in zip(mount_keys, mounted):
            mount_sources.setdefault(i, {})[j] = m.source
        lib_steps = tuple(_lib_step(s, source_paths.get(i), mount_sources.get(i, {})) for i, s in enumerate(steps))
        base_value = tgt[ContainerImageBaseField].value or ""
        if spec is not None:
            base = SpecBase(spec)
        elif base_value == SCRATCH:
            base = ScratchBase()
        else:
            base = RegistryBase(base_value)
        repository = tgt[ContainerImageRepositoryField].value or (
            posixpath.join(address.spec_path, address.target_name).lower())
        spec = ImageSpec(
            name=str(address),
            base=base,
            steps=lib_steps,
            env=tuple((tgt[ContainerImageEnvField].value or {}).items()),
            workdir=tgt[ContainerImageWorkdirField].value,
            user=tgt[ContainerImageUserField].value,
            entrypoint=tgt[ContainerImageEntrypointField].value,
            cmd=tgt[ContainerImageCmdField].value,
            labels=tuple((tgt[ContainerImageLabelsField].value or {}).items()),
            annotations=tuple((tgt[ContainerImageAnnotationsField].value or {}).items()),
            exposed_ports=tgt[ContainerImageExposedPortsField].value or (),
            volumes=tgt[ContainerImageVolumesField].value or (),
            stop_signal=tgt[ContainerImageStopSignalField].value,
            platforms=tgt[ContainerImagePlatformsField].value or (),  # empty: [buildkit].platforms
            repository=repository,
            tags=tgt[ContainerImageTagsField].value or (),
            registries=tgt[ContainerImageRegistriesField].value or (),
            output_format=tgt[ContainerImageOutputFormatField].value or "oci",
        )
        try:
            validate_spec(spec)
        except ImageSpecError as e:
            raise _wrap_spec_error(address, e) from None
    assert spec is not None
    check_run_privileges(spec, buildkit)
    context = await Get(Digest, MergeDigests(digests))
    snapshot = await Get(Snapshot, Digest, context)
    context_digest = f"sha256:{context.fingerprint}" if snapshot.files else None
    return ContainerImageSpec(request.address, spec, context, context_digest, tuple(t.address for t in chain))


def rules():
    return collect_rules()
