"""llbkit's Pants backend: `container_image` targets built with BuildKit.

Enable with `backend_packages = ["llbkit_pants"]` (and `pythonpath` pointing at rules/ and src/).
This module only wires the backend together.
"""

from pants.build_graph.build_file_aliases import BuildFileAliases

from llbkit_pants.build_file_helpers import BUILD_FILE_HELPERS
from llbkit_pants.dockerfile import context as dockerfile_context
from llbkit_pants.dockerfile import dependencies as dockerfile_dependencies
from llbkit_pants.dockerfile import job as dockerfile_job
from llbkit_pants.dockerfile import layout_base as dockerfile_layout_base
from llbkit_pants.dockerfile import package as dockerfile_package
from llbkit_pants.dockerfile import parser as dockerfile_parser
from llbkit_pants.dockerfile import publish as dockerfile_publish
from llbkit_pants.dockerfile import tailor as dockerfile_tailor
from llbkit_pants.dockerfile.subsystem import DockerfileSubsystem
from llbkit_pants.dockerfile.target_types import DockerfileImageTarget
from llbkit_pants.goals import package
from llbkit_pants.goals import workers as workers_goal
from llbkit_pants.goals import generate_lockfiles, llb, publish
from llbkit_pants.subsystems.base_images import BaseImagesSubsystem
from llbkit_pants.subsystems.buildkit import BuildKitSubsystem
from llbkit_pants.target_types import ContainerImageTarget
from llbkit_pants.util_rules import (
    base_chain,
    base_lock,
    bases,
    dependencies,
    image_spec,
    lowering,
    machine,
    solver,
    stored_image,
)


def build_file_aliases():
    return BuildFileAliases(objects=dict(BUILD_FILE_HELPERS))


def target_types():
    return [ContainerImageTarget, DockerfileImageTarget]


def rules():
    return [
        *BuildKitSubsystem.rules(),
        *BaseImagesSubsystem.rules(),
        *base_chain.rules(),
        *base_lock.rules(),
        *image_spec.rules(),
        *dependencies.rules(),
        *solver.rules(),
        *machine.rules(),
        *bases.rules(),
        *lowering.rules(),
        *stored_image.rules(),
        *package.rules(),
        *workers_goal.rules(),
        *publish.rules(),
        *llb.rules(),
        *generate_lockfiles.rules(),
        *DockerfileSubsystem.rules(),
        *dockerfile_parser.rules(),
        *dockerfile_context.rules(),
        *dockerfile_dependencies.rules(),
        *dockerfile_job.rules(),
        *dockerfile_layout_base.rules(),
        *dockerfile_package.rules(),
        *dockerfile_publish.rules(),
        *dockerfile_tailor.rules(),
    ]
