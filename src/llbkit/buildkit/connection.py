"""Connecting to buildkitd: addresses, mutual TLS, the gRPC channel, error translation.

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
    from llbkit.buildkit.rpc.channel import Channel

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
) -> "Channel":
    """A gRPC channel to the daemon (lazy: nothing is sent until the first call)."""
    from llbkit.buildkit.rpc.channel import Channel
    from llbkit.buildkit.rpc.transport import Endpoint, TLSSettings

    if address.scheme == "unix":
        if tls is not None:
            raise TLSConfigError(
                f"TLS options were given for {address}, but TLS applies to tcp:// addresses only"
            )
        return Channel(Endpoint(path=address.path), authority="localhost", max_message=MAX_MESSAGE_BYTES)
    if tls is None:
        if not insecure:
            n = option_names()
            plain = (f", or ask for plain TCP explicitly ({n.insecure}) if the daemon really listens without TLS"
                     if n.insecure else "")
            raise TLSConfigError(
                f"refusing to connect to {address} without TLS: give the daemon's CA and a client "
                f"certificate ({n.tls_dir}, or {n.tls_ca}/{n.tls_cert}/{n.tls_key}){plain}"
            )
        return Channel(Endpoint(host=address.host, port=address.port), max_message=MAX_MESSAGE_BYTES)
    ca, _key, _cert = tls.load()  # checks the files (by name) before any traffic
    settings = TLSSettings(ca=ca, cert_file=tls.cert, key_file=tls.key, server_name=tls.server_name)
    return Channel(Endpoint(host=address.host, port=address.port, tls=settings),
                   authority=tls.server_name or None, max_message=MAX_MESSAGE_BYTES)


# OpenSSL's reasons for a failed handshake or a TLS alert from the daemon, by what it means.
# (Go's TLS server: no client certificate -> certificate_required (TLS 1.3) or bad_certificate
# (1.2); one it cannot verify -> bad_certificate.)
_CLIENT_CERT_ALERTS = frozenset({"SSLV3_ALERT_BAD_CERTIFICATE", "TLSV1_ALERT_UNKNOWN_CA",
                                 "SSLV3_ALERT_CERTIFICATE_UNKNOWN", "TLSV1_ALERT_DECRYPT_ERROR",
                                 "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE", "TLSV1_ALERT_ACCESS_DENIED"})
_NOT_TLS = frozenset({"WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "PACKET_LENGTH_TOO_LONG",
                      "RECORD_LAYER_FAILURE", "HTTP_REQUEST", "WRONG_SSL_VERSION"})
_X509_HOSTNAME_MISMATCH, _X509_IP_MISMATCH = 62, 64


def tls_problem(cause: Optional[BaseException], tls: "Union[bool, TLSConfig, None]") -> Optional[TLSProblem]:
    """What the daemon refused, from the local error of a failed connect (``None``: not a TLS
    matter). ``cause`` is an ``ssl`` error, a :class:`~llbkit.buildkit.rpc.transport.TransportError`
    or another ``OSError``; ``tls`` is the TLS config used (falsy: plain TCP)."""
    from llbkit.buildkit.rpc.transport import TransportError

    if cause is None:
        return None
    import ssl  # only here: plain connections never load it

    if not tls:
        # Plain TCP to a TLS listener: Go's TLS server drops a connection whose first bytes are
        # not a TLS handshake (or answers with an alert, which is not HTTP/2).
        if isinstance(cause, (TransportError, ConnectionResetError, BrokenPipeError)):
            return TLSProblem.DAEMON_WANTS_TLS
        return None
    has_cert = isinstance(tls, TLSConfig) and tls.cert is not None
    if isinstance(cause, ssl.SSLCertVerificationError):
        if getattr(cause, "verify_code", 0) in (_X509_HOSTNAME_MISMATCH, _X509_IP_MISMATCH):
            return TLSProblem.SERVER_NAME_MISMATCH
        return TLSProblem.UNKNOWN_SERVER_CA
    if isinstance(cause, TransportError) and cause.kind == "tls-closed":
        return TLSProblem.DAEMON_WITHOUT_TLS  # a plain listener hangs up on a ClientHello
    if isinstance(cause, ssl.SSLError):
        reason = getattr(cause, "reason", None) or ""
        if reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED":
            return TLSProblem.CLIENT_CERT_REQUIRED
        if reason in _CLIENT_CERT_ALERTS:
            return TLSProblem.CLIENT_CERT_REJECTED if has_cert else TLSProblem.CLIENT_CERT_REQUIRED
        if reason in _NOT_TLS:
            return TLSProblem.DAEMON_WITHOUT_TLS
        if isinstance(cause, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            return TLSProblem.CLIENT_CERT_REJECTED if has_cert else TLSProblem.CLIENT_CERT_REQUIRED
        return TLSProblem.HANDSHAKE
    if isinstance(cause, (TransportError, ConnectionResetError, BrokenPipeError)):
        # TLS 1.3: the client's handshake is over before the daemon checks the client
        # certificate; a daemon that refuses it drops the connection before its first frame.
        return TLSProblem.CLIENT_CERT_REJECTED if has_cert else TLSProblem.CLIENT_CERT_REQUIRED
    return None


def translate_rpc_error(
    err: BaseException, address: object, *, tls: "Union[bool, TLSConfig, None]" = False,
    what: str = "request", timeout: Optional[float] = None,
) -> Exception:
    """Turn an :class:`~llbkit.buildkit.rpc.status.RpcError` into a one-paragraph library error
    (returned, not raised)."""
    from llbkit.buildkit.rpc.status import StatusCode

    code = err.code() if hasattr(err, "code") else None  # type: ignore[attr-defined]
    details = (err.details() if hasattr(err, "details") else str(err)) or ""  # type: ignore[attr-defined]
    names = option_names()
    if code == StatusCode.UNAVAILABLE:
        connecting = getattr(err, "connecting", False)
        problem = tls_problem(getattr(err, "cause", None), tls) if connecting else None
        tcp = str(address).startswith("tcp://")
        if problem is not None and (tls or tcp):
            return TLSError(
                f"cannot connect to buildkitd at {address}: {problem.value}: {problem.hint(names)} "
                f"({_short(details)})", str(address), problem,
            )
        return ConnectionFailedError(
            f"cannot connect to buildkitd at {address}: {_short(details)}. Is buildkitd running "
            f"there? {names.start_hint}",
            str(address),
        )
    if code == StatusCode.DEADLINE_EXCEEDED and what != "solve":
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
