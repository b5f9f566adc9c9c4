"""`pants publish` for `dockerfile_image`: exactly as for `container_image` (see
`goals.publish`): the packaged bytes pushed to each of `registries`, tags last."""

from __future__ import annotations

from dataclasses import dataclass

from llbkit_pants.dockerfile.target_types import DockerfileImageSourceField
from llbkit_pants.goals.publish import PublishContainerImageFieldSet


@dataclass(frozen=True)
class PublishDockerfileImageFieldSet(PublishContainerImageFieldSet):
    required_fields = (DockerfileImageSourceField,)


def rules():
    return [*PublishDockerfileImageFieldSet.rules()]
