"""A `dockerfile_image`'s build context: exactly the files its `COPY`/`ADD` sources read.

`DockerfileContextRequest(address)` -> `DockerfileContext`. Each context source (see
`model.Dockerfile.copy_sources`) is a path from the context root (`context_root`, the build
root by default, as in Pants' `docker_image`): a file, a directory or a pattern. It is served by
the outputs of the target's packaged dependencies (`pex_binary`, `archive`, ...), which sit in
the context at their output paths as in Pants' docker backend, or else by workspace files, each
of which must be owned by a `files` or `resources` target (otherwise Pants could not know when
it changes, and the error says which target to declare). `COPY . ...` takes the files of the
target's `files`/`resources` dependencies under the root. The root's `.dockerignore` comes
along, so the frontend applies it as `docker build` does.

The context's content digest is in the build's cache key, so an edit to any file the Dockerfile
does not copy changes nothing.
"""

from __future__ import annotations

import fnmatch
import posixpath
from dataclasses import dataclass
from typing import List, Optional, Set, Tuple

from pants.core.goals.package import BuiltPackage, PackageFieldSet
from pants.engine.addresses import Address, Addresses
from pants.engine.fs import EMPTY_DIGEST, Digest, MergeDigests, PathGlobs, Paths, RemovePrefix, Snapshot
from pants.engine.internals.graph import Owners, OwnersRequest
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    Dependencies,
    DependenciesRequest,
    FieldSetsPerTarget,
    FieldSetsPerTargetRequest,
    HydratedSources,
    HydrateSourcesRequest,
    SourcesField,
    Target,
    Targets,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.util.strutil import softwrap

from llbkit_pants.dockerfile.parser import DockerfileError, ParsedDockerfile, ParsedDockerfileRequest
from llbkit_pants.dockerfile.target_types import DockerfileImageContextRootField, DockerfileImageSourceField
from llbkit_pants.target_types import ContainerImageBaseField
from llbkit_pants.util_rules.image_spec import _FILE_FIELDS

DOCKERIGNORE = ".dockerignore"


def is_image_target(tgt: Target) -> bool:
    return tgt.has_field(ContainerImageBaseField) or tgt.has_field(DockerfileImageSourceField)


def source_glob(root: str, source: str) -> Optional[str]:
    """A COPY source as a path from the build root (`None` for the whole context, `.`).
    Docker reads every source relative to the context root, a leading `/` included."""
    norm = posixpath.normpath(source.lstrip("/") or ".")
    if norm == "." or norm == "*":
        return None
    if norm == ".." or norm.startswith("../"):
        return "../"
    return posixpath.join(root, norm) if root else norm


def matches_package(source_path: str, package_files: Tuple[str, ...]) -> List[str]:
    """The packaged files a COPY source (a path from the context root) names."""
    out = []
    for f in package_files:
        if f == source_path or f.startswith(source_path.rstrip("/") + "/") or fnmatch.fnmatchcase(f, source_path):
            out.append(f)
    return out


@dataclass(frozen=True)
class DockerfileContextRequest:
    address: Address


@dataclass(frozen=True)
class DockerfileContext:
    parsed: ParsedDockerfile
    context: Digest  # relative to the context root
    context_digest: Optional[str]  # its content digest, None when empty
    dockerfile: Digest  # the Dockerfile alone, by its file name (the frontend's `filename`)


def _where(parsed: ParsedDockerfile, line: int, source: str, cmd: str = "COPY/ADD") -> str:
    return f"{parsed.path}:{line}: {cmd} source {source!r}"


@rule(desc="Collect a dockerfile_image's build context")
async def dockerfile_context(request: DockerfileContextRequest) -> DockerfileContext:
    address = request.address
    parsed = await Get(ParsedDockerfile, ParsedDockerfileRequest(address))
    wrapped = await Get(WrappedTarget, WrappedTargetRequest(address, description_of_origin=str(address)))
    tgt = wrapped.target
    root = tgt[DockerfileImageContextRootField].root(address)
    deps = await Get(Targets, DependenciesRequest(tgt[Dependencies]))

    # Packaged dependencies, at their output paths (relative to the context root).
    packageable = [d for d in deps if not is_image_target(d)]
    field_sets = await Get(FieldSetsPerTarget, FieldSetsPerTargetRequest(PackageFieldSet, packageable))
    packages = await MultiGet(Get(BuiltPackage, PackageFieldSet, fs[0])
                              for fs in field_sets.collection if fs)
    package_snapshots = await MultiGet(Get(Snapshot, Digest, p.digest) for p in packages)
    package_files = tuple(sorted({f for s in package_snapshots for f in s.files}))

    digests: List[Digest] = [p.digest for p in packages]
    workspace_files: Set[str] = set()
    whole_context = False
    for source, line in parsed.dockerfile.copy_sources():
        if "$" in source:
            raise DockerfileError(softwrap(
                f"""
                dockerfile_image {address}: {_where(parsed, line, source)} uses a variable: llbkit
                must know which files a build reads before it runs (they are its cache key); name
                the path (a deliberate difference from `docker build`).
                """))
        path = source_glob(root, source)
        if path is None:
            whole_context = True
            continue
        if path == "../":
            raise DockerfileError(f"dockerfile_image {address}: {_where(parsed, line, source)} leaves the context "
                                  f"root ({root or 'the build root'}); set `context_root`, or copy it from a target.")
        rel = posixpath.relpath(path, root) if root else path
        if matches_package(rel, package_files):
            continue
        found = await Get(Paths, PathGlobs([path, f"{path}/**"]))
        if not found.files:
            where = f"under {root}/" if root else "from the build root"
            raise DockerfileError(softwrap(
                f"""
                dockerfile_image {address}: {_where(parsed, line, source)}: there is no file or
                directory {path!r} ({where}: sources are relative to the context root, see
                `context_root`), and no packaged dependency has that output path
                (their outputs: {', '.join(package_files) or 'none'}).
                """))
        owners = await MultiGet(Get(Owners, OwnersRequest((f,))) for f in found.files)
        owner_targets = await Get(Targets, Addresses(sorted({a for o in owners for a in o})))
        file_owners = {t.address for t in owner_targets if any(t.has_field(f) for f in _FILE_FIELDS)}
        unowned = [f for f, o in zip(found.files, owners) if not file_owners.intersection(o)]
        if unowned:
            directory = posixpath.dirname(unowned[0])
            name = posixpath.relpath(unowned[0], directory or ".")
            raise DockerfileError(softwrap(
                f"""
                dockerfile_image {address}: {_where(parsed, line, source)}: {unowned[0]!r}
                {f'(and {len(unowned) - 1} more) ' if len(unowned) > 1 else ''}is not owned by a
                `files` or `resources` target, so Pants would not know when it changes. Declare
                one in {directory or 'the root'}/BUILD, e.g. `files(name="files", sources=[{name!r}])`;
                it is then inferred as a dependency of {address}.
                """))
        workspace_files.update(found.files)
    if whole_context:
        # `COPY . ...`: the files of the target's files/resources dependencies under the root.
        sources = await MultiGet(Get(HydratedSources, HydrateSourcesRequest(d[SourcesField]))
                                 for d in deps if any(d.has_field(f) for f in _FILE_FIELDS))
        for s in sources:
            workspace_files.update(f for f in s.snapshot.files if not root or f.startswith(root + "/"))
    ignore = posixpath.join(root, DOCKERIGNORE) if root else DOCKERIGNORE
    ignore_files = await Get(Paths, PathGlobs([ignore]))
    workspace_files.update(ignore_files.files)
    if workspace_files:
        snapshot = await Get(Snapshot, PathGlobs(sorted(workspace_files)))
        workspace = await Get(Digest, RemovePrefix(snapshot.digest, root)) if root else snapshot.digest
        digests.append(workspace)
    context = await Get(Digest, MergeDigests(digests)) if digests else EMPTY_DIGEST
    context_snapshot = await Get(Snapshot, Digest, context)
    dockerfile = await Get(Digest, RemovePrefix(parsed.digest, posixpath.dirname(parsed.path))) \
        if posixpath.dirname(parsed.path) else parsed.digest
    return DockerfileContext(parsed, context, f"sha256:{context.fingerprint}" if context_snapshot.files else None,
                             dockerfile)


def rules():
    return collect_rules()
