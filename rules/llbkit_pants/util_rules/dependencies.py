"""Dependency inference for `container_image`: the targets `base`, `copy()`/`add()` sources and
mount sources name.

A `base`, `copy_from()` image, `copy()`/`add()` source or mount source starting with `:` or `//`
is a target address; any other such source (not a URL, not an image pinned by digest) is a path
under the BUILD file's directory, whose owning targets become dependencies.
Users never list them twice. Bad values are left to the spec rule, which explains them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pants.engine.addresses import Addresses, UnparsedAddressInputs
from pants.engine.fs import PathGlobs, Paths
from pants.engine.internals.graph import Owners, OwnersRequest
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import FieldSet, InferDependenciesRequest, InferredDependencies
from pants.engine.unions import UnionRule

from llbkit_pants import build_file_helpers as helpers
from llbkit_pants.target_types import (
    ContainerImageBaseField,
    ContainerImageDependenciesField,
    ContainerImageStepsField,
)
from llbkit_pants.util_rules.image_spec import CopyPathError, copy_source_path, is_address


@dataclass(frozen=True)
class ContainerImageInferenceFieldSet(FieldSet):
    required_fields = (ContainerImageBaseField, ContainerImageDependenciesField)

    base: ContainerImageBaseField
    steps: ContainerImageStepsField
    dependencies: ContainerImageDependenciesField


class InferContainerImageDependencies(InferDependenciesRequest):
    infer_from = ContainerImageInferenceFieldSet


@rule(desc="Infer container_image dependencies from `base`, copy()/copy_from()/add() and mount sources")
async def infer_container_image_dependencies(request: InferContainerImageDependencies) -> InferredDependencies:
    fs = request.field_set
    address = fs.address
    values = [fs.base.value] if fs.base.value and is_address(fs.base.value) else []
    paths = []
    sources = []
    for step in fs.steps.value or ():
        if isinstance(step, helpers.CopyFromStep) and is_address(step.image):
            values.append(step.image)
        elif isinstance(step, helpers.CopyStep) or (isinstance(step, helpers.AddStep) and not step.is_url):
            sources.append(step.source)
        elif isinstance(step, helpers.RunStep):  # bind_mount() and cache_mount(source=...)
            sources.extend(m.source for m in step.mounts if isinstance(getattr(m, "source", None), str)
                           and "@sha256:" not in m.source)
    for source in sources:
        if is_address(source):
            values.append(source)
        else:
            try:
                paths.append(copy_source_path(address.spec_path, source))
            except CopyPathError:
                pass  # the spec rule explains it
    addresses = await Get(Addresses, UnparsedAddressInputs(
        values, owning_address=address, skip_invalid_addresses=True,
        description_of_origin=f"the `base`, copy_from() images and copy()/add()/mount sources of {address}"))
    files_: set = set()
    for p in paths:
        try:
            found = await Get(Paths, PathGlobs([p, f"{p}/**"]))
        except Exception:  # e.g. a symlink Pants cannot follow: the spec rule explains it
            continue
        files_.update(found.files)
    files = sorted(files_)
    owners = await MultiGet(Get(Owners, OwnersRequest((f,))) for f in files)
    inferred = set(addresses) | {a for o in owners for a in o}
    inferred.discard(address)
    return InferredDependencies(sorted(inferred))


def rules():
    return [
        *collect_rules(),
        UnionRule(InferDependenciesRequest, InferContainerImageDependencies),
    ]
