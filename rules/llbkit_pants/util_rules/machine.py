"""The side channel that hands a build process this machine's settings, outside its cache key.

A Pants process is cached by its argv, environment, input digest, output paths and working
directory. A build's result depends on its content only, so those must hold content only; the
worker addresses, TLS files, Docker's config, the local daemon's dirs, secret values and the
interpreter's path must reach the process some other way, or changing the fleet would
invalidate every result and no two machines would share one.

That way is a Pants named cache: named caches do not enter the key (without remote execution).
Once per run, a small uncached process writes `llbkit.builder.settings.MachineSettings` (from
the `[buildkit]` options and the invoking environment, read through Pants' environment API) as
`settings.json` (mode 0600), and `python`, a wrapper running Pants' own interpreter, into the
named cache `llbkit_machine_<hash>`; build processes see it as `.llbkit-machine/` and run
`./.llbkit-machine/python`. The hash covers the build root and the non-secret settings, so
concurrent runs of different repos or configurations never read each other's settings, while a
changed secret value is simply rewritten on the next run. The builds of one channel also count
their load per worker there (`load/`), so images spread over the workers.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shlex
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, FrozenSet, Mapping, Optional, Tuple

from pants.base.build_root import BuildRoot
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import Digest
from pants.engine.process import Process, ProcessCacheScope, ProcessResult
from pants.engine.rules import Get, collect_rules, rule
from pants.util.logging import LogLevel

from llbkit_pants.subsystems.buildkit import BuildKitOptionError, BuildKitSubsystem, check_options
from llbkit_pants.util_rules.solver import CODE_DIR, SolverCode

# The library is imported where it is used: loading the plugin must not load it (see register.py).
if TYPE_CHECKING:  # pragma: no cover
    from llbkit.builder.settings import MachineSettings

CHANNEL_DIR = ".llbkit-machine"
PYTHON = f"./{CHANNEL_DIR}/python"
# A per-machine copy of the build code, whose bytecode is kept between processes (see
# `llbkit.code_cache`); a named cache, so outside the key, shared by every repo on the machine.
CODE_CACHE = "llbkit_code"
CODE_CACHE_DIR = ".llbkit-code-cache"


def _boot(code_id: str) -> str:
    # The id names the per-machine copy: content of the key already (the sources are inputs).
    digest = f", digest={code_id!r}" if code_id else ""
    return f"from llbkit.code_cache import boot; boot('llbkit.builder.process', {CODE_DIR!r}, {CODE_CACHE_DIR!r}{digest})"


@dataclass(frozen=True)
class MachineChannelRequest:
    pass


@dataclass(frozen=True)
class MachineChannel:
    """The named cache holding this run's settings, and what they let a build use."""

    cache_name: str
    secrets_configured: Tuple[Tuple[str, str], ...]  # (id, "env:VAR" / "file:PATH"), for errors
    secrets_available: FrozenSet[str]  # ids whose value can be served (env var set)

    def process(self, code: SolverCode, command: Tuple[str, ...], *, input_digest: Digest,
                description: str, output_files: Tuple[str, ...] = (),
                cache_scope: ProcessCacheScope = ProcessCacheScope.SUCCESSFUL,
                level: LogLevel = LogLevel.DEBUG, extra_env: Optional[Mapping[str, str]] = None) -> Process:
        """A build process: `python -m llbkit.builder.process COMMAND... --settings .llbkit-machine`
        (run through `llbkit.code_cache`, so its bytecode is compiled once per machine).
        Its argv, env and inputs are content only; `input_digest` must include `code.digest`."""
        return Process(
            argv=(PYTHON, "-s", "-B", "-c", _boot(code.code_id), *command, "--settings", CHANNEL_DIR),
            env={"PYTHONPATH": CODE_DIR, "PYTHONNOUSERSITE": "1", "LLBKIT_RUNTIME": code.runtime,
                 **(extra_env or {})},
            input_digest=input_digest,
            output_files=output_files,
            append_only_caches={self.cache_name: CHANNEL_DIR, CODE_CACHE: CODE_CACHE_DIR},
            description=description,
            level=level,
            cache_scope=cache_scope,
        )


def _expand(path: str, env: Mapping[str, Optional[str]], build_root: str) -> str:
    if path == "~" or path.startswith("~/"):
        path = (env.get("HOME") or "/") + path[1:]
    return path if posixpath.isabs(path) else posixpath.join(build_root, path)


def machine_settings(buildkit: BuildKitSubsystem, env: Mapping[str, Optional[str]], build_root: str,
                     python: str) -> MachineSettings:
    """The settings from `[buildkit]` and the invoking environment `env`; a `BuildKitOptionError`
    naming the option for bad values."""
    from llbkit.builder.lazy_pool import parse_worker
    from llbkit.builder.secrets import parse_secrets
    from llbkit.builder.settings import ENVIRONMENT_VARIABLES, MachineSettings, WorkerSetting
    from llbkit.buildkit.connection import TLSConfig
    from llbkit.buildkit.session.ssh import parse_ssh_spec
    from llbkit.errors import LlbkitError
    from llbkit.image.entitlements import parse_entitlements

    def tls_paths() -> Tuple[Optional[str], Optional[str], Optional[str]]:
        if buildkit.tls_dir:
            d = _expand(buildkit.tls_dir, env, build_root)
            try:
                tls = TLSConfig.from_dir(d, buildkit.tls_server_name)
            except LlbkitError as e:
                raise BuildKitOptionError("tls_dir", buildkit.tls_dir, str(e)) from None
            return tls.ca_cert, tls.cert, tls.key
        return tuple(_expand(p, env, build_root) if p else None  # type: ignore[return-value]
                     for p in (buildkit.tls_ca, buildkit.tls_cert, buildkit.tls_key))

    check_options(buildkit)
    ca, cert, key = tls_paths()
    workers = []
    for text in buildkit.workers:
        try:
            cfg = parse_worker(text)
        except ValueError as e:
            raise BuildKitOptionError("workers", text, str(e)) from None
        tcp = cfg.address.startswith("tcp://")
        workers.append(WorkerSetting(cfg.address, cfg.platforms, ca if tcp else None, cert if tcp else None,
                                     key if tcp else None, buildkit.tls_server_name if tcp else None))
    sources = parse_secrets(buildkit.secrets)  # checked by check_options
    entitlements = parse_entitlements(buildkit.entitlements)  # checked by check_options
    ssh: Dict[str, str] = {}
    auth_sock = env.get("SSH_AUTH_SOCK") or ""
    for text in buildkit.ssh:  # checked by check_options
        sid, agent = parse_ssh_spec(text, {"SSH_AUTH_SOCK": auth_sock or "-"})
        # A bare ID is $SSH_AUTH_SOCK's agent, "" when it is unset: a build that needs it says so.
        ssh[sid] = _expand(agent.socket, env, build_root) if "=" in text else auth_sock
    secrets: Dict[str, Dict[str, str]] = {}
    for sid, src in sources.items():
        if src.env is not None:
            value = env.get(src.env)
            if value is not None:
                secrets[sid] = {"value": value}
        else:
            assert src.file is not None
            secrets[sid] = {"file": _expand(src.file, env, build_root)}
    return MachineSettings(
        workers=tuple(workers), auto_start=bool(buildkit.auto_start),
        allow_emulation=bool(buildkit.allow_emulation), max_attempts=buildkit.max_attempts,
        connect_timeout=float(buildkit.connect_timeout), concurrency=buildkit.concurrency,
        cache_from=tuple(buildkit.cache_from), cache_to=tuple(buildkit.cache_to),
        progress=buildkit.progress.value,
        environment={k: v for k, v in env.items() if k in ENVIRONMENT_VARIABLES and v is not None},
        secrets=secrets, python=python, entitlements=entitlements, ssh=ssh,
    )


def runtime_path() -> str:
    """Where the build processes' one requirement (protobuf) is imported from in this Pants: Pants
    resolves `[GLOBAL].plugins` into a directory of its own, outside its virtualenv."""
    import google.protobuf

    return os.path.dirname(os.path.dirname(os.path.dirname(google.protobuf.__file__)))


def channel_name(settings: MachineSettings, build_root: str) -> str:
    public = json.loads(settings.to_json())
    public.pop("secrets")
    h = hashlib.sha256(json.dumps({"build_root": build_root, "settings": public}, sort_keys=True).encode())
    # Pants accepts only lowercase letters and underscores in cache names: spell the hash in a-p.
    return "llbkit_machine_" + h.hexdigest()[:16].translate(str.maketrans("0123456789abcdef", "abcdefghijklmnop"))


# Run by the interpreter Pants runs on (only the standard library), as an uncached process: the
# settings come in its environment, which no cache stores (it holds secret values).
_WRITER = """
import os, sys
d = sys.argv[1]
def put(name, data, mode):
    tmp = os.path.join(d, f".{name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, os.path.join(d, name))
put(sys.argv[2], os.environ["LLBKIT_SETTINGS"], 0o600)
put("python", "#!/bin/sh\\nPYTHONPATH=\\"$PYTHONPATH:" + sys.argv[4] + "\\" exec " + sys.argv[3] + ' "$@"\\n', 0o700)
"""


@rule(desc="Hand this machine's BuildKit settings to llbkit's build processes", level=LogLevel.DEBUG)
async def machine_channel(_: MachineChannelRequest, buildkit: BuildKitSubsystem, build_root: BuildRoot) -> MachineChannel:
    from llbkit.builder.secrets import parse_secrets
    from llbkit.builder.settings import ENVIRONMENT_VARIABLES, SETTINGS_FILE

    check_options(buildkit)
    sources = parse_secrets(buildkit.secrets)
    names = sorted({*ENVIRONMENT_VARIABLES, "SSH_AUTH_SOCK", *(s.env for s in sources.values() if s.env)})
    env = await Get(EnvironmentVars, EnvironmentVarsRequest(names))
    python, requirements = sys.executable, runtime_path()
    settings = machine_settings(buildkit, dict(env), build_root.path, f"{shlex.quote(python)} {requirements}")
    name = channel_name(settings, build_root.path)
    # Never stored in a cache (its env holds secret values): memoized by pantsd only, so it runs
    # once per pantsd (every run without pantsd) and again whenever the settings change, which
    # are its env: a changed secret, DOCKER_CONFIG or BUILDKIT_HOST is a new process. A no-op
    # under pantsd thus runs no process at all.
    await Get(ProcessResult, Process(
        argv=(python, "-S", "-c", _WRITER, CHANNEL_DIR, SETTINGS_FILE, shlex.quote(python), requirements),
        env={"LLBKIT_SETTINGS": settings.to_json()},
        append_only_caches={name: CHANNEL_DIR},
        description="Write llbkit's machine settings",
        level=LogLevel.TRACE,
        cache_scope=ProcessCacheScope.PER_RESTART_SUCCESSFUL,
    ))
    configured = tuple(sorted((sid, f"env:{s.env}" if s.env else f"file:{s.file}") for sid, s in sources.items()))
    return MachineChannel(name, configured, frozenset(settings.secrets))


def rules():
    return collect_rules()
