"""The `dockerfile_image` target: a Dockerfile built by BuildKit's own Dockerfile frontend.

Field names are those of Pants' `docker_image` where the meaning is the same (`source`,
`instructions`, `extra_build_args`, `target_stage`, `image_tags`, `repository`, `registries`,
`skip_push`, `secrets`, `build_network`, `context_root`), so moving a target over is mostly a
rename. Fields shared with `container_image` (platforms, outputs, publishing, resolve) are the
same field classes, so `package`, `publish` and the base-image lockfile treat both alike.
"""

from __future__ import annotations

import posixpath
from typing import Optional

from pants.engine.addresses import Address
from pants.option.global_options import GlobMatchErrorBehavior
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    Dependencies,
    DictStringToStringField,
    InvalidFieldException,
    OptionalSingleSourceField,
    StringField,
    StringSequenceField,
    Target,
)
from pants.util.strutil import softwrap

from llbkit_pants.target_types import (
    ContainerImageOutputFormatField,
    ContainerImageOutputPathField,
    ContainerImagePlatformsField,
    ContainerImageRegistriesField,
    ContainerImageRepositoryField,
    ContainerImageResolveField,
    ContainerImageSkipPushField,
    ContainerImageTagsField,
)

DEFAULT_DOCKERFILE = "Dockerfile"


class DockerfileImageSourceField(OptionalSingleSourceField):
    alias = "source"
    default = DEFAULT_DOCKERFILE
    # A missing `Dockerfile` is reported by the parse rule, which knows about `instructions`.
    default_glob_match_error_behavior = GlobMatchErrorBehavior.ignore
    help = softwrap(
        f"""
        The Dockerfile, relative to the BUILD file's directory (default `{DEFAULT_DOCKERFILE}`),
        e.g. `source="Dockerfile.prod"`. Leave it unset when `instructions` are given.
        """
    )


class DockerfileImageInstructionsField(StringSequenceField):
    alias = "instructions"
    help = softwrap(
        """
        The Dockerfile's lines, instead of a file, e.g.
        `instructions=["FROM 127.0.0.1:5050/llbkit/busybox:latest", "COPY app.txt /app/"]`
        (as in Pants' `docker_image`). Cannot be combined with an explicit `source`.
        """
    )


class DockerfileImageBuildArgsField(StringSequenceField):
    alias = "extra_build_args"
    help = softwrap(
        """
        Build arguments (`ARG`s of the Dockerfile) for this image, as `NAME=VALUE`, or `NAME`
        alone to take the value from the environment Pants runs in, e.g.
        `extra_build_args=["VERSION=1.4.0", "GIT_SHA"]`. They are added to (and override)
        `[dockerfile].build_args`. A name the Dockerfile does not declare with `ARG` is an error
        (Docker only warns): a typo would otherwise silently build something else. An argument
        whose value is the address of a `container_image` target and that a `FROM` uses
        (`ARG BASE=//images:base`, `FROM $BASE`) builds that stage on the target's own build,
        composed directly, with no registry round trip (as Pants' `docker_image` allows).
        """
    )


class DockerfileImageTargetStageField(StringField):
    alias = "target_stage"
    help = softwrap(
        """
        The stage to build (`FROM ... AS NAME`), e.g. `target_stage="runtime"`; default: the
        last stage. A name no `FROM ... AS` declares is an error listing the stages.
        """
    )


class DockerfileImageSecretsField(DictStringToStringField):
    alias = "secrets"
    help = softwrap(
        """
        Secrets the Dockerfile's `RUN --mount=type=secret,id=ID` read, as `{ID: SOURCE}`, e.g.
        `secrets={"npmrc": "file:~/.npmrc", "token": "env:API_TOKEN"}`; a bare path is a file,
        relative to the build root (Pants' `docker_image` form). Deliberate difference: secret
        values never reach a build through its target (they would enter the cache key), so
        each ID must also be in `[buildkit].secrets` with the same source; the build then fails
        before solving if the secret cannot be served. Secrets never appear in the image, its
        cache key or the logs.
        """
    )


class DockerfileImageBuildNetworkField(StringField):
    alias = "build_network"
    valid_choices = ("default", "none", "host")
    help = softwrap(
        """
        The network `RUN` instructions get, as the frontend's `force-network-mode`: `"default"`
        (BuildKit's sandbox), `"none"` or `"host"` (needs `[buildkit].entitlements =
        ["network.host"]`). Pants' `docker_image` takes Docker network names; BuildKit has only
        these three.
        """
    )


class DockerfileImageContextRootField(StringField):
    alias = "context_root"
    help = softwrap(
        """
        The directory the Dockerfile's `COPY`/`ADD` sources are relative to: the build root by
        default (as Pants' `docker_image`), a path from the build root, or `"./"` (or
        `"./sub"`) for the BUILD file's directory. Either way the context holds only the files
        the Dockerfile copies (owned by `files`/`resources` targets, or packaged targets at
        their output paths) and `.dockerignore`, so editing any other file never rebuilds the
        image.
        """
    )

    def root(self, address: Address) -> str:
        """The context root, relative to the build root (`""` for the build root itself)."""
        value = self.value or ""
        if value.startswith("/"):
            raise InvalidFieldException(
                f"Invalid field `{self.alias}` in dockerfile_image target {address}: {value!r} is absolute; "
                "give a path from the build root, or one starting with './' for the BUILD file's directory.")
        if value == "." or value.startswith("./"):
            value = posixpath.join(address.spec_path, value)
        norm = posixpath.normpath(value) if value else ""
        if norm == ".." or norm.startswith("../"):
            raise InvalidFieldException(
                f"Invalid field `{self.alias}` in dockerfile_image target {address}: {value!r} leaves the repository.")
        return "" if norm in ("", ".") else norm


class DockerfileImageFrontendField(StringField):
    alias = "frontend_image"
    help = softwrap(
        """
        A custom BuildKit frontend image that builds `source` instead of BuildKit's own
        Dockerfile frontend, e.g. `frontend_image="registry.example.com/acme/yaml-frontend:1.2"`
        (a team's own YAML-to-LLB frontend) or `"docker.io/docker/dockerfile:1.7"`. It runs
        through BuildKit's gateway (`gateway.v0`), pinned by digest through the base-image
        lockfile like any `FROM`. A `# syntax=IMAGE` directive on the Dockerfile's first line
        does the same; this field wins over it.
        """
    )


class DockerfileImageDependenciesField(Dependencies):
    help = softwrap(
        """
        Extra dependencies. The `files`/`resources` targets owning `COPY`/`ADD` sources,
        packaged targets (`pex_binary`, `archive`, ...) whose output path a `COPY` names, and
        images a `FROM` names through a build argument are inferred and need not be listed.
        """
    )


class DockerfileImageTarget(Target):
    alias = "dockerfile_image"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        DockerfileImageSourceField,
        DockerfileImageInstructionsField,
        DockerfileImageBuildArgsField,
        DockerfileImageTargetStageField,
        DockerfileImageSecretsField,
        DockerfileImageBuildNetworkField,
        DockerfileImageContextRootField,
        DockerfileImageFrontendField,
        ContainerImagePlatformsField,
        ContainerImageRepositoryField,
        ContainerImageTagsField,
        ContainerImageRegistriesField,
        ContainerImageOutputFormatField,
        ContainerImageSkipPushField,
        ContainerImageOutputPathField,
        ContainerImageResolveField,
        DockerfileImageDependenciesField,
    )
    help = softwrap(
        """
        A container image built from a Dockerfile by BuildKit's own Dockerfile frontend
        (`dockerfile.v0`, inside every buildkitd), in llbkit's pipeline: the same workers and
        multi-platform scheduling, the same content cache, outputs and `publish` as
        `container_image`, with no Docker daemon.

            dockerfile_image(
                name="app",
                source="Dockerfile",                   # the default
                extra_build_args=["VERSION=1.4.0"],
                target_stage="runtime",
                platforms=["linux/amd64", "linux/arm64"],
                repository="acme/app", image_tags=["1.4.0"], registries=["registry.example.com"],
            )

        Hermetic: every registry `FROM` is pinned by digest through the base-image lockfile
        (`pants generate-lockfiles --resolve=container-images`, see `[base-images]`) and handed
        to the frontend as a named context; a `FROM` naming a `container_image` target (through
        a build argument holding its address) is composed from that target's LLB, and one
        naming another `dockerfile_image` starts from that target's packaged OCI layout (served
        to BuildKit from the client, its layers kept; its `platforms` must include these). The build
        context holds only what `COPY`/`ADD` name, so the cache key covers exactly what the
        build reads: `package` twice gives the same bytes, from Pants' cache.

        Deliberate differences from Pants' `docker_image`: `repository` and `image_tags` take
        no `{placeholders}`; `secrets` must also be configured in `[buildkit].secrets`;
        `build_network` is `default`, `none` or `host`; a build argument the Dockerfile does
        not declare is an error; a `FROM` of a tag the lockfile lacks follows
        `[base-images].unlocked_behavior` (`error` in CI); a `COPY` source may not use a
        variable (the files must be known before the build). A `container_image` may use a
        `dockerfile_image` as its `base` the same way (its packaged OCI layout, layers kept).
        """
    )


def dockerfile_path(address: Address, source: Optional[str]) -> str:
    """The Dockerfile's path from the build root."""
    return posixpath.normpath(posixpath.join(address.spec_path, source or DEFAULT_DOCKERFILE))
