"""`pants buildkit-workers`: the buildkitd workers `[buildkit]` builds on, and what each answers.

One row per configured worker (checked in parallel, a few seconds at most each): its address,
native and emulated platforms (as the daemon reports them, or as configured after `=`), its
BuildKit version, and whether it is reachable (or the error it failed with). With no workers
configured it shows the local buildkitd that `package` starts on demand, without starting it.
The goal fails when a worker is unreachable, so scripts can check a fleet before a release.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any, Dict, List, Sequence

from pants.engine.console import Console
from pants.engine.goal import Goal, GoalSubsystem
from pants.engine.rules import collect_rules, goal_rule
from pants.option.option_types import EnumOption
from pants.util.strutil import softwrap

from llbkit.buildkit.pool import WorkerConfig, WorkerPool, WorkerStatus
from llbkit.errors import LlbkitError
from llbkit_pants.subsystems.buildkit import BuildKitSubsystem


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


def worker_rows(statuses: Sequence[WorkerStatus]) -> List[Dict[str, Any]]:
    return [{
        "name": s.name, "address": s.address, "reachable": bool(s.reachable), "error": s.error or None,
        "native": s.native_platform, "emulated": list(s.emulated_platforms),
        "version": s.version.version if s.version else None,
    } for s in statuses]


def render_table(rows: Sequence[Dict[str, Any]]) -> str:
    table = [("ADDRESS", "NATIVE", "EMULATED", "VERSION", "STATUS")]
    for r in rows:
        address = r["address"] if r["name"] == r["address"] else f"{r['address']} ({r['name']})"
        status = "reachable" if r["reachable"] else f"unreachable: {r['error']}"
        table.append((address, r["native"] or "-", ",".join(r["emulated"]) or "-", r["version"] or "-", status))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    return "".join("  ".join(c.ljust(widths[i]) for i, c in enumerate(row[:4])) + "  " + row[4] + "\n"
                   for row in table)


def _local_daemon_rows() -> List[Dict[str, Any]]:
    from llbkit.buildkit.local_daemon import LocalDaemon

    daemon = LocalDaemon()
    if daemon.pid() is None:
        return [{"name": "local buildkitd", "address": daemon.address, "reachable": False,
                 "error": "not running (`./pants package` starts it when an image must be solved)",
                 "native": None, "emulated": [], "version": None}]
    with WorkerPool([WorkerConfig(daemon.address, name="local buildkitd")]) as pool:
        return worker_rows(pool.check_all())


@goal_rule
async def show_buildkit_workers(
    console: Console, subsystem: BuildKitWorkersSubsystem, buildkit: BuildKitSubsystem
) -> BuildKitWorkers:
    try:
        configs = buildkit.worker_configs()
    except (ValueError, LlbkitError) as e:
        console.print_stderr(f"invalid [buildkit] option: {e}")
        return BuildKitWorkers(exit_code=2)
    if configs:
        with WorkerPool(configs) as pool:
            rows = worker_rows(pool.check_all())
        all_reachable = all(r["reachable"] for r in rows)
    else:
        rows = _local_daemon_rows()
        all_reachable = True  # an idle local daemon is not a failure: it starts on demand
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
