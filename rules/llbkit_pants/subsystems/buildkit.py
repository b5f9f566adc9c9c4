"""The `[buildkit]` options: which buildkitd workers build images, and how.

The workers form one pool (`llbkit.buildkit.pool`): each platform of an image goes to a worker
native to it when one is reachable, else to one that emulates it, the least busy first. With
no `workers`, `BUILDKIT_HOST`, else a local buildkitd started on demand (`auto_start`) and
reused across runs; see `llbkit.buildkit.local_daemon`. None of these options enters a cache
key: they reach the build processes out of band (see `util_rules.machine`).
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Optional, Sequence

from pants.option.option_types import BoolOption, EnumOption, FloatOption, IntOption, StrListOption, StrOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import softwrap

from llbkit.buildkit.local_daemon import INSTALL_HINT


class Progress(Enum):
    quiet = "quiet"
    plain = "plain"


# BuildKit's cache backends (`--import-cache` / `--export-cache` types).
CACHE_FROM_TYPES = ("registry", "local", "gha", "s3", "azblob")
CACHE_TO_TYPES = ("registry", "inline", "local", "gha", "s3", "azblob")

class BuildKitOptionError(Exception):
    """A `[buildkit]` option is invalid (the message names it, the value and how to fix it)."""

    def __init__(self, option: str, value: Any = None, problem: Optional[str] = None) -> None:
        # BuildKitOptionError("workers", "foo", "why"), or one finished message (older callers).
        super().__init__(option if problem is None else f"invalid [buildkit].{option} {value!r}: {problem}")
        self.option = option if problem is not None else None
        self.value = value


class BuildKitSubsystem(Subsystem):
    options_scope = "buildkit"
    help = softwrap(
        """
        How `container_image` targets are built: the buildkitd workers, TLS towards them, default
        platforms, cache import/export and reproducibility. Results are cached by content (the LLB
        definitions, the build context, the export options and llbkit's code) in Pants' caches,
        local and remote, never by worker address, TLS file, credential or secret value, so
        changing the workers never invalidates a build and machines with different workers
        share results. Environment variables (`BUILDKIT_HOST`, `DOCKER_CONFIG`, secrets'
        `env:` sources, `PATH` for credential helpers, `LLBKIT_CACHE`) are read from the shell
        that runs Pants, with or without pantsd.
        """
    )

    workers = StrListOption(
        default=[],
        help=softwrap(
            """
            The buildkitd workers, as `ADDRESS` or `ADDRESS=PLATFORM,...`, e.g.
            `workers = ["unix:///run/buildkit/buildkitd.sock", "tcp://10.0.0.6:1234=linux/arm64"]`.
            Addresses are `unix:///path/to/buildkitd.sock` or `tcp://HOST:PORT` (with mutual TLS,
            see `tls_dir`). A worker's platforms are asked of the daemon (its first one is native,
            the others emulated); list them after `=` (native first) to override that. Each
            platform of an image is solved on a worker native to it when one is reachable, else on
            one that emulates it (see `allow_emulation`), the least busy first; the platforms of
            an image are solved in parallel. Empty: the address in the invoking environment's
            `BUILDKIT_HOST` (as buildctl uses it), else the local buildkitd (see `auto_start`).
            `./pants buildkit-workers` shows each worker's platforms and whether it answers.
            """
        ),
    )
    tls_ca = StrOption(default=None, help="The CA certificate (PEM) that signed the `tcp://` workers' certificates.")
    tls_cert = StrOption(default=None, help="The client certificate (PEM) presented to `tcp://` workers (mutual TLS).")
    tls_key = StrOption(default=None, help="The client key (PEM) that goes with `tls_cert`.")
    tls_dir = StrOption(
        default=None,
        help=softwrap(
            """
            A directory holding `ca.pem`, `cert.pem` and `key.pem` (buildctl's `--tlsdir` layout),
            or `ca.crt`, `tls.crt` and `tls.key` (a Kubernetes TLS secret's names, which buildctl
            accepts too), instead of `tls_ca`, `tls_cert` and `tls_key` (set one or the other).
            TLS applies to the `tcp://` workers. Relative paths are relative to the build root;
            `~` is expanded.
            """
        ),
    )
    connect_timeout = FloatOption(
        default=5.0,
        help=softwrap(
            """
            Seconds a worker has to answer when it is checked before a build (its info and
            platforms), and on other short requests; a worker that accepts the connection but does
            not answer in time is reported so and not used. Raise it for distant or busy workers.
            Solves themselves have no time limit.
            """
        ),
    )
    tls_server_name = StrOption(
        default=None, help="The name checked in the workers' certificates (default: each address' host)."
    )
    auto_start = BoolOption(
        default=True,
        help=softwrap(
            f"""
            With no `workers` configured, start a local buildkitd when a build needs one, under
            `$LLBKIT_CACHE/buildkitd/` (`~/.cache/llbkit/buildkitd/`), and reuse it across runs (its
            PID is in `buildkitd.pid` there; stop it with `kill $(cat .../buildkitd.pid)`). buildkitd
            is looked for in `$LLBKIT_BUILDKIT_BIN`, `$LLBKIT_CACHE/buildkit-v0.32.2/bin`, then
            `PATH`. If it is missing: {INSTALL_HINT}. Builds served from the cache never start it.
            """
        ),
    )
    allow_emulation = BoolOption(
        default=True,
        help=softwrap(
            """
            Whether a platform may be built by emulation (qemu) on a worker native to another
            platform when no worker native to it is reachable. With `false`, such a platform fails
            with an error naming every worker and why it cannot build it.
            """
        ),
    )
    max_attempts = IntOption(
        default=3,
        help=softwrap(
            """
            How many times a platform is tried, each time on another worker, when its worker cannot
            be reached or dies during the build (a failing `run` step is not retried). Each retry
            is logged.
            """
        ),
    )
    concurrency = IntOption(
        default=0,
        help=softwrap(
            """
            The most solves each worker runs at once, counted over every build process of this
            machine (0, the default: no limit of its own). Each image is built by its own Pants
            process, so the solves in flight are at most Pants' process parallelism
            (`[GLOBAL].process_execution_local_parallelism`, by default the number of cores);
            a solve mostly waits on its worker, so with a fleet raise that, and bound what each
            worker takes with this option, e.g. `concurrency = 4`. A build whose worker is that
            busy waits for a free place (another worker native to its platform is taken first).
            """
        ),
    )
    secrets = StrListOption(
        default=[],
        help=softwrap(
            """
            Where the values of secrets come from, as `ID=env:VARIABLE` or `ID=file:PATH`, e.g.
            `secrets = ["token=env:APP_TOKEN", "npmrc=file:~/.npmrc"]`: a `run` step with
            `secrets=[secret_mount("token")]` then reads `$APP_TOKEN` at `/run/secrets/token`.
            Only the secrets an image mounts are sent to its build. Values never enter a cache
            key, the image or a log; an image mounting a required secret that is not listed here
            fails with an error naming the target and the secret.
            """
        ),
    )
    entitlements = StrListOption(
        default=[],
        help=softwrap(
            """
            Privileges `run` steps may ask of buildkitd beyond the sandbox, which you enable
            explicitly: `network.host` for `run(..., network="host")` and `security.insecure` for
            `run(..., security="insecure")` (privileged), e.g. `entitlements = ["network.host"]`.
            A solve asks for an entitlement only when one of its runs needs it. The auto-started
            local buildkitd allows what is listed here (it is restarted once when the list grows);
            remote workers must allow them themselves (`buildkitd
            --allow-insecure-entitlement network.host`). An image whose run needs an entitlement
            that is not listed fails before building, naming the target and the step. Not part of
            any cache key: the image is the same either way.
            """
        ),
    )
    ssh = StrListOption(
        default=[],
        help=softwrap(
            """
            The ssh agents forwarded to `run` steps with `ssh_mount(id)`, as `ID` (the agent of
            `$SSH_AUTH_SOCK` in the environment Pants runs in), `ID=SOCKET` (an agent's socket
            path) or `ID=KEYFILE` (a private key without passphrase, served by an `ssh-agent` that
            the build runs for itself), e.g. `ssh = ["default"]`, `ssh =
            ["github=~/.ssh/github-agent.sock"]` or `ssh = ["deploy=~/.ssh/deploy_ed25519"]`. For
            an agent, start it and add your keys first (`eval $(ssh-agent)`, `ssh-add
            ~/.ssh/id_ed25519`). buildkitd only relays signing requests, so keys never leave this
            machine and never enter an image, a log or a cache key. An image with a required `ssh_mount()`
            whose agent is not listed fails before building; one whose agent does not answer fails
            naming the socket.
            """
        ),
    )
    platforms = StrListOption(
        default=["linux/amd64"],
        help="The platforms of `container_image` targets that do not set `platforms`, e.g. `[\"linux/amd64\", \"linux/arm64\"]`.",
    )
    cache_from = StrListOption(
        default=[],
        help=softwrap(
            """
            BuildKit cache imports, buildctl-style, e.g. `["type=registry,ref=registry.example.com/cache/app"]`.
            Types: `registry` (`ref=`), `local` (`src=`), `gha`, `s3`, `azblob`. They speed up
            solves; they are not part of the result's cache key.
            """
        ),
    )
    cache_to = StrListOption(
        default=[],
        help=softwrap(
            """
            BuildKit cache exports, buildctl-style, e.g.
            `["type=registry,ref=registry.example.com/cache/app,mode=max"]`. Types: `registry`
            (`ref=`), `inline`, `local` (`dest=`), `gha`, `s3`, `azblob`.
            """
        ),
    )
    source_date_epoch = IntOption(
        default=0,
        help=softwrap(
            """
            SOURCE_DATE_EPOCH (seconds) for image and layer timestamps. The default, 0, makes the
            same inputs give the same image digest on any worker.
            """
        ),
    )
    progress = EnumOption(
        default=Progress.quiet,
        help=softwrap(
            """
            Solve progress: `quiet` (the default: one line per image, and the scheduling
            events), `plain` (also BuildKit's step-by-step log of each image that was solved,
            shown when its build finishes; a failing step's log is shown either way).
            """
        ),
    )


def _check_cache(option: str, specs: Sequence[str], types: Sequence[str]) -> None:
    from llbkit.buildkit.options import parse_cache_export, parse_cache_import
    from llbkit.errors import LlbkitError

    parse = parse_cache_import if option == "cache_from" else parse_cache_export
    for spec in specs:
        try:
            cache = parse(spec)
        except (LlbkitError, ValueError) as e:
            # The parser speaks buildctl's flags; say it as this option.
            text = str(e).split(": ", 1)[-1]
            raise BuildKitOptionError(option, spec, text) from None
        if cache.type not in types:
            raise BuildKitOptionError(option, spec, f"unknown cache type {cache.type!r}: use one of "
                                      f"{', '.join('type=' + t for t in types)}, e.g. "
                                      '"type=registry,ref=registry.example.com/cache/app"')


def check_options(buildkit: Any) -> None:
    """Refuse bad `[buildkit]` values before anything runs, each error naming the option, the
    value and the fix. Only what needs no I/O: files named by the TLS options are checked by the
    build process that reads them (its errors name the option too)."""
    from llbkit.builder.lazy_pool import parse_worker
    from llbkit.builder.secrets import parse_secret
    from llbkit.errors import LlbkitError
    from llbkit.platforms import canonical_platform

    for text in buildkit.workers:
        try:
            cfg = parse_worker(text)
            for p in cfg.platforms:
                canonical_platform(p, op="platform")
        except (ValueError, LlbkitError) as e:
            raise BuildKitOptionError("workers", text, str(e).replace(f"invalid worker {text!r}: ", "")
                                      + ' (an entry is ADDRESS or ADDRESS=PLATFORM,..., e.g. '
                                      '"tcp://10.0.0.6:1234=linux/arm64")') from None
    for p in buildkit.platforms:
        try:
            canonical_platform(p, op="platform")
        except LlbkitError as e:
            raise BuildKitOptionError("platforms", p, str(e).split(": ", 2)[-1]) from None
    if not buildkit.platforms:
        raise BuildKitOptionError("platforms", [], 'list at least one platform, e.g. ["linux/amd64"]')
    if buildkit.max_attempts < 1:
        raise BuildKitOptionError("max_attempts", buildkit.max_attempts, "it must be at least 1")
    if buildkit.concurrency < 0:
        raise BuildKitOptionError("concurrency", buildkit.concurrency, "it must be 0 (no limit) or more")
    if not buildkit.connect_timeout > 0:
        raise BuildKitOptionError("connect_timeout", buildkit.connect_timeout,
                                  "it must be a positive number of seconds, e.g. 5")
    if buildkit.source_date_epoch < 0:
        raise BuildKitOptionError("source_date_epoch", buildkit.source_date_epoch,
                                  "it must be seconds since 1970 (0 or more)")
    if buildkit.tls_dir and (buildkit.tls_ca or buildkit.tls_cert or buildkit.tls_key):
        raise BuildKitOptionError("tls_dir", buildkit.tls_dir, "set either tls_dir or tls_ca/tls_cert/tls_key, "
                                  "not both")
    if bool(buildkit.tls_cert) != bool(buildkit.tls_key):
        option, other = ("tls_cert", "tls_key") if buildkit.tls_cert else ("tls_key", "tls_cert")
        raise BuildKitOptionError(option, getattr(buildkit, option),
                                  f"the client certificate and key go together: set [buildkit].{other} too")
    _check_cache("cache_from", buildkit.cache_from, CACHE_FROM_TYPES)
    _check_cache("cache_to", buildkit.cache_to, CACHE_TO_TYPES)
    seen = set()
    for text in buildkit.secrets:
        try:
            sid, _ = parse_secret(text)
        except ValueError as e:
            raise BuildKitOptionError("secrets", text, str(e).replace(f"invalid secret {text!r}: ", "")) from None
        if sid in seen:
            raise BuildKitOptionError("secrets", text, f"secret {sid!r} is listed twice: list each id once")
        seen.add(sid)
    _check_entitlements_and_ssh(buildkit)


def _check_entitlements_and_ssh(buildkit: Any) -> None:
    from llbkit.buildkit.session.ssh import parse_ssh_spec
    from llbkit.image.entitlements import parse_entitlements

    for v in buildkit.entitlements:
        try:
            parse_entitlements([v], where="entitlement")
        except ValueError as e:
            raise BuildKitOptionError("entitlements", v, str(e).replace("entitlement: ", "")) from None
    agents = set()
    for text in buildkit.ssh:
        try:
            # A bare ID's socket ($SSH_AUTH_SOCK) is looked up by the build that needs it.
            sid, _ = parse_ssh_spec(text, {"SSH_AUTH_SOCK": "-"})
        except ValueError as e:
            raise BuildKitOptionError("ssh", text, str(e).replace(f"invalid ssh agent {text!r}: ", "")) from None
        if sid in agents:
            raise BuildKitOptionError("ssh", text, f"agent {sid!r} is listed twice; list each id once")
        agents.add(sid)
