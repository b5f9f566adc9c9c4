"""Image configuration (the OCI image config's ``config`` and ``history``), Docker-style merging.

An LLB definition says how to build a root filesystem; the image config says how to run it
(env, entrypoint, cmd, workdir, user, labels, exposed ports, volumes, stop signal) and what made
it (history). :class:`ImageConfig` is the caller's part; :meth:`ImageConfig.to_oci` turns it into
the OCI config JSON for one platform, on top of the base image's config when there is one,
inheriting the way Docker does for a ``FROM`` image.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

from llbkit.jsonutil import parse_json_object
from llbkit.oci.errors import ImageConfigError
from llbkit.platforms import parse_platform

__all__ = ["ImageConfig", "HistoryEntry", "DEFAULT_PATH", "platform_fields", "parse_config", "parse_port"]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class HistoryEntry:
    """One OCI history entry. ``empty_layer`` entries describe config-only steps."""

    created_by: str = ""
    comment: str = ""
    empty_layer: bool = False
    created: Optional[str] = None  # RFC 3339; None lets the exporter fill it (SOURCE_DATE_EPOCH)
    author: str = ""

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        if self.created:
            out["created"] = self.created
        if self.created_by:
            out["created_by"] = self.created_by
        if self.author:
            out["author"] = self.author
        if self.comment:
            out["comment"] = self.comment
        if self.empty_layer:
            out["empty_layer"] = True
        return out


_PORT_RE = re.compile(r"^([0-9]+)(?:-([0-9]+))?(?:/([A-Za-z]+))?$")


def parse_port(value: str) -> List[str]:
    """``8080`` -> ``["8080/tcp"]``; ``53/udp``; ranges ``8000-8002/tcp`` expand (Docker's EXPOSE).

    Raises ``ValueError`` with the reason (callers add their own context)."""
    if not isinstance(value, str):
        raise ValueError("a port must be a string")
    m = _PORT_RE.match(value.strip())
    if m is None:
        raise ValueError("expected PORT[/PROTO] or START-END[/PROTO]")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    proto = (m.group(3) or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise ValueError(f"unknown protocol {proto!r} (use tcp, udp or sctp)")
    if not (0 < lo <= 65535 and 0 < hi <= 65535):
        raise ValueError("ports are 1..65535")
    if hi < lo:
        raise ValueError(f"the range end {hi} is below its start {lo}")
    return [f"{p}/{proto}" for p in range(lo, hi + 1)]


def _ports(p: str) -> List[str]:
    try:
        return parse_port(str(p))
    except ValueError as e:
        raise ImageConfigError(
            f"invalid exposed port {str(p).strip()!r}: {e}; expected PORT[/tcp|/udp|/sctp] or "
            "START-END[/PROTO], e.g. 8080/tcp") from None


def platform_fields(platform: str) -> Dict[str, str]:
    """``linux/arm64/v8`` -> ``{"architecture": "arm64", "os": "linux"}``: the OCI config's
    platform keys of the normalized platform (:func:`llbkit.platforms.parse_platform`)."""
    return {k: v for k, v in parse_platform(platform).to_dict().items() if isinstance(v, str)}


@dataclass(frozen=True)
class ImageConfig:
    """What an image runs with. ``None`` (or empty) fields inherit from the base image.

    ``env`` and ``labels`` are merged key by key into the base's (ours win, base order kept, new
    keys appended). Setting ``entrypoint`` without ``cmd`` clears the base's ``cmd`` (Docker's
    rule: a new ENTRYPOINT resets an inherited CMD). ``exposed_ports`` (``"8080"`` means
    ``8080/tcp``) and ``volumes`` are added to the base's. ``history`` entries are appended to the
    base's history.
    """

    env: Mapping[str, str] = field(default_factory=dict)
    entrypoint: Optional[Sequence[str]] = None
    cmd: Optional[Sequence[str]] = None
    workdir: Optional[str] = None
    user: Optional[str] = None
    labels: Mapping[str, str] = field(default_factory=dict)
    exposed_ports: Sequence[str] = ()
    volumes: Sequence[str] = ()
    stop_signal: Optional[str] = None
    history: Sequence[HistoryEntry] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ImageConfig":
        """From JSON-like data with this class' field names (``env``, ``entrypoint``, ``cmd``,
        ``workdir``, ``user``, ``labels``, ``exposed_ports``, ``volumes``, ``stop_signal``,
        ``history`` as a list of objects with ``created_by``/``comment``/``empty_layer``)."""
        known = {"env", "entrypoint", "cmd", "workdir", "user", "labels", "exposed_ports",
                 "volumes", "stop_signal", "history"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ImageConfigError(
                f"unknown image config field(s) {', '.join(unknown)}: use {', '.join(sorted(known))}"
            )

        def str_map(key: str) -> Dict[str, str]:
            v = data.get(key) or {}
            if not isinstance(v, Mapping) or not all(isinstance(x, str) for x in v.values()):
                raise ImageConfigError(f"image config field {key!r} must be an object of strings")
            return dict(v)

        def str_list(key: str) -> Optional[List[str]]:
            v = data.get(key)
            if v is None:
                return None
            if isinstance(v, str) or not all(isinstance(x, str) for x in v):
                raise ImageConfigError(f"image config field {key!r} must be a list of strings")
            return list(v)

        def opt_str(key: str) -> Optional[str]:
            v = data.get(key)
            if v is not None and not isinstance(v, str):
                raise ImageConfigError(f"image config field {key!r} must be a string")
            return v

        history = []
        for h in data.get("history") or []:
            if not isinstance(h, Mapping):
                raise ImageConfigError("image config field 'history' must be a list of objects")
            history.append(HistoryEntry(created_by=h.get("created_by", ""), comment=h.get("comment", ""),
                                        empty_layer=bool(h.get("empty_layer", False)),
                                        created=h.get("created"), author=h.get("author", "")))
        return cls(
            env=str_map("env"), entrypoint=str_list("entrypoint"), cmd=str_list("cmd"),
            workdir=opt_str("workdir"), user=opt_str("user"), labels=str_map("labels"),
            exposed_ports=tuple(str_list("exposed_ports") or ()), volumes=tuple(str_list("volumes") or ()),
            stop_signal=opt_str("stop_signal"), history=tuple(history),
        )

    def to_oci(self, platform: str, base: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """The OCI image config JSON object for ``platform`` (``os/arch[/variant]``).

        ``base`` is the base image's config as parsed JSON (from ``resolve_image_config``); without
        one, the image starts empty with Docker's default ``PATH``.
        """
        base = dict(base or {})
        bcfg: Mapping[str, Any] = base.get("config") or {}
        cfg: Dict[str, Any] = {}

        env: List[str] = list(bcfg.get("Env") or [])
        if not base and not any(k == "PATH" for k in self.env):
            env.append(f"PATH={DEFAULT_PATH}")
        for key, value in self.env.items():
            if not key or "=" in key:
                raise ImageConfigError(f"invalid env name {key!r}: must be non-empty and contain no '='")
            entry = f"{key}={value}"
            for i, e in enumerate(env):
                if e.split("=", 1)[0] == key:
                    env[i] = entry
                    break
            else:
                env.append(entry)
        if env:
            cfg["Env"] = env

        entrypoint = list(self.entrypoint) if self.entrypoint is not None else bcfg.get("Entrypoint")
        if self.cmd is not None:
            cmd = list(self.cmd)
        elif self.entrypoint is not None:
            cmd = None
        else:
            cmd = bcfg.get("Cmd")
        if entrypoint:
            cfg["Entrypoint"] = list(entrypoint)
        if cmd:
            cfg["Cmd"] = list(cmd)

        for key, ours in (("WorkingDir", self.workdir), ("User", self.user), ("StopSignal", self.stop_signal)):
            value = ours if ours is not None else bcfg.get(key)
            if value:
                cfg[key] = value

        labels = dict(bcfg.get("Labels") or {})
        labels.update(self.labels)
        if labels:
            cfg["Labels"] = labels

        ports = dict(bcfg.get("ExposedPorts") or {})
        for p in self.exposed_ports:
            for one in _ports(p):
                ports[one] = {}
        if ports:
            cfg["ExposedPorts"] = {k: {} for k in sorted(ports)}

        volumes = dict(bcfg.get("Volumes") or {})
        for v in self.volumes:
            if not str(v).startswith("/"):
                raise ImageConfigError(f"invalid volume {v!r}: must be an absolute path")
            volumes[str(v)] = {}
        if volumes:
            cfg["Volumes"] = {k: {} for k in sorted(volumes)}

        for key in ("OnBuild", "Healthcheck", "Shell", "ArgsEscaped"):
            if key in bcfg and bcfg[key]:
                cfg[key] = bcfg[key]

        out: Dict[str, Any] = dict(platform_fields(platform))
        for key in ("os.version", "os.features"):
            if key in base and base.get("os") == out["os"]:
                out[key] = base[key]
        out["config"] = cfg
        diff_ids = list((base.get("rootfs") or {}).get("diff_ids") or [])
        out["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
        history = list(base.get("history") or []) + [h.to_json() for h in self.history]
        if history:
            out["history"] = history
        return out

    def to_json_bytes(self, platform: str, base: Optional[Mapping[str, Any]] = None) -> bytes:
        return json.dumps(self.to_oci(platform, base), separators=(",", ":"), sort_keys=False).encode()


def parse_config(data: bytes) -> Dict[str, Any]:
    """A base image config blob as a dict (raises :class:`ImageConfigError` if it is not a JSON
    object)."""
    return parse_json_object(data, "base image config", ImageConfigError)

