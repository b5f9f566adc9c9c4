"""The `[base-images]` options: lockfiles that pin the registry bases of `container_image`s.

A resolve is a named lockfile (`resolves`); each `container_image` belongs to one (its
`resolve` field, else `default_resolve`). `pants generate-lockfiles --resolve=NAME` writes what
the tags of that resolve's registry bases name now; `package`, `publish` and `llb` build from
those digests (see `util_rules.bases`).
"""

from __future__ import annotations

from enum import Enum

from pants.option.option_types import DictOption, EnumOption, StrOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import softwrap

DEFAULT_RESOLVE = "container-images"


class UnlockedBehavior(Enum):
    error = "error"
    warn = "warn"
    resolve = "resolve"


class BaseImagesSubsystem(Subsystem):
    options_scope = "base-images"
    help = softwrap(
        """
        Lockfiles for the registry base images of `container_image` targets. A base named by tag
        (`base="docker.io/library/python:3.12-slim"`) is built from the digest its lockfile
        holds, so the same commit builds the same image however the tag has moved since, and a
        build served from Pants' cache needs no registry. Generate or update a lockfile with
        `pants generate-lockfiles --resolve=container-images` (it asks each registry, with the
        credentials of Docker's config.json). A base named by digest (`name@sha256:...`) needs
        no lock entry.
        """
    )

    resolves = DictOption[str](
        default={DEFAULT_RESOLVE: f"3rdparty/{DEFAULT_RESOLVE}.lock"},
        help=softwrap(
            """
            Resolve names to lockfile paths (relative to the build root), e.g.
            `resolves = {"container-images": "3rdparty/container-images.lock",
            "legacy": "3rdparty/legacy-images.lock"}`. A `container_image` chooses one with its
            `resolve` field. `pants generate-lockfiles` lists and writes them.
            """
        ),
        advanced=True,
    )
    default_resolve = StrOption(
        default=DEFAULT_RESOLVE,
        help="The resolve of `container_image` targets that do not set `resolve` (a key of `resolves`).",
        advanced=True,
    )
    unlocked_behavior = EnumOption(
        default=UnlockedBehavior.warn,
        help=softwrap(
            """
            What a base named by tag that its resolve's lockfile does not hold (no lockfile, a
            reference or platform the lockfile lacks: it is older than the BUILD files) does:

            * `warn` (the default): resolve the tag against the registry on this run, build, and
              warn, naming the target, the reference and the command that locks it;
            * `error`: fail with that message, before anything is built (the hermetic choice,
              e.g. for CI);
            * `resolve`: resolve the tag on every run, silently (builds follow the tag).
            """
        ),
    )

    def lockfile_for(self, resolve: str) -> str:
        return self.resolves[resolve]
