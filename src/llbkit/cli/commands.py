"""The ``llbkit`` subcommands. Each takes the parsed arguments and returns an exit status."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from llbkit.buildkit.errors import ExportSpecError, TLSConfigError
from llbkit.errors import LlbkitError

# Each command imports what it needs where it runs: `build` the solve machinery (options, progress
# printers), and an image config, secrets or a metadata file only when its flag is given; no
# command imports `llbkit.llb` (the compiler: `build` sends the definition's bytes as buildctl
# does, and buildkitd checks the graph). `python -X importtime -m llbkit build` shows what is left.
if TYPE_CHECKING:  # pragma: no cover
    from llbkit.buildkit.client import Client
    from llbkit.buildkit.connection import TLSConfig
    from llbkit.buildkit.types import UsageRecord

__all__ = ["cmd_build", "cmd_dump_llb", "cmd_workers", "cmd_du", "cmd_prune", "parse_size", "parse_duration"]


# -- shared -----------------------------------------------------------------------------------

def _tls(args: argparse.Namespace) -> Optional[TLSConfig]:
    from llbkit.buildkit.connection import TLSConfig

    files = (args.tlscacert, args.tlscert, args.tlskey)
    if args.tlsdir:
        if any(files):
            raise TLSConfigError("give either --tlsdir or --tlscacert/--tlscert/--tlskey, not both")
        return TLSConfig.from_dir(args.tlsdir, server_name=args.tlsservername)
    if any(files):
        return TLSConfig(ca_cert=args.tlscacert, cert=args.tlscert, key=args.tlskey,
                         server_name=args.tlsservername)
    return None


def _client(args: argparse.Namespace) -> Client:
    from llbkit.buildkit.client import Client

    return Client(args.addr, tls=_tls(args), insecure=args.insecure_tcp, timeout=args.timeout)


def _read_definition(path: str) -> bytes:
    if path == "-":
        if sys.stdin.isatty():
            raise LlbkitError("no definition: pipe one to stdin (e.g. `python make_llb.py | llbkit build`) or pass a file")
        data = sys.stdin.buffer.read()
    else:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
            what = "is a directory" if isinstance(e, IsADirectoryError) else "does not exist (No such file)"
            raise LlbkitError(f"definition file {path!r} {what}: give the file holding the definition "
                              "(pb.Definition bytes, as `buildctl debug dump-llb` reads them), or - for stdin") from None
    if not data:
        raise LlbkitError(f"empty definition {'on stdin' if path == '-' else repr(path)}: nothing to build")
    return data


def _check_definition(data: bytes, path: str) -> None:
    """That ``data`` decodes as a ``pb.Definition`` whose ops decode (what buildctl checks; the
    daemon checks the graph)."""
    from google.protobuf.message import DecodeError

    from llbkit._proto import ops_pb2

    try:
        for raw in getattr(ops_pb2.Definition.FromString(data), "def"):
            ops_pb2.Op.FromString(raw)
    except DecodeError as e:
        where = "on stdin" if path == "-" else repr(path)
        raise LlbkitError(f"the definition {where} does not decode as pb.Definition ({e}): give the "
                          "bytes that `State.marshal(...).to_bytes()` or `llb.Definition` writes") from None


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?i?b?)?\s*$", re.I)
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "ki": 2**10, "kib": 2**10, "mi": 2**20, "mib": 2**20,
          "gi": 2**30, "gib": 2**30, "ti": 2**40, "tib": 2**40}


def parse_size(value: str, flag: str) -> int:
    m = _SIZE_RE.match(value)
    unit = (m.group(2) or "").lower() if m else ""
    if not m or unit not in _UNITS:
        raise LlbkitError(f"invalid {flag} {value!r}: expected a size like 500MB, 10GB or 2GiB")
    return int(float(m.group(1)) * _UNITS[unit])


_DUR_RE = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms)")


def parse_duration(value: str, flag: str) -> float:
    v = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", v):
        return float(v)
    parts = _DUR_RE.findall(v)
    if not parts or "".join(a + b for a, b in parts) != v:
        raise LlbkitError(f"invalid {flag} {value!r}: expected a duration like 48h, 30m or 1h30m")
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.2f}{unit}"
        n /= 1000.0
    return str(n)  # pragma: no cover


# -- build ------------------------------------------------------------------------------------

def parse_local(specs: List[str]) -> Dict[str, str]:
    """``--local NAME=DIR`` flags."""
    out: Dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ExportSpecError(f"invalid --local {spec!r}: expected NAME=DIR")
        if not os.path.isdir(path):
            raise ExportSpecError(f"invalid --local {spec!r}: {path!r} is not a directory")
        out[name] = path
    return out


def parse_secret(specs: List[str]) -> Dict[str, Any]:
    """``--secret id=ID,src=FILE`` / ``--secret id=ID,env=VAR`` flags (buildctl's syntax, parsed by
    :func:`llbkit.builder.secrets.parse_secret`); a ``src`` must be a file."""
    from llbkit.builder.secrets import parse_secret as parse_one

    out: Dict[str, Any] = {}
    for spec in specs:
        try:
            sid, source = parse_one(spec)
        except ValueError:
            raise ExportSpecError(
                f"invalid --secret {spec!r}: expected id=ID,src=FILE or id=ID,env=VARIABLE") from None
        if source.file is not None and not os.path.isfile(source.file):
            raise ExportSpecError(f"invalid --secret {spec!r}: {source.file!r} is not a file")
        out[sid] = source
    return out


def check_destinations(exports: List[Any], metadata_file: Optional[str]) -> None:
    """Refuse, before anything is built, a file destination whose directory does not exist (as
    buildctl does: it creates the file, never its directory). A directory destination (type=local,
    or tar=false) is created, missing parents included, as buildctl does."""
    files = [(f"--output {e.type}", e.dest) for e in exports
             if e.dest and not e.to_stdout and e.type in ("oci", "docker", "tar") and not e.is_layout_dir]
    if metadata_file:
        files.append(("--metadata-file", metadata_file))
    for flag, dest in files:
        parent = os.path.dirname(os.path.abspath(dest))
        if not os.path.isdir(parent):
            what = "is not a directory" if os.path.exists(parent) else "does not exist"
            raise ExportSpecError(f"{flag} dest={dest}: the directory {parent!r} {what}; create it "
                                  "first (`mkdir -p`), or give a destination in an existing directory")
        if os.path.isdir(dest):
            raise ExportSpecError(f"{flag} dest={dest} is a directory; give a file name (e.g. "
                                  f"{os.path.join(dest, 'image.tar')}), or tar=false for a layout directory")


def cmd_build(args: argparse.Namespace) -> int:
    from llbkit.buildkit.options import merge_opts, parse_cache_export, parse_cache_import, parse_output
    from llbkit.buildkit.progress import make_printer

    definition = _read_definition(args.definition)
    _check_definition(definition, args.definition)
    exports = [parse_output(o) for o in args.output]
    if any(e.to_stdout for e in exports):
        if sum(e.to_stdout for e in exports) > 1:
            raise ExportSpecError("only one --output can write to stdout (dest=-)")
        if args.progress == "json":
            raise ExportSpecError("--progress json writes to stdout, and so does an --output with dest=-: "
                                  "give the output a file, or use another --progress")
        if sys.stdout.isatty():
            raise ExportSpecError("an --output with dest=- writes a binary stream to stdout, which is a "
                                  "terminal: redirect it (`> image.tar`, `| tar t`) or give dest=FILE")
    check_destinations(exports, args.metadata_file)
    cache_exports = [parse_cache_export(c) for c in args.export_cache]
    cache_imports = [parse_cache_import(c) for c in args.import_cache]
    opts = merge_opts(args.opt)
    platform = opts.pop("platform", None)
    if platform is not None and "," in platform:
        raise ExportSpecError(f"invalid --opt platform={platform}: one definition is built for one platform")
    epoch_env = os.environ.get("SOURCE_DATE_EPOCH")
    source_date_epoch = None
    if epoch_env is not None and "build-arg:SOURCE_DATE_EPOCH" not in opts:
        if not epoch_env.isdigit():
            raise LlbkitError(f"invalid SOURCE_DATE_EPOCH={epoch_env!r} in the environment: expected seconds since 1970")
        source_date_epoch = int(epoch_env)
    config = None
    if args.image_config:
        with open(args.image_config, "rb") as f:
            try:
                raw = json.loads(f.read())
            except ValueError as e:
                raise LlbkitError(f"--image-config {args.image_config!r} is not JSON: {e}") from None
        if not isinstance(raw, dict):
            raise LlbkitError(f"--image-config {args.image_config!r} must hold a JSON object")
        from llbkit.oci.imageconfig import ImageConfig

        config = ImageConfig.from_dict(raw)
    if (config is not None or args.base) and platform is None:
        raise LlbkitError("an image config needs the definition's platform: add --opt platform=os/arch")

    local_dirs = parse_local(args.local)
    secrets = parse_secret(args.secret) if args.secret else {}
    printer = make_printer(args.progress)
    common: Dict[str, Any] = dict(
        exports=exports, cache_exports=cache_exports, cache_imports=cache_imports,
        frontend_attrs=opts, source_date_epoch=source_date_epoch, local_dirs=local_dirs,
        secrets=secrets, progress=printer, ref=args.ref,
    )
    with _client(args) as client:
        # buildkitd reports an unsupported platform late and obscurely: check it first
        from llbkit.buildkit.platforms import check_platforms, definition_platforms

        check_platforms(client, ([platform] if platform else []) + definition_platforms(definition))
        if config is not None or args.base or platform is not None:
            res = client.build_image(definition, platform=platform, config=config, base=args.base, **common)
        else:
            res = client.solve(definition, **common)
    if args.metadata_file:
        from llbkit.atomic import write_bytes_atomic

        write_bytes_atomic(args.metadata_file, json.dumps(res.metadata(), indent=2).encode())
    if args.progress == "json":
        sys.stdout.write(json.dumps({"type": "result", "exporter_response": res.metadata()}, sort_keys=True) + "\n")
    elif res.image_digest and args.progress != "quiet":
        sys.stderr.write(f"image digest: {res.image_digest}\n")
    return 0


# -- dump-llb ---------------------------------------------------------------------------------

def cmd_dump_llb(args: argparse.Namespace) -> int:
    from llbkit import llb

    definition = llb.load(_read_definition(args.definition))
    sys.stdout.write(llb.to_dot(definition) if args.dot else llb.dump(definition))
    return 0


# -- workers, du, prune -----------------------------------------------------------------------

def cmd_workers(args: argparse.Namespace) -> int:
    addrs = args.addr if isinstance(args.addr, list) else ([args.addr] if args.addr else [])
    if getattr(args, "pool", None) or len(addrs) > 1:
        return _pool_workers(args, addrs)
    args.addr = addrs[0] if addrs else None
    with _client(args) as client:
        workers = client.list_workers(args.filter)
    if args.format == "json":
        out = [{"id": w.id, "platforms": list(w.platforms), "labels": dict(w.labels),
                "version": {"package": w.version.package, "version": w.version.version,
                            "revision": w.version.revision},
                "gc_policy": [dict(vars(g), filters=list(g.filters)) for g in w.gc_policy]}
               for w in workers]
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return 0
    rows = [("ID", "PLATFORMS")] + [(w.id, ",".join(w.platforms)) for w in workers]
    width = max(len(r[0]) for r in rows)
    for a, b in rows:
        sys.stdout.write(f"{a:<{width}}  {b}\n")
    return 0


def _pool_workers(args: argparse.Namespace, addrs: List[str]) -> int:
    """``llbkit workers`` for a pool: one row per configured worker, checked in parallel."""
    from llbkit.buildkit.pool import WorkerConfig, WorkerPool, load_pool_config

    if args.filter:
        raise LlbkitError("--filter applies to one daemon's workers; leave it out with several --addr or --pool")
    configs = load_pool_config(args.pool) if args.pool else []
    tls = _tls(args)
    for a in addrs:
        tcp = a.startswith("tcp://")
        configs.append(WorkerConfig(a, tls=tls if tcp else None, insecure=tcp and args.insecure_tcp))
    with WorkerPool(configs, health_timeout=args.timeout) as pool:
        statuses = pool.check_all()
    rows = []
    for st in statuses:
        rows.append({
            "name": st.name, "address": st.address, "reachable": bool(st.reachable),
            "error": st.error or None, "native": st.native_platform,
            "emulated": list(st.emulated_platforms),
            "version": st.version.version if st.version else None,
        })
    if args.format == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        table = [("NAME", "ADDRESS", "NATIVE", "EMULATED", "VERSION", "STATUS")]
        for r in rows:
            status = "reachable" if r["reachable"] else f"unreachable: {r['error']}"
            table.append((r["name"] if r["name"] != r["address"] else "-", r["address"], r["native"] or "-",
                          ",".join(r["emulated"]) or "-", r["version"] or "-", status))
        widths = [max(len(row[i]) for row in table) for i in range(5)]
        for row in table:
            sys.stdout.write("  ".join(f"{c:<{widths[i]}}" for i, c in enumerate(row[:5])) + "  " + row[5] + "\n")
    return 0 if all(r["reachable"] for r in rows) else 1


def _record_json(r: UsageRecord) -> Dict[str, Any]:
    return {"id": r.id, "size": r.size, "mutable": r.mutable, "in_use": r.in_use, "shared": r.shared,
            "parents": list(r.parents), "description": r.description, "record_type": r.record_type,
            "usage_count": r.usage_count,
            "created_at": r.created_at.isoformat() if r.created_at else None,
            "last_used_at": r.last_used_at.isoformat() if r.last_used_at else None}


def _print_records(records: List[UsageRecord], verbose: bool) -> None:
    w = sys.stdout.write
    if verbose:
        for r in records:
            w(f"ID:\t\t{r.id}\n")
            if r.parents:
                w(f"Parents:\t{', '.join(r.parents)}\n")
            w(f"Created at:\t{r.created_at}\nMutable:\t{str(r.mutable).lower()}\n"
              f"Reclaimable:\t{str(not r.in_use).lower()}\nShared:\t\t{str(r.shared).lower()}\n"
              f"Size:\t\t{_human(r.size)}\n")
            if r.description:
                w(f"Description:\t{r.description}\n")
            w(f"Usage count:\t{r.usage_count}\nLast used:\t{r.last_used_at}\nType:\t\t{r.record_type}\n\n")
        return
    w(f"{'ID':<30} {'RECLAIMABLE':<12} {'SIZE':<10} LAST ACCESSED\n")
    for r in records:
        rid = r.id + ("*" if r.mutable else "")
        w(f"{rid:<30} {str(not r.in_use).lower():<12} {_human(r.size):<10} {r.last_used_at or ''}\n")


def cmd_du(args: argparse.Namespace) -> int:
    with _client(args) as client:
        records = client.disk_usage(args.filter)
    if args.format == "json":
        sys.stdout.write(json.dumps([_record_json(r) for r in records], indent=2) + "\n")
        return 0
    _print_records(records, args.verbose)
    shared = sum(r.size for r in records if r.shared)
    reclaimable = sum(r.size for r in records if not r.in_use)
    total = sum(r.size for r in records)
    sys.stdout.write(f"Shared:\t\t{_human(shared)}\nPrivate:\t{_human(total - shared)}\n"
                     f"Reclaimable:\t{_human(reclaimable)}\nTotal:\t\t{_human(total)}\n")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    kw: Dict[str, Any] = {"all": args.all, "filters": args.filter}
    if args.keep_duration:
        kw["keep_duration"] = parse_duration(args.keep_duration, "--keep-duration")
    for flag, key in (("reserved_space", "reserved_space"), ("max_used_space", "max_used_space"),
                      ("min_free_space", "min_free_space")):
        v = getattr(args, flag)
        if v:
            kw[key] = parse_size(v, "--" + flag.replace("_", "-"))
    with _client(args) as client:
        removed = client.prune(**kw)
    if args.verbose:
        _print_records(removed, True)
    sys.stdout.write(f"Total:\t{_human(sum(r.size for r in removed))}\n")
    return 0
