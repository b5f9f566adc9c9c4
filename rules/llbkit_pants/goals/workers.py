"""`pants buildkit-workers`: the buildkitd workers `[buildkit]` builds on, and what each answers.

One row per configured worker (checked in parallel, a few seconds at most each): its address,
native and emulated platforms (as the daemon reports them, or as configured after `=`), its
BuildKit version, and whether it is reachable (or the error it failed with). With no workers
configured it shows the local buildkitd that `package` starts on demand, without starting it.
The goal fails when a worker is unreachable, so scripts can check a fleet before a release.
The checks run in an uncached build process (`llbkit.builder.process workers`), with the
invoking environment's settings (`BUILDKIT_HOST`, `$LLBKIT_CACHE`), so they are always fresh.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any, Dict, Sequence

from pants.engine.console import Console
from pants.engine.fs import Digest
from pants.engine.goal import Goal, GoalSubsystem
from pants.engine.process import FallibleProcessResult, ProcessCacheScope, Process
from pants.engine.rules import Get, collect_rules, goal_rule
from pants.option.option_types import EnumOption
from pants.util.strutil import softwrap

from llbkit_pants.util_rules.machine import BuildKitOptionError, MachineChannel, MachineChannelRequest
from llbkit_pants.util_rules.process_errors import process_failure
from llbkit_pants.util_rules.solver import SolverCode


class WorkersOutputFormat(Enum):
    table = "table"
    json = "json"


class BuildKitWorkersSubsystem(GoalSubsystem):
    name = "buildkit-workers"
    help = softwrap(
        """
        Show the buildkitd workers of `[buildkit].workers`: address, native and emulated platforms,
        BuildKit version, and whether each is reachable (or why not). Fails when one is not.
        """
    )

    output_format = EnumOption(
        default=WorkersOutputFormat.table,
        help="`table` (for people) or `json` (one object per worker, for scripts).",
    )


class BuildKitWorkers(Goal):
    subsystem_cls = BuildKitWorkersSubsystem
    environment_behavior = Goal.EnvironmentBehavior.LOCAL_ONLY


def render_table(rows: Sequence[Dict[str, Any]]) -> str:
    table = [("ADDRESS", "NATIVE", "EMULATED", "VERSION", "STATUS")]
    for r in rows:
        address = r["address"] if r["name"] == r["address"] else f"{r['address']} ({r['name']})"
        status = "reachable" if r["reachable"] else f"unreachable: {r['error']}"
        table.append((address, r["native"] or "-", ",".join(r["emulated"]) or "-", r["version"] or "-", status))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    return "".join("  ".join(c.ljust(widths[i]) for i, c in enumerate(row[:4])) + "  " + row[4] + "\n"
                   for row in table)


@goal_rule
async def show_buildkit_workers(
    console: Console, subsystem: BuildKitWorkersSubsystem) -> BuildKitWorkers:
    try:
        channel = await Get(MachineChannel, MachineChannelRequest())
    except BuildKitOptionError as e:
        console.print_stderr(str(e))
        return BuildKitWorkers(exit_code=2)
    code = await Get(SolverCode)
    result = await Get(FallibleProcessResult, Process, channel.process(
        code, ("workers",), input_digest=code.digest, description="Check the BuildKit workers",
        cache_scope=ProcessCacheScope.PER_SESSION))
    if result.exit_code != 0:
        console.print_stderr(process_failure(result).message)
        return BuildKitWorkers(exit_code=1)
    rows = json.loads(result.stdout)
    # An idle local daemon is not a failure: it starts on demand.
    all_reachable = all(r["reachable"] or r.get("local") for r in rows)
    if subsystem.output_format == WorkersOutputFormat.json:
        console.print_stdout(json.dumps(rows, indent=2))
    else:
        console.print_stdout(render_table(rows), end="")
    if not all_reachable:
        console.print_stderr("Some workers are unreachable: check their addresses in [buildkit].workers, "
                             "the TLS options, and that buildkitd runs there.")
    return BuildKitWorkers(exit_code=0 if all_reachable else 1)


def rules():
    return collect_rules()
