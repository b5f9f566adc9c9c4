"""``llbkit``: the command line (``python -m llbkit``), flags modelled on buildctl's.

Commands: ``build`` (solve a definition from a file or stdin), ``dump-llb``, ``workers``, ``du``,
``prune``, ``push`` (:mod:`llbkit.cli.push`). Errors are one paragraph on stderr and a non-zero
exit status, never a traceback (``LLBKIT_DEBUG=1`` adds one for bug reports).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import NoReturn, Optional, Sequence

from llbkit import __version__
from llbkit.errors import LlbkitError

__all__ = ["main", "build_parser"]

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"llbkit: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def _connection_flags(p: argparse.ArgumentParser, several: bool = False) -> None:
    g = p.add_argument_group("daemon connection")
    if several:
        g.add_argument("--addr", action="append", default=None,
                       help="buildkitd address, unix://PATH or tcp://HOST:PORT (default: $BUILDKIT_HOST, "
                            "then unix:///run/buildkit/buildkitd.sock); repeat it to show a pool of "
                            "workers (the TLS flags then apply to the tcp:// addresses)")
    else:
        g.add_argument("--addr", default=None,
                       help="buildkitd address, unix://PATH or tcp://HOST:PORT (default: $BUILDKIT_HOST, "
                            "then unix:///run/buildkit/buildkitd.sock)")
    g.add_argument("--tlsdir", default=None, help="directory with ca.pem, cert.pem and key.pem")
    g.add_argument("--tlscacert", default=None, help="CA certificate that signed the daemon's certificate")
    g.add_argument("--tlscert", default=None, help="client certificate")
    g.add_argument("--tlskey", default=None, help="client key")
    g.add_argument("--tlsservername", default=None, help="server name to check in the daemon's certificate")
    g.add_argument("--insecure-tcp", action="store_true",
                   help="connect to a tcp:// address without TLS (only for daemons that listen so)")
    g.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to wait for the daemon on short requests (default 30)")


_COMMANDS = ("build", "dump-llb", "workers", "du", "prune", "push")


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser; with ``command`` (one of the subcommands), only that subcommand gets its
    arguments: the others are listed (for ``--help``) but not filled in, which is most of the
    parser's cost and not needed to run one command."""
    p = _Parser(prog="llbkit", description="Build container images from BuildKit LLB, in pure Python.")
    p.add_argument("--version", action="version", version=f"llbkit {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    full = command is None

    b = sub.add_parser("build", help="build a definition (from a file or stdin)",
                       description="Solve an LLB definition (pb.Definition bytes, as `llbkit dump-llb` "
                                   "and `buildctl build` read them) on buildkitd and export the result.")
    if full or command == "build":
        _build_args(b)

    d = sub.add_parser("dump-llb", help="print a definition's ops as JSON (like buildctl debug dump-llb)")
    if full or command == "dump-llb":
        d.add_argument("definition", nargs="?", default="-", help="definition file (default: stdin)")
        d.add_argument("--dot", action="store_true", help="print a Graphviz graph instead")

    w = sub.add_parser("workers", help="list the daemon's workers, or a pool's",
                       description="List one daemon's workers, or, with several --addr or --pool, each "
                                   "worker of a pool: address, native and emulated platforms, version and "
                                   "reachability (exit status 1 when a worker of the pool is unreachable).")
    if full or command == "workers":
        _connection_flags(w, several=True)
        w.add_argument("--pool", default=None, metavar="FILE",
                       help='worker pool config (JSON): {"workers": [{"address": ..., "name": ..., "tlsdir": ..., '
                            '"platforms": [...]}]}')
        w.add_argument("--format", choices=["table", "json"], default="table")
        w.add_argument("--filter", action="append", default=[], help="filter, e.g. platform==linux/arm64")

    du = sub.add_parser("du", help="show build-cache disk usage")
    if full or command == "du":
        _connection_flags(du)
        du.add_argument("--filter", action="append", default=[])
        du.add_argument("--verbose", "-v", action="store_true")
        du.add_argument("--format", choices=["table", "json"], default="table")

    pr = sub.add_parser("prune", help="remove build cache")
    if full or command == "prune":
        _prune_args(pr)

    if full or command == "push":
        from llbkit.cli.push import add_push_parser  # stdlib only: `push` must not need grpc

        add_push_parser(sub)
    else:
        sub.add_parser("push", help=_PUSH_HELP)
    return p


_PUSH_HELP = "push a packaged image (OCI layout or docker archive) to registries"  # as in push.py


def _build_args(b: argparse.ArgumentParser) -> None:
    b.add_argument("definition", nargs="?", default="-", help="definition file (default: stdin)")
    _connection_flags(b)
    b.add_argument("--output", "-o", action="append", default=[], metavar="SPEC",
                   help="exporter, e.g. type=image,name=REF,push=true | type=oci,dest=FILE | "
                        "type=docker,dest=FILE | type=tar,dest=FILE | type=local,dest=DIR; "
                        "dest=- writes the oci/docker/tar stream to stdout (a file dest's directory must exist; a "
                        "directory dest is created); tar=false makes an "
                        "oci/docker export an OCI layout directory")
    b.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="frontend option; platform=os/arch names the definition's platform "
                        "(its image config gets that os/arch)")
    b.add_argument("--local", action="append", default=[], metavar="NAME=DIR",
                   help="local directory served to the build as NAME")
    b.add_argument("--secret", action="append", default=[], metavar="id=ID,src=FILE|env=VAR",
                   help="secret served to the build")
    b.add_argument("--export-cache", action="append", default=[], metavar="SPEC",
                   help="cache export, e.g. type=registry,ref=REF,mode=max | type=local,dest=DIR,mode=max "
                        "| type=inline")
    b.add_argument("--import-cache", action="append", default=[], metavar="SPEC",
                   help="cache import, e.g. type=registry,ref=REF | type=local,src=DIR (a missing "
                        "cache is skipped)")
    b.add_argument("--image-config", default=None, metavar="FILE",
                   help="JSON image config (env, entrypoint, cmd, workdir, user, labels, exposed_ports, "
                        "volumes, stop_signal): the image is built through the gateway with this config")
    b.add_argument("--base", default=None, metavar="REF",
                   help="base image whose config (env, cmd, history...) the image config inherits")
    b.add_argument("--progress", default="auto", choices=["auto", "plain", "tty", "json", "quiet"],
                   help="progress output on stderr (json: on stdout)")
    b.add_argument("--metadata-file", default=None, metavar="FILE",
                   help="write the exporter response (image digest...) as JSON, like buildctl")
    b.add_argument("--ref", default=None, help="build reference (default: random)")


def _prune_args(pr: argparse.ArgumentParser) -> None:
    _connection_flags(pr)
    pr.add_argument("--all", action="store_true", help="include internal and frontend references")
    pr.add_argument("--filter", action="append", default=[])
    pr.add_argument("--keep-duration", default=None, help="keep records newer than this (e.g. 24h)")
    pr.add_argument("--reserved-space", default=None, help="keep this much (e.g. 10GB)")
    pr.add_argument("--max-used-space", default=None, help="prune down to this size (e.g. 20GB)")
    pr.add_argument("--min-free-space", default=None, help="prune until this much disk is free")
    pr.add_argument("--verbose", "-v", action="store_true")


_DISK_FULL_HINT = ("; the disk holding the output is full: free some space there, or write the output "
                   "elsewhere (nothing partial was left: outputs are written atomically)")


def _fail(message: str, code: int = EXIT_ERROR) -> int:
    text = message.rstrip()
    if "no space left on device" in text.lower() or "disk quota exceeded" in text.lower():
        text += _DISK_FULL_HINT
    sys.stderr.write(f"llbkit: error: {text}\n")
    return code


def main(argv: Optional[Sequence[str]] = None) -> int:
    # gRPC's C core logs TLS and connection internals to stderr; our errors already say it all.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
    argv = list(argv) if argv is not None else sys.argv[1:]
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(first if first in _COMMANDS else None)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    handler = getattr(args, "handler", None)  # set by subcommands in their own module (push)
    if handler is None:
        from llbkit.cli import commands

        handler = {
            "build": commands.cmd_build,
            "dump-llb": commands.cmd_dump_llb,
            "workers": commands.cmd_workers,
            "du": commands.cmd_du,
            "prune": commands.cmd_prune,
        }[args.command]
    debug = bool(os.environ.get("LLBKIT_DEBUG"))
    try:
        return handler(args)
    except KeyboardInterrupt:
        return _fail("interrupted: the build was cancelled on the daemon", EXIT_INTERRUPTED)
    except LlbkitError as e:
        if debug:
            traceback.print_exc()
        return _fail(str(e))
    except BrokenPipeError:
        return EXIT_ERROR
    except OSError as e:
        if debug:
            traceback.print_exc()
        where = f" {e.filename!r}" if getattr(e, "filename", None) else ""
        return _fail(f"{e.strerror or e}{':' + where if where else ''}")
    except Exception as e:  # a bug: still one paragraph, with a way to get the traceback
        if debug:
            traceback.print_exc()
        return _fail(f"internal error: {type(e).__name__}: {e} (set LLBKIT_DEBUG=1 for a traceback "
                     "and report it)")


def run() -> NoReturn:
    """The program: :func:`main`, then exit without the interpreter's teardown. Freeing every
    module and joining non-daemon threads take tens of ms and do nothing a
    finished command needs: every file was closed (written atomically) and every session and
    channel closed before ``main`` returned; only the standard streams are left to flush."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # a closed pipe: nothing more can be said on it
        code = code or EXIT_ERROR
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
