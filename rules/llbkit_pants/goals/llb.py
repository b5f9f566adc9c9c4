"""`pants llb`: print the BuildKit LLB a `container_image` is solved as, one definition per platform.

The definitions are lowered by the rule `package` uses (see `util_rules.lowering`), so what is
printed is what would be solved, op digests included.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import TYPE_CHECKING, List, Sequence

from pants.engine.console import Console
from pants.engine.goal import Goal, GoalSubsystem, Outputting
from pants.engine.rules import Get, MultiGet, collect_rules, goal_rule
from pants.engine.target import Targets
from pants.option.option_types import EnumOption
from pants.util.strutil import softwrap

from llbkit_pants.dockerfile.job import DockerfileJob, DockerfileJobRequest
from llbkit_pants.dockerfile.target_types import DockerfileImageSourceField
from llbkit_pants.target_types import ContainerImageBaseField
from llbkit_pants.util_rules.lowering import LoweredImage, LoweredImageRequest
from llbkit_pants.util_rules.platform_packages import describe

if TYPE_CHECKING:  # pragma: no cover
    from llbkit import llb  # imported by render(): loading the plugin must not load the compiler


class LlbFormat(Enum):
    json = "json"
    dot = "dot"


class LlbSubsystem(Outputting, GoalSubsystem):
    name = "llb"
    help = softwrap(
        """
        Print the BuildKit LLB of `container_image` targets: one definition per platform, lowered
        exactly as `package` lowers it (same registry base digests, build context digest and
        `[buildkit].source_date_epoch`), so it is what would be solved.

        `--format=json` (the default) prints what `buildctl debug dump-llb` prints: one JSON
        object per op, the last one the terminal op. `--format=dot` prints a Graphviz graph
        (`pants llb --format=dot path:img | dot -Tsvg > img.svg`). With several targets or
        platforms, each definition is preceded by a `# ADDRESS PLATFORM` line (Graphviz
        ignores such lines); so is each package copied into a platform's variant that was built
        for that platform (a `pex_binary`: what its interpreter was). A registry base given by
        tag is resolved to its digest, as `package` does, so that needs the registry (or a
        worker) to answer.

        A `dockerfile_image` is solved by BuildKit's Dockerfile frontend inside buildkitd, which
        makes its LLB there: `llb` prints what is sent instead, and says so in a `#` line: the
        frontend, its options (build arguments, the registry images pinned by digest as named
        contexts) and the LLB of its inputs (the `container_image` targets a FROM composes).
        """
    )

    format = EnumOption(
        default=LlbFormat.json,
        help="`json`: `buildctl debug dump-llb` JSON, one op per line; `dot`: a Graphviz digraph.",
    )


class Llb(Goal):
    subsystem_cls = LlbSubsystem
    environment_behavior = Goal.EnvironmentBehavior.LOCAL_ONLY


def render(definition: llb.Definition, fmt: LlbFormat) -> str:
    from llbkit import llb

    return llb.to_dot(definition) if fmt == LlbFormat.dot else llb.dump(definition)


def copy_notes(copies: Sequence[str], platform: str) -> List[str]:
    """One line per package copied for `platform` that was built for it (a PEX per platform):
    what it was built for (see `util_rules.pex_platforms`)."""
    out = []
    for doc in map(json.loads, copies):
        for p in doc["platforms"]:
            if p["platform"] != platform:
                continue
            what = describe(json.dumps(p["built_for"]))
            shared = ", shared by every platform" if doc["shared"] else ""
            out.append(f"{doc['image']} steps[{doc['step']}] copies {doc['target']} built for {platform}: "
                       f"{what}{shared}")
    return out


def render_frontend_call(address: str, platform: str, call, fmt: LlbFormat) -> str:
    """A frontend solve (a `dockerfile_image`): its LLB is made inside buildkitd by the frontend,
    so what can be shown is the call, its options and its inputs' LLB; the header says so."""
    from llbkit import llb

    out = [f"# {address} {platform}: solved by the frontend {call.name} inside buildkitd; its LLB is "
           "made there. The call, its options and its inputs:\n"]
    if fmt == LlbFormat.json:
        out.append(json.dumps({"frontend": call.name, "attrs": dict(call.attrs),
                               "inputs": [name for name, _ in call.inputs]}, sort_keys=True) + "\n")
    else:
        out.extend(f"# {k}={v}\n" for k, v in call.attrs)
    for name, data in call.inputs:
        out.append(f"# input {name}\n")
        out.append(render(llb.Definition.from_bytes(data), fmt))
    return "".join(out)


@goal_rule
async def print_llb(console: Console, subsystem: LlbSubsystem, targets: Targets) -> Llb:
    images = [t for t in targets if t.has_field(ContainerImageBaseField)]
    dockerfiles = [t for t in targets if t.has_field(DockerfileImageSourceField)]
    if not images and not dockerfiles:
        console.print_stderr(
            "No container_image or dockerfile_image targets given: name some, e.g. `pants llb path/to:img` "
            "or `pants llb ::`."
        )
        return Llb(exit_code=0 if not targets else 1)
    results = await MultiGet(Get(LoweredImage, LoweredImageRequest(t.address)) for t in images)
    jobs = await MultiGet(Get(DockerfileJob, DockerfileJobRequest(t.address)) for t in dockerfiles)
    chunks: List[str] = []
    lowered_all = [(t.address, r.lowered) for t, r in zip(images, results)]
    several = len(lowered_all) > 1 or any(len(lowered) > 1 for _, lowered in lowered_all) or bool(jobs)
    for (address, lowered), result in zip(lowered_all, results):
        for lw in lowered:
            if several:
                chunks.append(f"# {address} {lw.platform}\n")
            chunks.extend(f"# {line}\n" for line in copy_notes(result.image.copies, lw.platform))
            chunks.append(render(lw.definition, subsystem.format))
    for job in jobs:
        for platform, call in job.calls:
            chunks.append(render_frontend_call(str(job.address), platform, call, subsystem.format))
    with subsystem.output(console) as write_stdout:
        write_stdout("".join(chunks))
    return Llb(exit_code=0)


def rules():
    return collect_rules()
