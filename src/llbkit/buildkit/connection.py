"""Connecting to buildkitd: addresses, mutual TLS, gRPC channel options, error translation.

Addresses are ``unix://PATH`` or ``tcp://HOST:PORT`` (``BUILDKIT_HOST`` when none is given, like
buildctl). TCP needs TLS unless plain TCP is asked for explicitly. TLS files are read and checked
up front, so a missing or malformed file is reported by name before any network traffic.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Tuple, Union

from llbkit.buildkit.errors import (
    AddressError,
    ConnectionFailedError,
    DaemonError,
    DaemonTimeoutError,
    OptionNames,
    TLSConfigError,
    TLSError,
    TLSProblem,
    option_names,
)

if TYPE_CHECKING:  # pragma: no cover
    import grpc

__all__ = [
    "DEFAULT_ADDRESS",
    "Address",
    "TLSConfig",
    "parse_address",
    "resolve_address",
    "open_channel",
    "translate_rpc_error",
    "START_HINT",
]

DEFAULT_ADDRESS = "unix:///run/buildkit/buildkitd.sock"

# BuildKit's own limits are 16 MiB each way; definitions, configs and file chunks can come close.
MAX_MESSAGE_BYTES = 128 << 20

START_HINT = OptionNames().start_hint  # the CLI's; messages use option_names().start_hint

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Address:
    """A parsed daemon address: ``scheme`` is ``unix`` or ``tcp``."""

    scheme: str
    path: str = ""  # unix
    host: str = ""  # tcp
    port: int = 0  # tcp

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.path}"
        return f"tcp://{self.host}:{self.port}"

    @property
    def grpc_target(self) -> str:
        if self.scheme == "unix":
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_address(address: str) -> Address:
    """Parse ``unix://PATH`` or ``tcp://HOST:PORT``; raise :class:`AddressError` otherwise."""
    addr = address.strip()
    if addr.startswith("unix://"):
        path = addr[len("unix://"):]
        if not path:
            raise AddressError(f"invalid buildkitd address {address!r}: unix:// needs a socket path, e.g. unix:///run/buildkit/buildkitd.sock")
        return Address("unix", path=path)
    if addr.startswith("tcp://"):
        rest = addr[len("tcp://"):].rstrip("/")
        m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)|([^:/\[\]]+):(\d+)", rest)
        if not m:
            raise AddressError(f"invalid buildkitd address {address!r}: expected tcp://HOST:PORT, e.g. tcp://127.0.0.1:1234")
        host = m.group(1) or m.group(3)
        port = int(m.group(2) or m.group(4))
        if not 0 < port < 65536:
            raise AddressError(f"invalid buildkitd address {address!r}: port {port} is out of range")
        return Address("tcp", host=host, port=port)
    scheme = addr.split("://", 1)[0] if "://" in addr else ""
    what = f"unsupported scheme {scheme!r}" if scheme else "no scheme"
    raise AddressError(
        f"invalid buildkitd address {address!r} ({what}): use unix://PATH or tcp://HOST:PORT"
    )


def resolve_address(address: Optional[str] = None) -> Address:
    """The given address, else ``$BUILDKIT_HOST``, else :data:`DEFAULT_ADDRESS`."""
    return parse_address(address or os.environ.get("BUILDKIT_HOST") or DEFAULT_ADDRESS)


def _read_pem(path: PathLike, what: str, marker: str, setting: str) -> bytes:
    p = Path(path)
    where = f"TLS {what} {str(p)!r} (set by {setting} or {option_names().tls_dir})"
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise TLSConfigError(f"{where} does not exist: fix the path", str(p)) from None
    except OSError as e:
        raise TLSConfigError(f"cannot read {where}: {e.strerror or e}", str(p)) from None
    if b"-----BEGIN" not in data or marker.encode() not in data:
        raise TLSConfigError(
            f"{where} is not a PEM {marker.lower()} (expected a '-----BEGIN ...{marker}-----' block)",
            str(p),
        )
    return data


@dataclass(frozen=True)
class TLSConfig:
    """Mutual TLS towards a ``tcp://`` daemon: the CA that signed the daemon's certificate, and the
    client certificate and key the daemon checks. ``server_name`` overrides the name checked in
    the daemon's certificate (default: the address' host)."""

    ca_cert: Optional[str] = None
    cert: Optional[str] = None
    key: Optional[str] = None
    server_name: Optional[str] = None

    # buildctl's --tlsdir names, then the ones of a Kubernetes TLS secret (cert-manager), which
    # buildctl accepts too: either set works as it is mounted.
    DIR_NAMES = (("ca.pem", "ca.crt"), ("cert.pem", "tls.crt"), ("key.pem", "tls.key"))

    @classmethod
    def from_dir(cls, directory: PathLike, server_name: Optional[str] = None) -> "TLSConfig":
        """buildctl's ``--tlsdir`` layout: ``ca.pem``, ``cert.pem``, ``key.pem`` (each optional),
        or ``ca.crt``, ``tls.crt``, ``tls.key`` (a Kubernetes TLS secret's names)."""
        d = Path(directory)
        if not d.is_dir():
            raise TLSConfigError(f"TLS directory {str(d)!r} does not exist", str(d))

        def opt(names: Tuple[str, str]) -> Optional[str]:
            for name in names:
                if (d / name).exists():
                    return str(d / name)
            return None

        ca, cert, key = (opt(n) for n in cls.DIR_NAMES)
        if ca is None and cert is None:
            raise TLSConfigError(
                f"TLS directory {str(d)!r} holds neither ca.pem nor cert.pem/key.pem (nor ca.crt, "
                "tls.crt/tls.key)", str(d)
            )
        if (cert is None) != (key is None):
            have, missing = ("certificate", "key.pem (or tls.key)") if key is None else ("key", "cert.pem (or tls.crt)")
            raise TLSConfigError(f"TLS directory {str(d)!r} holds a client {have} but no {missing}: add it", str(d))
        return cls(ca_cert=ca, cert=cert, key=key, server_name=server_name)

    def load(self) -> Tuple[Optional[bytes], Optional[bytes], Optional[bytes]]:
        """(ca, key, cert) PEM bytes, checked; raise :class:`TLSConfigError` naming the file."""
        if (self.cert is None) != (self.key is None):
            n = option_names()
            missing = f"{n.tls_key} (the client key)" if self.key is None else f"{n.tls_cert} (the client certificate)"
            raise TLSConfigError(f"TLS client certificate and key go together: {missing} is missing")
        names = option_names()
        ca = _read_pem(self.ca_cert, "CA certificate", "CERTIFICATE", names.tls_ca) if self.ca_cert else None
        cert = _read_pem(self.cert, "client certificate", "CERTIFICATE", names.tls_cert) if self.cert else None
        key = _read_pem(self.key, "client key", "PRIVATE KEY", names.tls_key) if self.key else None
        return ca, key, cert


def open_channel(
    address: Address, tls: Optional[TLSConfig] = None, *, insecure: bool = False
) -> "grpc.Channel":
    """A gRPC channel to the daemon (lazy: nothing is sent until the first call)."""
    import grpc

    options: List[Tuple[str, object]] = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_permit_without_calls", 0),
        ("grpc.enable_retries", 0),
    ]
    if address.scheme == "unix":
        if tls is not None:
            raise TLSConfigError(
                f"TLS options were given for {address}, but TLS applies to tcp:// addresses only"
            )
        options.append(("grpc.default_authority", "localhost"))
        return grpc.insecure_channel(address.grpc_target, options=options)
    if tls is None:
        if not insecure:
            n = option_names()
            plain = (f", or ask for plain TCP explicitly ({n.insecure}) if the daemon really listens without TLS"
                     if n.insecure else "")
            raise TLSConfigError(
                f"refusing to connect to {address} without TLS: give the daemon's CA and a client "
                f"certificate ({n.tls_dir}, or {n.tls_ca}/{n.tls_cert}/{n.tls_key}){plain}"
            )
        return grpc.insecure_channel(address.grpc_target, options=options)
    ca, key, cert = tls.load()
    creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
        options.append(("grpc.default_authority", tls.server_name))
    return grpc.secure_channel(address.grpc_target, creds, options=options)


# What gRPC's TLS stack (BoringSSL) says, by what the daemon refused; first match wins.
_TLS_PROBLEMS = [
    (re.compile(r"CERTIFICATE_REQUIRED|certificate required|PEER_DID_NOT_RETURN_A_CERTIFICATE", re.I),
     TLSProblem.CLIENT_CERT_REQUIRED),
    (re.compile(r"CERTIFICATE_VERIFY_FAILED|unknown authority|self.signed|unable to get local issuer", re.I),
     TLSProblem.UNKNOWN_SERVER_CA),
    (re.compile(r"hostname|does not match|subject alt|SAN|peer name", re.I), TLSProblem.SERVER_NAME_MISMATCH),
    (re.compile(r"BAD_CERTIFICATE|UNKNOWN_CA|bad certificate|DECRYPT_ERROR|unknown certificate authority", re.I),
     TLSProblem.CLIENT_CERT_REJECTED),
    (re.compile(r"WRONG_VERSION_NUMBER|http2 preface|preface|Socket closed", re.I), TLSProblem.DAEMON_WITHOUT_TLS),
    (re.compile(r"ssl|tls|handshake", re.I), TLSProblem.HANDSHAKE),
]

_POST_HANDSHAKE_FAILURE = re.compile(r"Secure read failed|Decryption error|DATA_CORRUPTED|Socket closed|Connection reset", re.I)
# A plain-TCP client talking to a TLS listener: Go's TLS server answers the HTTP/2 preface with a
# TLS alert (bytes gRPC cannot frame) and closes.
_PLAIN_TO_TLS = re.compile(r"Socket closed|Connection reset|frame of size|protocol error|FRAME_SIZE|"
                           r"Trying to connect an http1|illegal|preface", re.I)


def tls_problem(details: str, tls: "Union[bool, TLSConfig, None]") -> Optional[TLSProblem]:
    """What the daemon refused, from gRPC's error text (``None``: not a TLS matter)."""
    if isinstance(tls, TLSConfig) and tls.cert is None and _POST_HANDSHAKE_FAILURE.search(details):
        # TLS 1.3: a daemon that wants a client certificate drops the connection after the
        # handshake, which gRPC reports only as a failed read.
        return TLSProblem.CLIENT_CERT_REQUIRED
    if isinstance(tls, TLSConfig) and tls.cert is not None and _POST_HANDSHAKE_FAILURE.search(details):
        # TLS 1.3 again: a client certificate the daemon does not trust (another CA) is refused
        # after the handshake, also seen only as a failed read.
        return TLSProblem.CLIENT_CERT_REJECTED
    if tls:
        for pattern, problem in _TLS_PROBLEMS:
            if pattern.search(details):
                return problem
        return None
    if _PLAIN_TO_TLS.search(details):
        return TLSProblem.DAEMON_WANTS_TLS
    return None


def translate_rpc_error(
    err: BaseException, address: object, *, tls: "Union[bool, TLSConfig, None]" = False,
    what: str = "request", timeout: Optional[float] = None,
) -> Exception:
    """Turn a ``grpc.RpcError`` into a one-paragraph library error (returned, not raised)."""
    import grpc

    code = err.code() if hasattr(err, "code") else None  # type: ignore[attr-defined]
    details = (err.details() if hasattr(err, "details") else str(err)) or ""  # type: ignore[attr-defined]
    names = option_names()
    if code == grpc.StatusCode.UNAVAILABLE:
        problem = tls_problem(details, tls)
        tcp = str(address).startswith("tcp://")
        if problem is not None and (tls or tcp):
            return TLSError(
                f"cannot connect to buildkitd at {address}: {problem.value}: {problem.hint(names)} "
                f"(gRPC: {_short(details)})", str(address), problem,
            )
        return ConnectionFailedError(
            f"cannot connect to buildkitd at {address}: {_short(details)}. Is buildkitd running "
            f"there? {names.start_hint}",
            str(address),
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED and what != "solve":
        within = f" within {timeout:g} s" if timeout else " in time"
        return DaemonTimeoutError(
            f"buildkitd at {address} accepted the connection but did not answer the {what}{within} "
            f"(Deadline Exceeded): check that a buildkitd (not another service) listens there and is "
            f"not overloaded, or allow it more time with {names.timeout}", str(address), timeout,
        )
    name = code.name if code is not None else "UNKNOWN"
    return DaemonError(f"buildkitd at {address} failed the {what}: {details or name}", name)


def _short(details: str, limit: int = 300) -> str:
    details = " ".join(details.split())
    return details if len(details) <= limit else details[: limit - 3] + "..."
