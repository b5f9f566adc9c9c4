"""The `[dockerfile]` options: build arguments every `dockerfile_image` gets."""

from __future__ import annotations

from pants.option.option_types import StrListOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import softwrap


class DockerfileSubsystem(Subsystem):
    options_scope = "dockerfile"
    help = "Options for `dockerfile_image` targets (Dockerfiles built by BuildKit's Dockerfile frontend)."

    build_args = StrListOption(
        help=softwrap(
            """
            Build arguments for every `dockerfile_image` whose Dockerfile declares them with
            `ARG`, as `NAME=VALUE`, or `NAME` alone to take the value from the environment Pants
            runs in (read through Pants' environment API, so it is right under pantsd too), e.g.
            `build_args = ["GIT_COMMIT", "REGISTRY=registry.example.com"]` (as
            `[docker].build_args`). A target's `extra_build_args` override them. Images whose
            Dockerfile declares no such ARG do not get it. The values are part of the build's
            cache key: a changed value rebuilds the images that use it.
            """
        ),
    )
