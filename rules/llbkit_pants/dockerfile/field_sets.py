"""The `package` field set of `dockerfile_image` (its own module: the lowering of a
`container_image` built on a `dockerfile_image` packages the base through it)."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Tuple

from pants.core.goals.package import PackageFieldSet

from llbkit_pants.dockerfile.target_types import DockerfileImageSecretsField, DockerfileImageSourceField
from llbkit_pants.target_types import (
    ContainerImageOutputFormatField,
    ContainerImageOutputPathField,
    ContainerImageRegistriesField,
    ContainerImageRepositoryField,
    ContainerImageTagsField,
)


@dataclass(frozen=True)
class DockerfileImagePackageFieldSet(PackageFieldSet):
    required_fields = (DockerfileImageSourceField,)

    source: DockerfileImageSourceField
    output_format: ContainerImageOutputFormatField
    output_path: ContainerImageOutputPathField
    repository: ContainerImageRepositoryField
    tags: ContainerImageTagsField
    registries: ContainerImageRegistriesField
    secrets: DockerfileImageSecretsField

    def output_paths(self) -> Tuple[str, str]:
        return self.output_path.image_and_record_paths(self.output_format.value or "oci")

    def repository_name(self) -> str:
        """`repository`, else the target's path and name (as for container_image)."""
        a = self.address
        return self.repository.value or posixpath.join(a.spec_path, a.target_name).lower()
