"""The `[buildkit]` options: which buildkitd workers build images, and how.

With no `workers`, a local buildkitd is started on demand (`auto_start`) and reused across runs;
see `llbkit.buildkit.local_daemon`.
"""

from __future__ import annotations

from typing import Optional, Tuple

from pants.option.option_types import BoolOption, IntOption, StrListOption, StrOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import softwrap

from llbkit.buildkit.connection import TLSConfig
from llbkit.buildkit.local_daemon import INSTALL_HINT
from llbkit.builder.workers import WorkerSpec, Workers, parse_worker


class BuildKitSubsystem(Subsystem):
    options_scope = "buildkit"
    help = softwrap(
        """
        How `container_image` targets are built: the buildkitd workers, TLS towards them, default
        platforms, cache import/export and reproducibility. Results are cached by content (the LLB
        definitions, the build context and the export options), never by worker address, so
        changing the workers never invalidates a build.
        """
    )

    workers = StrListOption(
        default=[],
        help=softwrap(
            """
            The buildkitd workers, as `ADDRESS` or `ADDRESS=PLATFORM,...` (the platforms a worker
            runs natively), e.g.
            `workers = ["tcp://10.0.0.5:1234=linux/amd64", "tcp://10.0.0.6:1234=linux/arm64"]`.
            Addresses are `unix:///path/to/buildkitd.sock` or `tcp://HOST:PORT` (with TLS, see
            `tls_ca`). Each platform of an image is solved on the first worker that lists it, else
            on the first worker without a platform list (it emulates other platforms). Empty: use
            the local buildkitd (see `auto_start`).
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
            instead of `tls_ca`, `tls_cert` and `tls_key`.
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
    progress = StrOption(
        default="quiet",
        help="Solve progress: `quiet` (the default: one line per image), `plain` (BuildKit's step-by-step log, on stderr).",
    )

    def worker_config(self) -> Workers:
        """The configured workers (empty: the local daemon); raises `ValueError` naming the bad entry."""
        specs: Tuple[WorkerSpec, ...] = tuple(parse_worker(w) for w in self.workers)
        return Workers(specs, self.tls_config())

    def tls_config(self) -> Optional[TLSConfig]:
        if self.tls_dir:
            return TLSConfig.from_dir(self.tls_dir, self.tls_server_name)
        if self.tls_ca or self.tls_cert or self.tls_key:
            return TLSConfig(self.tls_ca, self.tls_cert, self.tls_key, self.tls_server_name)
        return None
