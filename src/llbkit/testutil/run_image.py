"""Run a packaged image's command with runc and return what it printed.

``run_image("dist/testprojects/hello/hello.oci.tar", "linux/amd64")`` picks the platform's
manifest from the OCI layout's index, unpacks its layers (whiteouts applied, see
:mod:`llbkit.testutil.rootfs`) into a private bundle dir, writes runc's ``config.json`` from the
image config (Entrypoint + Cmd, Env, WorkingDir, User) and runs it with ``runc run`` under a
unique container id and its own ``--root`` state dir; the container and the bundle are deleted
afterwards. Non-native platforms run under binfmt emulation (qemu-user-static with flag F), so
an arm64 image runs on an amd64 host. Needs root, as runc does without a rootless set-up.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from llbkit.oci.layout import OCILayout, read_json
from llbkit.oci.types import INDEX_TYPES, Descriptor
from llbkit.platforms import find_platform, normalize_platform, parse_platform
from llbkit.testutil.errors import FixtureError
from llbkit.testutil.procs import make_temp_dir, remove_tree
from llbkit.testutil.rootfs import apply_layer
from llbkit.testutil.tools import check_arm64_emulation, find_tool

_LAYER_SUFFIXES = ("tar", "tar+gzip")
_ids = itertools.count()
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class RunResult:
    argv: Tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> "RunResult":
        """Self, or :class:`FixtureError` with the output when the command failed."""
        if self.returncode != 0:
            raise FixtureError(f"{list(self.argv)} exited with code {self.returncode}\n"
                               f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}")
        return self


def select_manifest(layout: OCILayout, platform: str) -> Descriptor:
    """The manifest for ``platform`` (``os/arch[/variant]``) of the one image the layout holds."""
    roots = list({d.digest: d for d in layout.manifests}.values())
    if len(roots) != 1:
        raise FixtureError(f"{layout.describe()}: index.json names {len(roots)} images, expected one")
    root = roots[0]
    if root.media_type not in INDEX_TYPES:
        return root  # a single-platform image
    candidates = [Descriptor.from_dict(d, f"{layout.describe()} index")
                  for d in read_json(layout, root).get("manifests", [])]
    found = find_platform(platform, [d.platform for d in candidates])
    if found is not None:
        return candidates[found]
    have = [str(normalize_platform(d.platform)) for d in candidates if d.platform]
    raise FixtureError(f"{layout.describe()} has no {platform} image (it has: {', '.join(have)})")


def _lookup(path: Path, key: str, by_index: int) -> Optional[List[str]]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split(":")
        if len(fields) > by_index and fields[0] == key:
            return fields
    return None


def resolve_user(rootfs: Path, user: str) -> Tuple[int, int, str]:
    """``(uid, gid, home)`` for an image config's ``User`` (``name``, ``uid``, ``x:group``)."""
    name, _, group = (user or "0").partition(":")
    home = "/root" if name in ("0", "root") else "/"
    if name.isdigit():
        uid, gid = int(name), 0
        entry = next((e for e in _passwd(rootfs) if e[2] == name), None)
        if entry:
            gid, home = int(entry[3]), entry[5]
    else:
        entry = _lookup(rootfs / "etc/passwd", name, 6)
        if entry is None:
            raise FixtureError(f"user {name!r} is not in the image's /etc/passwd")
        uid, gid, home = int(entry[2]), int(entry[3]), entry[5]
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            g = _lookup(rootfs / "etc/group", group, 2)
            if g is None:
                raise FixtureError(f"group {group!r} is not in the image's /etc/group")
            gid = int(g[2])
    return uid, gid, home


def _passwd(rootfs: Path) -> List[List[str]]:
    try:
        return [ln.split(":") for ln in (rootfs / "etc/passwd").read_text().splitlines()
                if ln.count(":") >= 6]
    except OSError:
        return []


def runc_config(spec: Dict[str, Any], image_config: Mapping[str, Any], rootfs: Path,
                args: Optional[Sequence[str]] = None, env: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """``runc spec``'s default config, set up to run the image's command."""
    cfg = image_config.get("config") or {}
    argv = list(cfg.get("Entrypoint") or []) + list(args if args is not None else (cfg.get("Cmd") or []))
    if not argv:
        raise FixtureError("the image has neither Entrypoint nor Cmd: nothing to run")
    uid, gid, home = resolve_user(rootfs, cfg.get("User") or "")
    envs = list(cfg.get("Env") or [])
    names = {e.split("=", 1)[0] for e in envs}
    if "PATH" not in names:
        envs.insert(0, DEFAULT_PATH)
    if "HOME" not in names:
        envs.append(f"HOME={home}")  # as Docker does
    for k, v in (env or {}).items():
        envs = [e for e in envs if e.split("=", 1)[0] != k] + [f"{k}={v}"]
    spec = json.loads(json.dumps(spec))
    spec["root"] = {"path": "rootfs", "readonly": False}
    spec["hostname"] = "llbkit-run"
    proc = spec["process"]
    proc.update({"terminal": False, "args": argv, "env": envs,
                 "cwd": cfg.get("WorkingDir") or "/", "user": {"uid": uid, "gid": gid}})
    return spec


def _layers(layout: OCILayout, manifest: Descriptor) -> Tuple[List[Descriptor], Dict[str, Any]]:
    m = read_json(layout, manifest)
    config = read_json(layout, Descriptor.from_dict(m["config"], "manifest config"))
    layers = [Descriptor.from_dict(d, f"manifest layers[{i}]") for i, d in enumerate(m.get("layers", []))]
    for layer in layers:
        if layer.media_type.rsplit(".", 1)[-1] not in _LAYER_SUFFIXES and \
                "rootfs.diff.tar" not in layer.media_type:
            raise FixtureError(f"layer {layer.digest} has media type {layer.media_type}: only "
                               "uncompressed and gzip layers can be unpacked here")
    return layers, config


def run_image(
    image: Union[str, Path],
    platform: str = "linux/amd64",
    *,
    args: Optional[Sequence[str]] = None,
    env: Optional[Mapping[str, str]] = None,
    timeout: float = 120.0,
) -> RunResult:
    """Run the image's command (``args`` replaces its Cmd) and return its exit code and output."""
    if parse_platform(platform).architecture == "arm64":
        check_arm64_emulation()
    runc = find_tool("runc")
    bundle = make_temp_dir("run")
    container = f"llbkit-run-{os.getpid()}-{next(_ids)}-{bundle.name[-8:]}"
    state = bundle / "state"
    try:
        rootfs = bundle / "rootfs"
        rootfs.mkdir()
        with OCILayout(image) as layout:
            layers, image_config = _layers(layout, select_manifest(layout, platform))
            for layer in layers:
                with layout.open_blob(layer) as blob:
                    apply_layer(blob, rootfs)  # type: ignore[arg-type]
        spec_out = subprocess.run([str(runc), "spec", "--bundle", str(bundle)], capture_output=True, text=True)
        if spec_out.returncode != 0:
            raise FixtureError(f"runc spec failed: {spec_out.stderr.strip()}")
        spec = json.loads((bundle / "config.json").read_text())
        config = runc_config(spec, image_config, rootfs, args, env)
        (bundle / "config.json").write_text(json.dumps(config, indent=1))
        argv = [str(runc), "--root", str(state), "run", "--bundle", str(bundle), container]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise FixtureError(f"{image} ({platform}) did not finish within {timeout:g}s; "
                               f"stdout so far: {e.stdout!r}") from None
        return RunResult(tuple(config["process"]["args"]), proc.returncode, proc.stdout, proc.stderr)
    finally:
        if state.exists():
            subprocess.run([str(runc), "--root", str(state), "delete", "--force", container],
                           capture_output=True)
        remove_tree(bundle)
