"""The `[buildkit]` options: which buildkitd workers build images, and how.

The workers form one pool (`llbkit.buildkit.pool`): each platform of an image goes to a worker
native to it when one is reachable, else to one that emulates it, the least busy first. With
no `workers`, `BUILDKIT_HOST`, else a local buildkitd started on demand (`auto_start`) and
reused across runs; see `llbkit.buildkit.local_daemon`. None of these options enters a cache
key: they reach the build processes out of band (see `util_rules.machine`).
"""

from __future__ import annotations

from enum import Enum

from pants.option.option_types import BoolOption, EnumOption, IntOption, StrListOption, StrOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import softwrap

from llbkit.buildkit.local_daemon import INSTALL_HINT


class Progress(Enum):
    quiet = "quiet"
    plain = "plain"


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
            instead of `tls_ca`, `tls_cert` and `tls_key`. TLS applies to the `tcp://` workers.
            Relative paths are relative to the build root; `~` is expanded.
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
            They speed up solves; they are not part of the result's cache key.
            """
        ),
    )
    cache_to = StrListOption(
        default=[],
        help="BuildKit cache exports, buildctl-style, e.g. `[\"type=registry,ref=registry.example.com/cache/app,mode=max\"]`.",
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
