"""The machine settings of a build: everything a solve needs that is not its content.

A build's result is a function of its content (the LLB definitions, image configs, export
options, the build context and the solver's code). How it gets built is not: which buildkitd
workers, TLS files, registry credentials (``DOCKER_CONFIG``, credential helpers on ``PATH``),
secret values, the local daemon's state dir, cache import/export, retries, progress. Those are
:class:`MachineSettings`, kept apart from the content so that they never enter a cache key:
changing the fleet, rotating a secret or moving ``$LLBKIT_CACHE`` never invalidates a result,
and two machines with different settings share results.

The Pants backend hands them to its build processes out of band, as a JSON file in a Pants
named cache (see ``llbkit_pants.util_rules.machine``); :func:`load_settings` reads it there.
The file holds secret values; it is written with mode 0600.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

from llbkit.buildkit.connection import TLSConfig
from llbkit.buildkit.errors import OptionNames
from llbkit.buildkit.pool import WorkerConfig
from llbkit.buildkit.session.secrets import SecretSource
from llbkit.errors import LlbkitError

__all__ = ["MachineSettings", "WorkerSetting", "SettingsError", "load_settings", "SETTINGS_FILE",
           "ENVIRONMENT_VARIABLES"]

SETTINGS_FILE = "settings.json"
SCHEMA = "llbkit.machine-settings.v1"
# What a build reads of the invoking environment: the local daemon's dirs, buildctl's default
# address, Docker's credentials and the credential helpers found on PATH, CA bundles.
ENVIRONMENT_VARIABLES = (
    "HOME", "PATH", "LLBKIT_CACHE", "XDG_CACHE_HOME", "LLBKIT_BUILDKIT_BIN", "BUILDKIT_HOST",
    "DOCKER_CONFIG", "SSL_CERT_FILE", "SSL_CERT_DIR", "LLBKIT_DEBUG",
)


# The connection settings as the Pants backend's users write them (`[buildkit]` options), for
# the build processes' error messages (see llbkit.buildkit.errors.use_option_names).
OPTION_NAMES = OptionNames(
    address="[buildkit].workers (or BUILDKIT_HOST)",
    tls_dir="[buildkit].tls_dir",
    tls_ca="[buildkit].tls_ca",
    tls_cert="[buildkit].tls_cert",
    tls_key="[buildkit].tls_key",
    tls_server_name="[buildkit].tls_server_name",
    insecure="",  # the backend reaches tcp:// workers over TLS only
    timeout="[buildkit].connect_timeout",
    start_hint=("Start it, or fix the address in [buildkit].workers (or BUILDKIT_HOST); "
                "`pants buildkit-workers` shows what each worker answers."),
)


class SettingsError(LlbkitError):
    """The machine settings file is missing or damaged."""


@dataclass(frozen=True)
class WorkerSetting:
    """One configured worker: its address, its platforms (native first; empty: ask the daemon)
    and, for ``tcp://``, the TLS files towards it."""

    address: str
    platforms: Tuple[str, ...] = ()
    tls_ca: Optional[str] = None
    tls_cert: Optional[str] = None
    tls_key: Optional[str] = None
    tls_server_name: Optional[str] = None

    def config(self) -> WorkerConfig:
        tls = None
        if self.address.startswith("tcp://") and (self.tls_ca or self.tls_cert or self.tls_key):
            tls = TLSConfig(self.tls_ca, self.tls_cert, self.tls_key, self.tls_server_name)
        return WorkerConfig(self.address, tls=tls, platforms=self.platforms)


@dataclass(frozen=True)
class MachineSettings:
    """How this machine builds. ``secrets`` maps an id to ``{"value": TEXT}`` (read from the
    invoking environment) or ``{"file": PATH}``; ``environment`` is what the build sees of the
    invoking environment (see :data:`ENVIRONMENT_VARIABLES`). ``entitlements`` are asked of the
    daemon for every solve (and allowed by the auto-started one); ``ssh`` maps an ssh agent id to
    the agent's socket path, forwarded to runs with ssh mounts."""

    workers: Tuple[WorkerSetting, ...] = ()
    auto_start: bool = True
    allow_emulation: bool = True
    max_attempts: int = 3
    connect_timeout: float = 5.0  # seconds for a worker's health check and short requests
    concurrency: int = 0  # the most solves a worker runs at once, over every build process (0: no limit)
    cache_from: Tuple[str, ...] = ()
    cache_to: Tuple[str, ...] = ()
    progress: str = "quiet"
    environment: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict, repr=False)
    # How build processes run Python: the interpreter's path, then the directories its plugin
    # requirements are imported from (the wrapper's parts; kept here so that a change of either
    # is a new settings channel).
    python: str = ""
    entitlements: Tuple[str, ...] = ()
    ssh: Mapping[str, str] = field(default_factory=dict)

    def worker_configs(self) -> Tuple[WorkerConfig, ...]:
        """The configured workers; with none, ``BUILDKIT_HOST`` (as buildctl does); empty
        means the local buildkitd (see ``auto_start``)."""
        if self.workers:
            return tuple(w.config() for w in self.workers)
        host = self.environment.get("BUILDKIT_HOST")
        if host:
            return (WorkerConfig(host, name="BUILDKIT_HOST"),)
        return ()

    def secret_sources(self, ids: Any = None) -> Dict[str, SecretSource]:
        """The sources of the secrets ``ids`` (all configured ones when ``None``)."""
        out: Dict[str, SecretSource] = {}
        for sid, src in self.secrets.items():
            if ids is not None and sid not in ids:
                continue
            if "value" in src:
                out[sid] = SecretSource(value=src["value"].encode())
            else:
                out[sid] = SecretSource(file=src["file"])
        return out

    def to_json(self) -> str:
        doc = {
            "schema": SCHEMA,
            "workers": [{k: v for k, v in vars(w).items() if v not in (None, ())} for w in self.workers],
            "auto_start": self.auto_start, "allow_emulation": self.allow_emulation,
            "max_attempts": self.max_attempts, "connect_timeout": self.connect_timeout,
            "concurrency": self.concurrency, "cache_from": list(self.cache_from),
            "cache_to": list(self.cache_to), "progress": self.progress,
            "environment": dict(sorted(self.environment.items())),
            "secrets": {k: dict(v) for k, v in sorted(self.secrets.items())},
            "python": self.python,
            "entitlements": list(self.entitlements),
            "ssh": dict(sorted(self.ssh.items())),
        }
        return json.dumps(doc, sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str, where: str = "machine settings") -> "MachineSettings":
        try:
            doc = json.loads(text)
            if doc.get("schema") != SCHEMA:
                raise ValueError(f"schema {doc.get('schema')!r}, expected {SCHEMA!r}")
            return cls(
                workers=tuple(WorkerSetting(w["address"], tuple(w.get("platforms") or ()), w.get("tls_ca"),
                                            w.get("tls_cert"), w.get("tls_key"), w.get("tls_server_name"))
                              for w in doc["workers"]),
                auto_start=bool(doc["auto_start"]), allow_emulation=bool(doc["allow_emulation"]),
                max_attempts=int(doc["max_attempts"]), concurrency=int(doc.get("concurrency") or 0),
                connect_timeout=float(doc.get("connect_timeout") or 5.0), cache_from=tuple(doc["cache_from"]),
                cache_to=tuple(doc["cache_to"]), progress=str(doc["progress"]),
                environment=dict(doc["environment"]), secrets=dict(doc["secrets"]),
                python=str(doc.get("python") or ""),
                entitlements=tuple(str(e) for e in doc.get("entitlements") or ()),
                ssh={str(k): str(v) for k, v in (doc.get("ssh") or {}).items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise SettingsError(f"{where} is damaged ({e}); run the build again to rewrite it") from None


def load_settings(directory: "str | os.PathLike[str]") -> MachineSettings:
    """The settings written into ``directory`` (a clear error when there are none)."""
    path = Path(directory) / SETTINGS_FILE
    try:
        text = path.read_text()
    except OSError as e:
        raise SettingsError(
            f"no machine settings at {path} ({e.strerror or e}): this process must be run by the "
            "llbkit Pants backend, which writes them first") from None
    return MachineSettings.from_json(text, str(path))
