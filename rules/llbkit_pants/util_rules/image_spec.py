"""From a `container_image` target's fields to the library's `ImageSpec` and its build context.

`ContainerImageSpecRequest(address)` -> `ContainerImageSpec`: the target's `base` chain is
followed by address (a base that is not a `container_image`, and cycles, are errors naming the
chain); every `copy()` source is resolved to a path in one build context, whose files are a Pants
`Digest` (exactly the files the copies name, across the chain); the library then validates the
spec, and each of its errors is re-raised as an `InvalidFieldException` naming the field alias,
the target, the value and the fix.

Each copy source carries what Pants knows of its files (executable or not) so that lowering
gives them deterministic modes; a `copy_from()` of another `container_image` composes that
image's spec in (its context files join this one's; cycles are errors naming the chain).

In the build context, a path source keeps its path from the build root
(`copy("conf/app.yaml", ...)` in `svc/BUILD` is `svc/conf/app.yaml`); a target source lives in
`.llbkit-targets/<address>/`: its package's files, or its files/resources sources relative to
the target's directory. A package built for each platform of the image (a `pex_binary`, see
`util_rules.platform_packages`) lives in `.llbkit-targets/<address>/<os>_<arch>/` for each
platform and is copied as a `PlatformSource`, unless every platform's build has the same bytes:
then it is there once, shared.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from pants.core.goals.package import BuiltPackage, PackageFieldSet
from pants.core.target_types import (
    FileSourceField,
    FilesGeneratingSourcesField,
    ResourceSourceField,
    ResourcesGeneratingSourcesField,
)
from pants.engine.addresses import Address, Addresses, UnparsedAddressInputs
from pants.engine.fs import (
    EMPTY_DIGEST,
    AddPrefix,
    Digest,
    DigestEntries,
    FileEntry,
    MergeDigests,
    PathGlobs,
    RemovePrefix,
    Snapshot,
)
from pants.engine.internals.graph import Owners, OwnersRequest
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    FieldSetsPerTarget,
    FieldSetsPerTargetRequest,
    HydratedSources,
    HydrateSourcesRequest,
    InvalidFieldException,
    SourcesField,
    Targets,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.engine.unions import UnionMembership
from pants.util.strutil import softwrap

from llbkit_pants import build_file_helpers as helpers
from llbkit_pants.dockerfile.layout_base import layout_name
from llbkit_pants.subsystems.buildkit import BuildKitSubsystem
from llbkit_pants.util_rules.base_chain import (
    ContainerImageChain,
    ContainerImageChainRequest,
    field_error,
    is_address,
)
from llbkit_pants.util_rules.platform_packages import PlatformPackage, PlatformPackageRequest
from llbkit_pants.target_types import (
    ContainerImageAnnotationsField,
    ContainerImageBaseField,
    ContainerImageCmdField,
    ContainerImageCompletePlatformsField,
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

# The library is imported where it is used: loading the plugin must not load it (see register.py).
if TYPE_CHECKING:  # pragma: no cover
    from llbkit.image import ContextSource, ImageSpec, ImageSpecError, RunStep

CONTEXT_NAME = "context"
TARGETS_DIR = ".llbkit-targets"
SCRATCH = "scratch"
# Library field names whose Pants alias differs.
_ALIASES = {"tags": "image_tags"}
_FILE_FIELDS = (FileSourceField, ResourceSourceField, FilesGeneratingSourcesField, ResourcesGeneratingSourcesField)


_field_error = field_error


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
    # The images whose copy_from() steps led here, to report a cycle instead of Pants' rule-graph error.
    copied_by: Tuple[Address, ...] = ()
    # The platforms the image is lowered for (those of the image that copies from this one);
    # empty: the target's own `platforms`, else `[buildkit].platforms`. PEX copies are built for them.
    platforms: Tuple[str, ...] = ()


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
    # What the copies built per platform (PEXes), as JSON documents for image.json (see CopySource.record).
    copies: Tuple[str, ...] = ()


@dataclass(frozen=True)
class CopySourceRequest:
    address: Address
    index: int
    source: str
    dest: str = ""
    # For a package built per platform (a pex_binary): the image's platforms, the registry base
    # at the root of its chain (whose interpreter is inspected) and its `complete_platforms`.
    platforms: Tuple[str, ...] = ()
    base: Optional[str] = None
    complete_platforms: Tuple[Tuple[str, str], ...] = ()


Files = Tuple[Tuple[str, bool], ...]


@dataclass(frozen=True)
class CopySource:
    """Where a `copy()` source is in the build context, the files it adds there, and what Pants
    knows of those files: `(path relative to `path`, executable)` pairs (`""` for a file).

    A package built per platform has `per_platform`: `(platform, path, files)` for each platform
    (`path` is then unused), unless every platform's build gave the same bytes: then it is one
    shared source. `record` says which, for image.json (JSON)."""

    path: str
    digest: Digest
    files: Files = ()
    per_platform: Tuple[Tuple[str, str, Files], ...] = ()
    record: Optional[str] = None


def _files_under(entries: DigestEntries, path: str) -> Tuple[Tuple[str, bool], ...]:
    files = [(e.path, e.is_executable) for e in entries if isinstance(e, FileEntry)]
    for p, executable in files:
        if p == path:
            return (("", executable),)
    if path in ("", "."):
        return tuple(sorted(files))
    return tuple(sorted((p[len(path) + 1:], x) for p, x in files if p.startswith(path + "/")))


async def _with_files(path: str, digest: Digest) -> CopySource:
    entries = await Get(DigestEntries, Digest, digest)
    return CopySource(path, digest, _files_under(entries, path))


async def _package_in(prefix: str, digest: Digest) -> Tuple[str, Digest, Files, Optional[str]]:
    """A package's output under `prefix`: its path (the file, when it is one), digest, files,
    and the sha256 of its one file (None for a directory)."""
    snapshot = await Get(Snapshot, Digest, digest)
    prefixed = await Get(Digest, AddPrefix(digest, prefix))
    path = posixpath.join(prefix, snapshot.files[0]) if len(snapshot.files) == 1 else prefix
    entries = await Get(DigestEntries, Digest, prefixed)
    sha = next((e.file_digest.fingerprint for e in entries if isinstance(e, FileEntry) and e.path == path), None)
    return path, prefixed, _files_under(entries, path), sha


async def _per_platform(request: CopySourceRequest, field_set: PackageFieldSet, member: Any,
                        prefix: str) -> CopySource:
    """A package built for each of the image's platforms by a `PlatformPackageRequest` member
    (see util_rules.platform_packages); one shared source when every platform's build has the
    same bytes (a pure-Python PEX)."""
    files_by_platform = dict(request.complete_platforms)
    builds = await MultiGet(Get(PlatformPackage, PlatformPackageRequest, member(
        field_set, request.address, request.index, p, request.base, files_by_platform.get(p)))
        for p in request.platforms)
    shared = len({x.digest for x in builds}) == 1
    if shared:
        placed = [await _package_in(prefix, builds[0].digest)] * len(builds)
    else:
        placed = [await _package_in(posixpath.join(prefix, x.platform.replace("/", "_")), x.digest) for x in builds]
    record = json.dumps({
        "image": str(request.address), "step": request.index, "target": str(field_set.address),
        "shared": shared,
        "platforms": [{"platform": x.platform, "path": path, "sha256": sha, "built_for": json.loads(x.origin)}
                      for x, (path, _, _, sha) in zip(builds, placed)],
    }, sort_keys=True)
    digest = await Get(Digest, MergeDigests(d for _, d, _, _ in placed))
    if shared:
        path, _, files, _ = placed[0]
        return CopySource(path, digest, files, record=record)
    return CopySource(prefix, digest, (), tuple((x.platform, path, files) for x, (path, _, files, _) in zip(builds, placed)),
                      record=record)


_LINK_ERRORS = (
    re.compile(r'Failed to read link "(?P<link>[^"]+)": Absolute symlink: "(?P<target>[^"]+)"'),
    re.compile(r'While expanding link "(?P<link>[^"]+)": Globs may not traverse outside of the buildroot: '
               r'"(?P<target>[^"]+)"'),
)


def symlink_problem(message: str, repo_path: str) -> Optional[Tuple[str, str]]:
    """`(link, target)` when Pants refused to snapshot a symlink under `repo_path` (absolute, or
    leaving the repository), `link` from the build root; the engine reports it only as text,
    so this is the one place that reads it."""
    for pattern in _LINK_ERRORS:
        m = pattern.search(message)
        if m:
            link = m.group("link")
            if link.startswith("/"):  # the engine names it by its absolute path
                at = link.rfind("/" + repo_path.strip("/") + "/") if repo_path not in ("", ".") else -1
                link = link[at + 1:] if at >= 0 else posixpath.basename(link)
            return link, m.group("target")
    return None


def _host_platform() -> str:
    """This machine's platform, as an image platform (`linux/amd64`)."""
    from pants.engine.platform import Platform

    os_name, _, arch = Platform.create_for_localhost().value.partition("_")
    return f"{os_name}/{_ARCHES.get(arch, arch)}"


_ARCHES = {"x86_64": "amd64", "arm64": "arm64"}  # Pants' platform names -> OCI's


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
async def resolve_copy_source(request: CopySourceRequest, union_membership: UnionMembership) -> CopySource:
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
        if tgt.has_field(ContainerImageBaseField):
            # Its package is an image archive and an image.json: never what was meant.
            raise _field_error(address, "steps", softwrap(
                f"""
                {where} is a `container_image` target: copy() would put its package (the image
                archive) into this image. To copy files out of its filesystem, use a multi-stage
                copy: copy_from({source!r}, "/path/in/that/image", {request.dest!r}); to build on
                top of it, set base={source!r}.
                """))
        prefix = _target_dir(tgt.address)
        field_sets = await Get(FieldSetsPerTarget, FieldSetsPerTargetRequest(PackageFieldSet, [tgt]))
        members = [m for m in union_membership.get(PlatformPackageRequest)
                   if field_sets.field_sets and m.is_for(field_sets.field_sets[0])]
        if members and request.platforms:
            # Built for each platform (a PEX for each platform's interpreter): never a host-built
            # artifact in a foreign image.
            return await _per_platform(request, field_sets.field_sets[0], members[0], prefix)
        foreign = [p for p in request.platforms if p != _host_platform()]
        if field_sets.field_sets and foreign and tgt.alias == "pex_binary":
            raise _field_error(address, "steps", softwrap(
                f"""
                {where} is a `pex_binary`, which must be built for {', '.join(foreign)} (a PEX
                built here is for this machine's interpreter), but llbkit's Python support is not enabled: add
                "llbkit_pants.python" to [GLOBAL].backend_packages (after "pants.backend.python").
                """))
        if field_sets.field_sets:
            built = await Get(BuiltPackage, PackageFieldSet, field_sets.field_sets[0])
            snapshot = await Get(Snapshot, Digest, built.digest)
            digest = await Get(Digest, AddPrefix(built.digest, prefix))
            path = posixpath.join(prefix, snapshot.files[0]) if len(snapshot.files) == 1 else prefix
            return await _with_files(path, digest)
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
            return await _with_files(prefix, digest)
        raise _field_error(address, "steps", softwrap(
            f"""
            {where} is a `{tgt.alias}` target, which has neither a package (such as a `pex_binary`
            or an `archive`) nor files/resources sources: copy a packageable target, or a `files`
            or `resources` target.
            """))

    repo_path = _check_relative(address, request.index, source)
    globs = [f"{repo_path}/**"] if repo_path == "." else [repo_path, f"{repo_path}/**"]
    try:
        snapshot = await Get(Snapshot, PathGlobs(globs))
    except Exception as e:  # the engine's error for a symlink it cannot follow
        problem = symlink_problem(str(e), repo_path)
        if problem is None:
            raise
        link, target = problem
        raise _field_error(address, "steps", softwrap(
            f"""
            {where}: the symlink {link} points to {target!r}, which is absolute or leaves the
            repository, so Pants cannot snapshot it. Make it a relative link to a file inside
            the repository, or copy the file it points to (Pants follows links that stay inside
            the repository and copies their targets' contents).
            """)) from None
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
    return await _with_files(repo_path, snapshot.digest)


async def _other_image(address: Address, where: str, other: Address,
                       copied_by: Tuple[Address, ...], platforms: Tuple[str, ...] = ()) -> ContainerImageSpec:
    """The spec of another container_image that a copy_from() reads or a run mounts: composed
    into this image's graph, so a cycle through copies and mounts is an error naming it."""
    if other in copied_by:
        names = " -> ".join(str(a) for a in copied_by + (other,))
        raise _field_error(address, "steps", softwrap(
            f"""
            {where}: cyclic copy_from() {names}: an image cannot copy from (or mount) itself or
            an image built from it; copy from an image that does not depend on this one.
            """))
    return await Get(ContainerImageSpec, ContainerImageSpecRequest(other, copied_by, platforms))


@dataclass(frozen=True)
class MountSourceRequest:
    address: Address
    index: int
    source: str
    # The images whose copy_from() steps and image mounts led here (see ContainerImageSpecRequest).
    copied_by: Tuple[Address, ...] = ()
    platforms: Tuple[str, ...] = ()  # those of the image being lowered


@dataclass(frozen=True)
class ResolvedMountSource:
    """A bind or cache mount's source as the library's value, and the build-context files (and
    mounted images' contexts) it adds."""

    source: object  # ContextSource | RegistryBase | SpecBase
    digest: Digest


@rule(desc="Resolve a bind_mount()/cache_mount() source of a container_image")
async def resolve_mount_source(request: MountSourceRequest) -> ResolvedMountSource:
    from llbkit.image import ContextSource, RegistryBase, SpecBase

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
            other = await _other_image(address, where, addresses[0], request.copied_by, request.platforms)
            return ResolvedMountSource(SpecBase(other.spec), other.context)
    copied = await Get(CopySource, CopySourceRequest(address, request.index, source))
    return ResolvedMountSource(ContextSource(CONTEXT_NAME, copied.path), copied.digest)


def _run_step(step: helpers.RunStep, sources: Dict[int, object]) -> RunStep:
    """The helpers' mounts already are llbkit.image values; a bind or cache mount's `source`
    string is replaced by what `sources` resolved it to (keyed by mount index)."""
    from llbkit.image import RunStep

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
    """Entitlements and ssh agents the runs solved with the image need (its own, its bases', and
    those of the images it copies from or mounts) must be enabled in `[buildkit]`; an
    `InvalidFieldException` naming the target, the step, the value and the option otherwise."""
    from llbkit.image import RunStep, SshMount, image_graph
    from llbkit.image.entitlements import MissingEntitlementError, check_entitlements

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


def _lib_step(step: Any, context_source: Optional[ContextSource], image: Any,
              mount_sources: Dict[int, object]) -> Any:
    """A BUILD-file step as the library's step: `context_source` is a copy()/add() source
    resolved, `image` a copy_from() image, `mount_sources` a run's resolved mount sources."""
    from llbkit.image import AddStep, CopyStep, EnvStep, ImageSource, UrlSource, UserStep, WorkdirStep

    if isinstance(step, helpers.CopyStep):
        assert context_source is not None
        return CopyStep(context_source, step.dest, step.chmod, step.chown)
    if isinstance(step, helpers.CopyFromStep):
        source = ImageSource(image.spec if isinstance(image, ContainerImageSpec) else image, step.source)
        return CopyStep(source, step.dest, step.chmod, step.chown)
    if isinstance(step, helpers.AddStep):
        if step.is_url:
            return AddStep(UrlSource(step.source, step.checksum), step.dest, step.chmod, step.chown)  # type: ignore[arg-type]
        assert context_source is not None
        return AddStep(context_source, step.dest, step.chmod, step.chown)
    if isinstance(step, helpers.EnvStep):
        return EnvStep(step.env)
    if isinstance(step, helpers.UserStep):
        return UserStep(step.user)
    if isinstance(step, helpers.WorkdirStep):
        return WorkdirStep(step.path)
    assert isinstance(step, helpers.RunStep)
    return _run_step(step, mount_sources)


async def _copy_from_image(address: Address, index: int, step: helpers.CopyFromStep,
                           copied_by: Tuple[Address, ...], platforms: Tuple[str, ...]) -> Any:
    """The image a `copy_from()` reads: another container_image's spec, or a registry reference
    (the library checks that it is pinned by digest)."""
    where = f"steps[{index}] copy_from() image {step.image!r}"
    if not is_address(step.image):
        return step.image
    addresses = await Get(Addresses, UnparsedAddressInputs(
        [step.image], owning_address=address,
        description_of_origin=f"the {where} in the `steps` field of {address}"))
    other = addresses[0]
    wrapped = await Get(WrappedTarget, WrappedTargetRequest(other, description_of_origin=str(address)))
    if not wrapped.target.has_field(ContainerImageBaseField):
        raise _field_error(address, "steps", softwrap(
            f"""
            {where} is a `{wrapped.target.alias}` target, not a `container_image`: copy_from()
            reads another image's filesystem; to copy a target's files or package, use
            copy({step.image!r}, {step.dest!r}).
            """))
    return await _other_image(address, where, other, copied_by, platforms)


def _complete_platform_files(address: Address, value: Optional[Dict[str, str]],
                             platforms: Tuple[str, ...]) -> Tuple[Tuple[str, str], ...]:
    """The `complete_platforms` field: normalized platform -> `file` target address."""
    from llbkit.image import ImageSpecError, normalize_platforms

    out = []
    for key, target in (value or {}).items():
        try:
            (platform,) = normalize_platforms([key], spec_name=str(address))
        except ImageSpecError as e:
            raise _field_error(address, "complete_platforms", f"{key!r} is not a platform ({e.problem or e}): "
                               'use os/arch, e.g. "linux/arm64"') from None
        if platform not in platforms:
            raise _field_error(address, "complete_platforms", softwrap(
                f"""
                {key!r} is not one of the platforms the image is built for ({', '.join(platforms)}):
                fix the platform, or drop the entry.
                """))
        if not is_address(target):
            raise _field_error(address, "complete_platforms", f"the value for {key!r}, {target!r}, must be the "
                               'address of a `file` target, e.g. "//3rdparty/platforms:linux_arm64"')
        if platform in dict(out):
            raise _field_error(address, "complete_platforms", f"{key!r} names {platform} again: give each "
                               "platform one entry")
        out.append((platform, target))
    return tuple(sorted(out))


@rule(desc="Compile a container_image target's fields to an image spec")
async def container_image_spec(request: ContainerImageSpecRequest, buildkit: BuildKitSubsystem) -> ContainerImageSpec:
    from llbkit.image import (ImageSpec, ImageSpecError, LayoutBase, RegistryBase, ScratchBase,
                              SpecBase, validate_spec)

    chain_info = await Get(ContainerImageChain, ContainerImageChainRequest(request.address))
    chain = chain_info.targets
    looped = [t.address for t in chain if t.address in request.copied_by]
    if looped:
        names = " -> ".join(str(a) for a in request.copied_by + (request.address,))
        raise _field_error(request.copied_by[-1], "steps", softwrap(
            f"""
            cyclic copy_from() {names}: {request.address} is built on {looped[0]}, which copies
            from it; copy from an image that does not depend on this one.
            """))
    from llbkit_pants.util_rules.lowering import declared_platforms

    platforms = request.platforms or declared_platforms(
        request.address, chain[0][ContainerImagePlatformsField].value or (), buildkit)
    root_base = chain[-1][ContainerImageBaseField].value or ""
    interpreter_base = None if root_base in ("", SCRATCH) else root_base
    spec: Optional[ImageSpec] = None
    digests: List[Digest] = []
    records: List[str] = []
    for tgt in reversed(chain):  # the root base first
        address = tgt.address
        steps = tgt[ContainerImageStepsField].value or ()
        copies = [(i, s) for i, s in enumerate(steps) if isinstance(s, helpers.CopyStep)
                  or (isinstance(s, helpers.AddStep) and not s.is_url)]
        cp_files = _complete_platform_files(address, tgt[ContainerImageCompletePlatformsField].value, platforms)
        sources = await MultiGet(Get(CopySource, CopySourceRequest(
            address, i, s.source, s.dest, platforms, interpreter_base, cp_files)) for i, s in copies)
        # A copy's files carry what Pants knows of their modes (see ContextSource.files); an
        # add() unpacks archives or copies files as they are, as Docker's ADD does.
        context_sources = {i: _context_source(src, isinstance(s, helpers.CopyStep)) for (i, s), src in zip(copies, sources)}
        digests.extend(src.digest for src in sources)
        records.extend(src.record for src in sources if src.record)
        # copy_from() another container_image, or a mount of one: its spec is composed in; its
        # copies read the same build context, so its files join this one's.
        copied_by = request.copied_by + tuple(t.address for t in chain[:chain.index(tgt) + 1])
        image_sources = {}
        for i, s in enumerate(steps):
            if isinstance(s, helpers.CopyFromStep):
                image_sources[i] = await _copy_from_image(address, i, s, copied_by, platforms)
        others = [img for img in image_sources.values() if isinstance(img, ContainerImageSpec)]
        digests.extend(img.context for img in others)
        records.extend(r for img in others for r in img.copies)
        mount_keys = [(i, j, src) for i, s in enumerate(steps) for j, src in _mount_sources(s)]
        mounted = await MultiGet(Get(ResolvedMountSource, MountSourceRequest(address, i, src, copied_by, platforms))
                                 for i, _, src in mount_keys)
        digests.extend(m.digest for m in mounted)
        mount_sources: Dict[int, Dict[int, object]] = {}
        for (i, j, _), m in zip(mount_keys, mounted):
            mount_sources.setdefault(i, {})[j] = m.source
        lib_steps = tuple(_lib_step(s, context_sources.get(i), image_sources.get(i), mount_sources.get(i, {}))
                          for i, s in enumerate(steps))
        base_value = tgt[ContainerImageBaseField].value or ""
        if spec is not None:
            base = SpecBase(spec)
        elif chain_info.dockerfile_base is not None:  # its packaged OCI layout (see lowering)
            base = LayoutBase(layout_name(chain_info.dockerfile_base))
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
    return ContainerImageSpec(request.address, spec, context, context_digest, tuple(t.address for t in chain),
                              tuple(records))


def _context_source(src: CopySource, is_copy: bool) -> Any:
    """A resolved copy()/add() source as the library's value: a `PlatformSource` for a package
    built per platform."""
    from llbkit.image import ContextSource, PlatformSource

    if src.per_platform:
        return PlatformSource(tuple((p, ContextSource(CONTEXT_NAME, path, files=files if is_copy else None))
                                    for p, path, files in src.per_platform))
    return ContextSource(CONTEXT_NAME, src.path, files=src.files if is_copy else None)


def rules():
    return collect_rules()
