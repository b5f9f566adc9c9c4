"""The build processes the Pants backend runs: ``python -m llbkit.builder.process COMMAND``.

- ``solve JOB_DIR --image OUT --record OUT [--context DIR] [--local NAME=DIR]...
  [--oci-layout NAME=TAR]...``: build a solve job (see :mod:`llbkit.builder.job`) on the
  machine's workers; ``--local`` gives each local dir it reads (``--context DIR`` is
  ``--local context=DIR``), ``--oci-layout`` each OCI layout tar its ``oci-layout://`` bases
  read.
- ``resolve-bases --platform P... REF...``: print the registry bases resolved (digest, and the
  config per platform) as JSON on stdout.
- ``lock-bases REF=PLATFORM[,PLATFORM...]...``: print what each tag names in its registry now
  (digest, and the manifest and config digests per platform) as a JSON list of lock entries
  (see :mod:`llbkit.builder.base_lock`).
- ``workers``: print the machine's workers, their platforms and whether they answer.

Every command reads the machine settings (:mod:`llbkit.builder.settings`) from
``--settings DIR``, the directory the backend writes them into, and takes this process's
environment from them: what the process sees of the world comes out of band, never through
its argv, environment or inputs, which are the content that Pants caches the result by.

stderr carries one ``[llbkit] `` line per scheduling event (which worker builds which platform,
retries) and, with ``progress = "plain"``, BuildKit's step log. A failure ends with one
``[llbkit-error] {JSON}`` line: ``{"kind", "message", ...fields}``, so the backend reports it
with its own hints without parsing text (a local dir or layout the job reads but was not given
is ``missing_input``; a failed build whose error points into its sources, e.g. a Dockerfile
syntax error, carries ``"sources": [[file, first line, last line]]``). Exit codes: 0 done, 1
failed, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

EVENT_PREFIX = "[llbkit] "
ERROR_PREFIX = "[llbkit-error] "
LOAD_DIR = "load"

__all__ = ["main", "EVENT_PREFIX", "ERROR_PREFIX"]


def _event(message: str) -> None:
    sys.stderr.write(f"{EVENT_PREFIX}{message}\n")
    sys.stderr.flush()


def _error(kind: str, message: str, **fields: Any) -> int:
    sys.stderr.write(ERROR_PREFIX + json.dumps({"kind": kind, "message": message, **fields}, sort_keys=True) + "\n")
    return 130 if kind == "interrupted" else 1


TEMP_DIR = ".tmp"  # in the sandbox: Pants removes it with the sandbox, on every exit path
_MAX_TEMP_PATH = 60  # the session's unix socket lives there (sun_path is 108 bytes)


def _settings(directory: str) -> Any:
    from llbkit.builder.settings import OPTION_NAMES, load_settings
    from llbkit.buildkit.errors import use_option_names

    use_option_names(OPTION_NAMES)  # errors name `[buildkit]` options, not buildctl's flags
    settings = load_settings(directory)
    # This process is the edge: its environment is the invoking shell's, as the settings carry it
    # (Docker's config and credential helpers, the local daemon's dirs), not what Pants gave it.
    os.environ.clear()
    os.environ.update(settings.environment)
    # Temporary files (the session's socket dir...) go into the sandbox, which Pants deletes
    # whatever way this process ends, even SIGKILL: nothing is left in the machine's /tmp.
    tmp = os.path.abspath(TEMP_DIR)
    if len(tmp) <= _MAX_TEMP_PATH:
        os.makedirs(tmp, exist_ok=True)
        os.environ["TMPDIR"] = tmp
        import tempfile

        tempfile.tempdir = None  # re-read TMPDIR
    os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "false"
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    return settings


def _pool(settings: Any, settings_dir: str) -> Any:
    from llbkit.builder.lazy_pool import LazyPool
    from llbkit.buildkit.shared_load import SharedLoad

    return LazyPool(settings.worker_configs(), auto_start=settings.auto_start, env=settings.environment,
                    shared_load=SharedLoad(Path(settings_dir) / LOAD_DIR),
                    health_timeout=settings.connect_timeout, max_in_flight=settings.concurrency,
                    entitlements=settings.entitlements)


def job_needs(job: Any) -> Tuple[Tuple[str, ...], Dict[str, bool]]:
    """What the job's runs ask of the daemon and the session, read from its definitions: the
    entitlements (network.host, security.insecure) and the ssh agent ids (id -> required)."""
    from llbkit.llb import Definition

    entitlements = set()
    ssh: Dict[str, bool] = {}
    definitions = []
    for p in job.platforms:
        if p.frontend is None:
            definitions.append(p.definition)
            continue
        # A frontend's own runs are not in any definition here: what its caller read from its
        # source (a Dockerfile's RUN --network=host) and what its options ask for are.
        definitions += [data for _, data in p.frontend.inputs]
        entitlements.update(p.frontend.entitlements)
        if p.frontend.opts.get("force-network-mode") == "host":
            entitlements.add("network.host")
    for data in definitions:
        for op in Definition.from_bytes(data).ops:
            if op.kind != "exec":
                continue
            if op.body.get("network") == 1:  # pb.NetMode.HOST
                entitlements.add("network.host")
            if op.body.get("security") == 1:  # pb.SecurityMode.INSECURE
                entitlements.add("security.insecure")
            for m in op.body.get("mounts") or ():
                if m.get("mountType") == 2:  # pb.MountType.SSH
                    opt = m.get("SSHOpt") or {}
                    sid = opt.get("ID") or "default"
                    ssh[sid] = ssh.get(sid, False) or not opt.get("optional", False)
    return tuple(sorted(entitlements)), ssh


def _check_ssh(name: str, needed: Dict[str, bool], configured: Dict[str, str]) -> Optional[int]:
    import socket

    for sid, required in sorted(needed.items()):
        path = configured.get(sid)
        if path == "" and required:
            return _error("missing_ssh", f"{name} mounts ssh agent {sid!r}, which [buildkit].ssh takes from "
                          "$SSH_AUTH_SOCK, but SSH_AUTH_SOCK is not set in the environment Pants runs in: start "
                          f'an agent (`eval $(ssh-agent)`, `ssh-add`) or give its socket as "{sid}=/path/to/agent.sock"',
                          ssh=sid)
        if not path:
            if required:
                return _error("missing_ssh", f"{name} mounts ssh agent {sid!r}, which is not configured: add it "
                              f'to [buildkit].ssh, e.g. "{sid}" (the agent of $SSH_AUTH_SOCK) or '
                              f'"{sid}=/path/to/agent.sock"', ssh=sid)
            continue
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except OSError as e:
            if required:
                return _error("missing_ssh", f"{name} mounts ssh agent {sid!r}, but its socket {path} does not "
                              f"answer ({e.strerror or e}): start the agent (`eval $(ssh-agent)`, `ssh-add`) "
                              "or fix its path in [buildkit].ssh", ssh=sid, socket=path)
        finally:
            s.close()
    return None


def cmd_solve(args: argparse.Namespace) -> int:
    from llbkit.builder.job import SolveJob

    settings = _settings(args.settings)
    job = SolveJob.load(args.job)
    configured = settings.secret_sources()
    for sid, required in job.secrets:
        if required and sid not in configured:
            return _error("missing_secret", f"{job.name} mounts secret {sid!r}, which is not configured",
                          secret=sid)
        src = configured.get(sid)
        if required and src is not None and src.file is not None and not os.path.isfile(src.file):
            return _error("missing_secret", f"{job.name} mounts secret {sid!r} from file {src.file}, "
                          "which does not exist", secret=sid, file=src.file)
    entitlements, ssh_needed = job_needs(job)
    missing = [e for e in entitlements if e not in settings.entitlements]
    if missing:
        return _error("missing_entitlement", f"{job.name} has a run that needs the {missing[0]} entitlement, "
                      f"which is not enabled: add it to [buildkit].entitlements", entitlement=missing[0])
    with contextlib.ExitStack() as agents:
        ssh = _ssh_sockets(ssh_needed, settings.ssh, agents)
        failed = _check_ssh(job.name, ssh_needed, ssh)
        if failed is not None:
            return failed
        return _solve(args, settings, job, configured, entitlements, ssh)


def _ssh_sockets(needed: Dict[str, bool], configured: Any, agents: "contextlib.ExitStack") -> Dict[str, str]:
    """The agent socket of each ssh id the job needs; a configured key file gets an agent of its
    own for this build (stopped with ``agents``)."""
    from llbkit.buildkit.session.ssh import KeyAgent, is_agent_socket

    out: Dict[str, str] = {}
    for sid in needed:
        path = configured.get(sid)
        if path is None:
            continue
        if path and os.path.isfile(path) and not is_agent_socket(path):
            path = agents.enter_context(KeyAgent([path])).socket
        out[sid] = path
    return out


def _solve(args: argparse.Namespace, settings: Any, job: Any, configured: Any, entitlements: Tuple[str, ...],
           ssh: Dict[str, str]) -> int:
    from llbkit.builder.build import BuildOptions, build_job
    from llbkit.buildkit.options import parse_cache_export, parse_cache_import

    printer = None
    if settings.progress == "plain":
        from llbkit.buildkit.progress import make_printer

        printer = make_printer("plain", sys.stderr)
    opts = BuildOptions(
        cache_from=tuple(parse_cache_import(c) for c in settings.cache_from),
        cache_to=tuple(parse_cache_export(c) for c in settings.cache_to),
        allow_emulation=settings.allow_emulation, max_attempts=settings.max_attempts,
        secrets={sid: src for sid, src in configured.items() if sid in dict(job.secrets)},
        # Only what this job needs: a daemon refuses a solve asking for an entitlement it does
        # not allow, even one no run uses.
        entitlements=entitlements,
        ssh=ssh,
        progress=(lambda platform, worker: printer) if printer is not None else None,
        log=_event,
    )
    with _pool(settings, args.settings) as workers:
        record = build_job(job, workers, args.image, args.record, context_dir=args.context,
                           local_dirs=dict(args.local or ()), oci_layouts=dict(args.oci_layout or ()), opts=opts)
    for b in record.get("builds", []):
        if b.get("emulated") and len(b.get("attempts") or []) > 1:
            _event(f"{b['platform']}: emulated on {b['worker']} after its native worker failed")
    return 0


def _name_value(text: str) -> Tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=PATH")
    return name, value


def cmd_resolve_bases(args: argparse.Namespace) -> int:
    from llbkit.builder.bases import resolve_bases, resolved_to_json

    settings = _settings(args.settings)
    with _pool(settings, args.settings) as workers:
        bases = resolve_bases(args.refs, args.platform, workers, env=settings.environment, log=_event)
    sys.stdout.write(resolved_to_json(bases))
    return 0


def cmd_lock_bases(args: argparse.Namespace) -> int:
    from llbkit.builder.bases import lock_bases

    settings = _settings(args.settings)
    requests = []
    for item in args.bases:
        ref, sep, platforms = item.rpartition("=")
        if not sep or not ref or not platforms:
            return _error("usage", f"lock-bases: {item!r} is not REF=PLATFORM[,PLATFORM...]")
        requests.append((ref, platforms.split(",")))
    locked = lock_bases(requests, env=settings.environment)
    sys.stdout.write(json.dumps([b.to_doc() for b in locked], sort_keys=True))
    return 0


def worker_rows(statuses: Sequence[Any]) -> List[Dict[str, Any]]:
    """One JSON-able row per :class:`~llbkit.buildkit.pool.WorkerStatus`."""
    return [{
        "name": s.name, "address": s.address, "reachable": bool(s.reachable), "error": s.error or None,
        "native": s.native_platform, "emulated": list(s.emulated_platforms),
        "version": s.version.version if s.version else None,
    } for s in statuses]


def cmd_workers(args: argparse.Namespace) -> int:
    """The workers as JSON rows; with none configured, the local buildkitd (never started here)."""
    from llbkit.buildkit.pool import WorkerConfig, WorkerPool

    settings = _settings(args.settings)
    configs = settings.worker_configs()
    if not configs:
        from llbkit.buildkit.local_daemon import LocalDaemon

        daemon = LocalDaemon(env=settings.environment)
        if daemon.pid() is None:
            sys.stdout.write(json.dumps([{
                "name": "local buildkitd", "address": daemon.address, "reachable": False,
                "error": "not running (`pants package` starts it when an image must be solved)",
                "native": None, "emulated": [], "version": None, "local": True}]))
            return 0
        configs = (WorkerConfig(daemon.address, name="local buildkitd"),)
    with WorkerPool(configs, health_timeout=settings.connect_timeout) as pool:
        rows = worker_rows(pool.check_all())
    sys.stdout.write(json.dumps(rows))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m llbkit.builder.process")
    sub = parser.add_subparsers(dest="command", required=True)
    solve = sub.add_parser("solve")
    solve.add_argument("job")
    solve.add_argument("--settings", required=True)
    solve.add_argument("--image", required=True)
    solve.add_argument("--record", required=True)
    solve.add_argument("--context")
    solve.add_argument("--local", action="append", type=_name_value, metavar="NAME=DIR")
    solve.add_argument("--oci-layout", action="append", type=_name_value, metavar="NAME=TAR")
    solve.set_defaults(handler=cmd_solve)
    res = sub.add_parser("resolve-bases")
    res.add_argument("refs", nargs="+")
    res.add_argument("--settings", required=True)
    res.add_argument("--platform", action="append", required=True)
    res.set_defaults(handler=cmd_resolve_bases)
    lock = sub.add_parser("lock-bases")
    lock.add_argument("bases", nargs="+")
    lock.add_argument("--settings", required=True)
    lock.set_defaults(handler=cmd_lock_bases)
    workers = sub.add_parser("workers")
    workers.add_argument("--settings", required=True)
    workers.set_defaults(handler=cmd_workers)
    return parser


def _source_fields(e: BaseException) -> Dict[str, Any]:
    """Where a failed build's error points in its sources (a Dockerfile's file and lines, as
    BuildKit's frontend reports them): ``{"sources": [[file, first line, last line], ...]}``."""
    cause = getattr(e, "cause", e)
    sources = getattr(cause, "sources", ())
    out = [[s.filename, s.start_line, s.end_line] for s in sources if hasattr(s, "start_line")]
    return {"sources": out} if out else {}


def main(argv: Optional[Sequence[str]] = None) -> int:
    from llbkit.builder.build import MissingInputError
    from llbkit.buildkit.errors import NoWorkerError
    from llbkit.errors import LlbkitError

    args = _parser().parse_args(list(argv) if argv is not None else None)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return _error("interrupted", "interrupted: the build was cancelled on the daemon")
    except NoWorkerError as e:
        return _error("no_worker", str(e), platform=e.platform,
                      workers=[[w.worker, w.reason, w.kind.name] for w in e.workers])
    except MissingInputError as e:
        return _error("missing_input", str(e), input=e.name, input_kind=e.kind)
    except LlbkitError as e:
        return _error(type(e).__name__, str(e), **_source_fields(e))
    except (OSError, ValueError) as e:
        return _error(type(e).__name__, " ".join(str(e).split()))
    except Exception as e:  # a bug: still one line, with the type
        if os.environ.get("LLBKIT_DEBUG"):
            import traceback

            traceback.print_exc()
        return _error("internal", f"internal error: {type(e).__name__}: {e} (set LLBKIT_DEBUG=1 for a "
                      "traceback and report it)")


if __name__ == "__main__":
    sys.exit(main())
