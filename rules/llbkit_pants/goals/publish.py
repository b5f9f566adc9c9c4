"""`pants publish` for `container_image`: push the packaged bytes to each of `registries`.

What is pushed is exactly what `pants package` wrote (same bytes, same digests): the OCI layout
tar's index, its manifests and blobs; for `output_format="docker"` the archive's one image
manifest (a docker archive holds one platform; its manifest is what a registry serves for it).
Per registry, one `python -m llbkit push` process (see `llbkit.cli.push`) pushes blobs first,
skipping those already there, then manifests by digest, the index, and the tags last, so a tag
never names a half-pushed image. Pants runs publish processes as `InteractiveProcess`es; this one
runs with Pants' own interpreter and llbkit's sources (the push needs only the standard
library), with Docker's config for credentials (`DOCKER_CONFIG`, else `~/.docker/config.json`).

`pants publish --output=FILE` records, per registry, the references pushed and the digest
(`data`), like the other publish backends.
"""

from __future__ import annotations

import json
import os
import posixpath
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import llbkit
from pants.core.goals.package import BuiltPackage
from pants.core.goals.publish import (
    PublishFieldSet,
    PublishOutputData,
    PublishPackages,
    PublishProcesses,
    PublishRequest,
)
from pants.engine.addresses import Address
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import Digest, DigestContents, DigestSubset, MergeDigests, PathGlobs
from pants.engine.process import InteractiveProcess
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.target import InvalidFieldException, WrappedTarget, WrappedTargetRequest

from llbkit_pants.target_types import (
    ContainerImageBaseField,
    ContainerImageOutputFormatField,
    ContainerImageRegistriesField,
    ContainerImageRepositoryField,
    ContainerImageSkipPushField,
    ContainerImageTagsField,
)
from llbkit_pants.util_rules.image_spec import ContainerImageSpec, ContainerImageSpecRequest
from llbkit_pants.util_rules.references import image_references

PUBLISHER = "llbkit"
# What the push process sees of the user's environment: Docker's config and credential helpers
# (found on PATH), CA bundles for HTTPS registries, llbkit's cache dir (where it remembers which
# repositories hold a blob, to mount rather than upload it) and LLBKIT_DEBUG for bug reports.
PASSTHROUGH_ENV = ("DOCKER_CONFIG", "HOME", "PATH", "SSL_CERT_FILE", "SSL_CERT_DIR", "LLBKIT_CACHE",
                   "XDG_CACHE_HOME", "LLBKIT_DEBUG")
IMAGE_SUFFIXES = (".oci.tar", ".docker.tar")
RECORD_SUFFIX = ".image.json"


@dataclass(frozen=True)
class PublishContainerImageRequest(PublishRequest):
    pass


@dataclass(frozen=True)
class PublishContainerImageFieldSet(PublishFieldSet):
    publish_request_type = PublishContainerImageRequest
    required_fields = (ContainerImageBaseField,)

    registries: ContainerImageRegistriesField
    repository: ContainerImageRepositoryField
    tags: ContainerImageTagsField
    skip_push: ContainerImageSkipPushField
    output_format: ContainerImageOutputFormatField

    def get_output_data(self) -> PublishOutputData:
        return PublishOutputData({"publisher": PUBLISHER, **super().get_output_data()})


@dataclass(frozen=True)
class RegistryPush:
    """One push process: the references on one registry, and what their digest will be."""

    registry: str
    repository: str
    references: Tuple[str, ...]


def plan_pushes(
    address: Address, registries: Sequence[str], repository: Optional[str], tags: Sequence[str]
) -> Tuple[RegistryPush, ...]:
    """`REGISTRY/REPOSITORY:TAG` for each registry (in order) and tag; an error naming the target,
    the field and the fix when there is nowhere to push."""
    if not registries:
        raise InvalidFieldException(
            f"Invalid field `{ContainerImageRegistriesField.alias}` in container_image target {address}: "
            f"`publish` needs at least one registry to push to, e.g. "
            f'registries=["registry.example.com"]; or set skip_push=True to leave this image out.'
        )
    if not repository:
        raise InvalidFieldException(
            f"Invalid field `{ContainerImageRepositoryField.alias}` in container_image target {address}: "
            f'`publish` needs a repository name, e.g. repository="acme/app".'
        )
    # A registry or tag listed twice is pushed once. No tag: the image is still pushed, by
    # digest only (the reference names the repository).
    return tuple(
        RegistryPush(r, repository, image_references(repository, tags, [r]) or (f"{r}/{repository}",))
        for r in dict.fromkeys(registries)
    )


def pushed_digest(record: Mapping[str, Any]) -> Tuple[str, str]:
    """`(digest, media type)` of what the package's image file holds at its root: the index of an
    OCI layout, or the single manifest of a docker archive."""
    if record.get("format") == "docker":
        desc = record["platforms"][0]["manifest"]
    else:
        desc = record["index"]
    return desc["digest"], desc["mediaType"]


def llbkit_pythonpath() -> str:
    """The directory llbkit is imported from (its sources, or an installed copy)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(llbkit.__file__)))


def push_argv(python: str, layout: str, references: Sequence[str]) -> Tuple[str, ...]:
    return (python, "-m", "llbkit", "push", "--layout", layout, *references)


def _artifacts(address: Address, packages: Sequence[BuiltPackage]) -> Tuple[BuiltPackage, str, str]:
    for pkg in packages:
        paths = [a.relpath for a in pkg.artifacts if a.relpath]
        image = next((p for p in paths if p.endswith(IMAGE_SUFFIXES)), None)
        record = next((p for p in paths if p.endswith(RECORD_SUFFIX)), None)
        if image and record:
            return pkg, image, record
    raise InvalidFieldException(
        f"container_image target {address}: its package has no image and image.json to publish "
        f"(artifacts: {[a.relpath for p in packages for a in p.artifacts]}); this is a bug in llbkit, "
        "please report it."
    )


@rule(desc="Plan the push of a container image")
async def publish_container_image(request: PublishContainerImageRequest) -> PublishProcesses:
    fs = request.field_set
    address = fs.address
    if fs.skip_push.value:
        return PublishProcesses([
            PublishPackages(
                names=(str(address),),
                description=f"(by `{ContainerImageSkipPushField.alias}` on {address})",
            )
        ])
    wrapped = await Get(WrappedTarget, WrappedTargetRequest(address, description_of_origin=str(address)))
    if wrapped.target.has_field(ContainerImageBaseField):
        # The spec holds the defaulted, validated repository, tags and registries.
        spec = (await Get(ContainerImageSpec, ContainerImageSpecRequest(address))).spec
        registries, repository, tags = spec.registries, spec.repository, spec.tags
    else:  # a dockerfile_image: the same fields, defaulted the same way
        registries, tags = tuple(fs.registries.value or ()), tuple(fs.tags.value or ())
        repository = fs.repository.value or posixpath.join(address.spec_path, address.target_name).lower()
    pushes = plan_pushes(address, registries, repository, tags)
    pkg, image_path, record_path = _artifacts(address, request.packages)
    contents = await Get(DigestContents, DigestSubset(pkg.digest, PathGlobs([record_path])))
    record = json.loads(contents[0].content)
    digest, media_type = pushed_digest(record)
    platforms = [{"platform": p["platform"], "digest": p["manifest"]["digest"]} for p in record["platforms"]]
    env = await Get(EnvironmentVars, EnvironmentVarsRequest(PASSTHROUGH_ENV))
    input_digest = await Get(Digest, MergeDigests(p.digest for p in request.packages))
    process_env: Dict[str, str] = {k: v for k, v in env.items() if v is not None}
    process_env["PYTHONPATH"] = llbkit_pythonpath()
    out: List[PublishPackages] = []
    for push in pushes:
        out.append(PublishPackages(
            names=push.references,
            process=InteractiveProcess(
                argv=push_argv(sys.executable, image_path, push.references),
                env=process_env,
                input_digest=input_digest,
            ),
            description=push.registry,
            data=PublishOutputData({
                "registry": push.registry,
                "repository": push.repository,
                "references": push.references,
                "digest": digest,
                "media_type": media_type,
                "platforms": tuple(PublishOutputData(p) for p in platforms),
            }),
        ))
    return PublishProcesses(out)


def rules():
    return [*collect_rules(), *PublishContainerImageFieldSet.rules()]
