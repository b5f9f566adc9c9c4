"""`pants tailor` proposes a `dockerfile_image` next to each Dockerfile no target owns."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pants.core.goals.tailor import AllOwnedSources, PutativeTarget, PutativeTargets, PutativeTargetsRequest
from pants.engine.fs import PathGlobs, Paths
from pants.engine.rules import Get, collect_rules, rule
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from llbkit_pants.dockerfile.target_types import DEFAULT_DOCKERFILE, DockerfileImageTarget


@dataclass(frozen=True)
class PutativeDockerfileImageTargetsRequest(PutativeTargetsRequest):
    pass


@rule(level=LogLevel.DEBUG, desc="Find Dockerfiles without a dockerfile_image target")
async def putative_dockerfile_images(request: PutativeDockerfileImageTargetsRequest,
                                     owned: AllOwnedSources) -> PutativeTargets:
    # Pants' docker backend's pattern: `Dockerfile`, `Dockerfile.prod`, `app.Dockerfile`, ...
    found = await Get(Paths, PathGlobs, request.path_globs("*Dockerfile*"))
    out = []
    for path in sorted(set(found.files) - set(owned)):
        if path.endswith(".dockerignore"):
            continue
        directory, name = os.path.split(path)
        stem = "image" if name == DEFAULT_DOCKERFILE else name.replace(".", "-").replace("Dockerfile", "image").strip("-")
        out.append(PutativeTarget.for_target_type(
            DockerfileImageTarget, path=directory, name=stem or "image", triggering_sources=[name],
            kwargs={} if name == DEFAULT_DOCKERFILE else {"source": name}))
    return PutativeTargets(out)


def rules():
    return [*collect_rules(), UnionRule(PutativeTargetsRequest, PutativeDockerfileImageTargetsRequest)]
