"""Dependency inference for `dockerfile_image`, from its parsed Dockerfile.

As Pants' docker backend infers them: a `COPY`/`ADD` source that is the output path of a
packageable target (`pex_binary`, `archive`, ...) depends on that target; one that names
workspace files depends on the `files`/`resources` targets owning them (`COPY . ...` with a
`context_root`: those owning the files under it; from the build root: none, list them); a `FROM` whose
(expanded) image is an address, through a build argument (`ARG BASE=//images:base`), depends
on that image target. Problems (unowned files, bad paths) are left to the context rule, which
explains them; inference never fails on them.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import PurePath
from typing import Dict, List

from pants.core.goals.package import AllPackageableTargets, OutputPathField, find_all_packageable_targets
from pants.engine.addresses import Addresses, UnparsedAddressInputs
from pants.engine.fs import PathGlobs, Paths
from pants.engine.internals.graph import Owners, OwnersRequest
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import FieldSet, InferDependenciesRequest, InferredDependencies, InvalidFieldException
from pants.engine.unions import UnionRule

from llbkit_pants.dockerfile.context import matches_package, source_glob
from llbkit_pants.dockerfile.model import DockerfileProblem
from llbkit_pants.dockerfile.parser import ParsedDockerfile, ParsedDockerfileRequest
from llbkit_pants.dockerfile.target_types import (
    DockerfileImageBuildArgsField,
    DockerfileImageContextRootField,
    DockerfileImageDependenciesField,
    DockerfileImageSourceField,
)


@dataclass(frozen=True)
class DockerfileImageInferenceFieldSet(FieldSet):
    required_fields = (DockerfileImageSourceField, DockerfileImageDependenciesField)

    source: DockerfileImageSourceField
    build_args: DockerfileImageBuildArgsField
    context_root: DockerfileImageContextRootField
    dependencies: DockerfileImageDependenciesField


class InferDockerfileImageDependencies(InferDependenciesRequest):
    infer_from = DockerfileImageInferenceFieldSet


def literal_build_args(values) -> Dict[str, str]:
    """The `NAME=VALUE` entries of `extra_build_args` (a bare `NAME` comes from the environment,
    which inference does not read)."""
    return {k: v for k, eq, v in (a.partition("=") for a in values or ()) if eq}


@rule(desc="Infer dockerfile_image dependencies from its Dockerfile")
async def infer_dockerfile_image_dependencies(request: InferDockerfileImageDependencies,
                                              packageable: AllPackageableTargets) -> InferredDependencies:
    fs = request.field_set
    address = fs.address
    parsed = await Get(ParsedDockerfile, ParsedDockerfileRequest(address))
    df = parsed.dockerfile
    try:
        root = fs.context_root.root(address)
        bases = df.stage_bases(literal_build_args(fs.build_args.value), "linux/amd64", "linux/amd64")
    except (DockerfileProblem, InvalidFieldException):  # explained by the package rule
        root, bases = "", ()
    images = [b.value for b in bases if b.kind == "target"]
    targets = await Get(Addresses, UnparsedAddressInputs(
        images, owning_address=address, skip_invalid_addresses=True,
        description_of_origin=f"the FROM images of {parsed.path} ({address})"))
    paths: List[str] = []
    for source, _ in df.copy_sources():
        path = source_glob(root, source)
        if path is None and root:  # the whole context (`COPY . ...`): what is under the root
            paths.append(root)
        elif path is not None and path != "../" and "$" not in source:
            paths.append(path)
    rel_paths = [posixpath.relpath(p, root) if root else p for p in paths]
    # As Pants' docker backend: a packageable target whose output path (with any of the
    # sources' file endings) is a COPY source.
    endings = {PurePath(p).suffix[1:] or None for p in rel_paths}
    inferred = set(targets)
    for tgt in packageable:
        output = tgt.get(OutputPathField)
        outputs = {output.value_or_default(file_ending=e) for e in endings}
        if any(matches_package(p, tuple(outputs)) for p in rel_paths):
            inferred.add(tgt.address)
    found = await MultiGet(Get(Paths, PathGlobs([p, f"{p}/**"])) for p in paths)
    files = sorted({f for fd in found for f in fd.files})
    owners = await MultiGet(Get(Owners, OwnersRequest((f,))) for f in files)
    inferred.update(a for o in owners for a in o)
    inferred.discard(address)
    return InferredDependencies(sorted(inferred))


def rules():
    return [
        *collect_rules(),
        # Pants' own rule for AllPackageableTargets (the package goal's), so the backend does not
        # depend on the goal's rules being installed.
        *collect_rules({"find_all_packageable_targets": find_all_packageable_targets}),
        UnionRule(InferDependenciesRequest, InferDockerfileImageDependencies),
    ]
