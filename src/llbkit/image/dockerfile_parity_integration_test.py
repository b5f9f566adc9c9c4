"""Lowered specs against BuildKit's own Dockerfile frontend, the oracle of Docker semantics.

Each test builds an :class:`ImageSpec` and the equivalent Dockerfile on the same fixture daemon
(``buildctl build`` of our definition; ``buildctl build --frontend dockerfile.v0`` of the
Dockerfile) and compares the root filesystems (paths, types, modes, owners, contents, symlink
targets; not mtimes) and the image configs (Env, User, WorkingDir, Entrypoint, Cmd, OnBuild...).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tarfile
import urllib.request
from pathlib import Path
from typing import Any, Dict, Mapping, Tuple

import pytest

from llbkit.image import (
    ContextSource,
    CopyStep,
    EnvStep,
    ImageSource,
    ImageSpec,
    ImageSpecError,
    Lowered,
    RegistryBase,
    ResolvedBase,
    RunStep,
    UserStep,
    WorkdirStep,
    lower,
)
from llbkit.testutil.buildkitd import Buildkitd
from llbkit.testutil.registry import Registry

PLATFORM = "linux/amd64"
CONFIG_KEYS = ("Env", "User", "WorkingDir", "Entrypoint", "Cmd", "OnBuild", "ExposedPorts", "Volumes", "Labels")
MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])

Tree = Dict[str, Tuple[Any, ...]]


def _get(url: str, accept: str = "*/*") -> Tuple[bytes, str]:
    req = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - the local fixture registry
        return resp.read(), resp.headers.get("Docker-Content-Digest", "")


def resolve(registry: Registry, repo: str, tag: str) -> Tuple[ResolvedBase, str]:
    """The linux/amd64 config of ``repo:tag`` and the digest the tag names."""
    top, digest = _get(f"{registry.url}/v2/{repo}/manifests/{tag}", MANIFEST_TYPES)
    manifest = json.loads(top)
    if "manifests" in manifest:
        (desc,) = [m for m in manifest["manifests"] if m.get("platform", {}).get("architecture") == "amd64"]
        manifest = json.loads(_get(f"{registry.url}/v2/{repo}/manifests/{desc['digest']}", MANIFEST_TYPES)[0])
    config, _ = _get(f"{registry.url}/v2/{repo}/blobs/{manifest['config']['digest']}")
    return ResolvedBase(config), digest


def tree_of(tar_path: Path) -> Tree:
    """Every entry of an exported root filesystem: type, mode, owner, content hash, link target."""
    out: Tree = {}
    with tarfile.open(tar_path) as tf:
        for m in tf.getmembers():
            name = "/" + m.name.lstrip("./").rstrip("/")
            content = hashlib.sha256(tf.extractfile(m).read()).hexdigest()[:12] if m.isfile() else ""
            out[name] = (m.type.decode(), oct(m.mode), m.uid, m.gid, content, m.linkname)
    return out


def _oci_config(oci_tar: Path) -> Dict[str, Any]:
    with tarfile.open(oci_tar) as tf:
        def blob(digest: str) -> Dict[str, Any]:
            return json.loads(tf.extractfile("blobs/sha256/" + digest.split(":", 1)[1]).read())
        index = json.loads(tf.extractfile("index.json").read())
        desc = index["manifests"][0]
        manifest = blob(desc["digest"])
        if "manifests" in manifest:
            manifest = blob(manifest["manifests"][0]["digest"])
        return blob(manifest["config"]["digest"])


def config_view(config: Mapping[str, Any]) -> Dict[str, Any]:
    cfg = config.get("config") or {}
    return {k: cfg.get(k) or None for k in CONFIG_KEYS}


def build_ours(daemon: Buildkitd, lowered: Lowered, context: Path, out: Path) -> Tuple[Tree, Dict[str, Any]]:
    tar_path = out / "ours.tar"
    argv = [str(daemon.buildctl_bin), *daemon.client_args(), "--timeout", "5", "build", "--progress=plain",
            "--local", f"context={context}", "--output", f"type=tar,dest={tar_path}"]
    res = subprocess.run(argv, input=lowered.definition.to_bytes(), capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-4000:]
    return tree_of(tar_path), config_view(lowered.oci_config())


def build_dockerfile(daemon: Buildkitd, dockerfile: str, context: Path, out: Path) -> Tuple[Tree, Dict[str, Any]]:
    ddir = out / "dockerfile"
    ddir.mkdir(parents=True)
    (ddir / "Dockerfile").write_text(dockerfile)
    tar_path, oci_path = out / "theirs.tar", out / "theirs.oci.tar"
    daemon.build_dockerfile(context, dockerfile_dir=ddir, platform=PLATFORM,
                            outputs=[f"type=tar,dest={tar_path}"])
    daemon.build_dockerfile(context, dockerfile_dir=ddir, platform=PLATFORM,
                            outputs=[f"type=oci,dest={oci_path}"])
    return tree_of(tar_path), config_view(_oci_config(oci_path))


def assert_same(ours: Tuple[Tree, Dict[str, Any]], theirs: Tuple[Tree, Dict[str, Any]]) -> None:
    (our_tree, our_cfg), (their_tree, their_cfg) = ours, theirs
    diff = {p: (our_tree.get(p), their_tree.get(p)) for p in sorted(set(our_tree) | set(their_tree))
            if our_tree.get(p) != their_tree.get(p)}
    assert diff == {}, "root filesystems differ (ours, dockerfile's):\n" + "\n".join(f"{p}: {d}" for p, d in diff.items())
    assert our_cfg == their_cfg


def write(root: Path, files: Mapping[str, Tuple[bytes, int]], dir_mode: int = 0o755) -> Path:
    for rel, (data, mode) in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.chmod(p, mode)
    for d, _, _ in os.walk(root):
        os.chmod(d, dir_mode)
    return root


def test_env_expansion_and_ordered_user_and_workdir(registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path) -> None:
    """ENV expands $PATH against the base's env; USER/WORKDIR between steps: root makes the user,
    later steps and the config run as it; the workdir is created owned by it; --chmod=$VAR."""
    context = write(tmp_path / "ctx", {"hello.txt": (b"hello\n", 0o644)})
    dockerfile = f"""FROM {registry.busybox_ref}
ENV PATH="/opt/bin:$PATH" APP="app"
ENV HOME_DIR="/home/${{APP}}" UNSET="${{NOPE:-fallback}}" PLUS="${{APP:+yes}}" NONE="${{NOPE:+no}}"
RUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group
USER $APP
WORKDIR ${{HOME_DIR}}/work
COPY hello.txt $HOME_DIR/
COPY --chown=$APP:$APP hello.txt /chowned/
ENV FMODE="0640" SYM="u+x"
COPY --chmod=$FMODE hello.txt /modes/
COPY --chmod=${{SYM}} hello.txt /symmodes/
RUN echo "$PATH $(id -u) $(pwd)" > out.txt
USER root
WORKDIR sub
RUN id -u > uid.txt
USER app:app
"""
    spec = ImageSpec(
        name="//parity:env", base=RegistryBase(registry.busybox_ref),
        env={"PATH": "/opt/bin:$PATH", "APP": "app"},
        steps=(
            EnvStep({"HOME_DIR": "/home/${APP}", "UNSET": "${NOPE:-fallback}", "PLUS": "${APP:+yes}",
                     "NONE": "${NOPE:+no}"}),
            RunStep("echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group"),
            UserStep("$APP"),
            WorkdirStep("${HOME_DIR}/work"),
            CopyStep(ContextSource("context", "hello.txt", files=(("", False),)), "$HOME_DIR/"),
            CopyStep(ContextSource("context", "hello.txt", files=(("", False),)), "/chowned/", chown="$APP:$APP"),
            EnvStep({"FMODE": "0640", "SYM": "u+x"}),
            CopyStep(ContextSource("context", "hello.txt", files=(("", False),)), "/modes/", chmod="$FMODE"),
            CopyStep(ContextSource("context", "hello.txt", files=(("", False),)), "/symmodes/", chmod="${SYM}"),
            RunStep('echo "$PATH $(id -u) $(pwd)" > out.txt'),
            UserStep("root"),
            WorkdirStep("sub"),
            RunStep("id -u > uid.txt"),
            UserStep("app:app"),
        ),
    )
    cfg, _ = resolve(registry, "busybox", "latest")
    lowered = lower(spec, PLATFORM, base_configs={registry.busybox_ref: cfg}, context_digest="sha256:parity-env")
    ours = build_ours(buildkitd_amd64, lowered, context, tmp_path)
    theirs = build_dockerfile(buildkitd_amd64, dockerfile, context, tmp_path)
    assert_same(ours, theirs)
    tree, config = ours
    assert tree["/home/app/work"][2:4] == (1000, 1000)  # WORKDIR made for the user in effect
    assert tree["/chowned/hello.txt"][2:4] == (1000, 1000)
    assert tree["/modes/hello.txt"][1] == oct(0o640) and tree["/symmodes/hello.txt"][1] == oct(0o744)  # --chmod=$VAR
    assert config["User"] == "app:app" and config["WorkingDir"] == "/home/app/work/sub"
    assert "PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in config["Env"]


def _mode_files(big: int) -> Dict[str, Tuple[bytes, int]]:
    return {
        "tree/a.txt": (b"a\n", 0o644),
        "tree/run.sh": (b"#!/bin/sh\necho run\n", 0o755),
        "tree/sub/big.bin": (b"x" * big, 0o644),
        "tree/sub/bigtool": (b"y" * big, 0o755),
    }


def test_file_modes_symlinks_and_chmod(registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path) -> None:
    """Copied modes come from the executable bit alone (the staging dir has Pants' leaks: 0555
    large files, odd directory modes); symlinks stay symlinks; chmod octal and symbolic, and
    the parent directories a copy creates, as the frontend does them."""
    big = 600 * 1024
    theirs_ctx = write(tmp_path / "theirs-ctx", _mode_files(big))
    staged = {k: (v[0], 0o555 if len(v[0]) >= 512 * 1024 else (0o600 if v[1] == 0o644 else 0o700))
              for k, v in _mode_files(big).items()}
    ours_ctx = write(tmp_path / "ours-ctx", staged, dir_mode=0o700)
    for ctx in (theirs_ctx, ours_ctx):
        os.symlink("a.txt", ctx / "tree/link")
        os.symlink("../run.sh", ctx / "tree/sub/up")
    files = tuple((p[len("tree/"):], m == 0o755) for p, (_, m) in _mode_files(big).items())
    dockerfile = f"""FROM {registry.busybox_ref}
COPY tree /tree/
COPY --chmod=u+x,go-w tree /sym/
COPY --chmod=a=rX tree/a.txt /symfile/deep/
COPY --chmod=0640 tree/a.txt /deep/er/
COPY --chmod=0750 tree /oct/x/
COPY --chown=1000:1000 tree/run.sh /owned/
"""

    def src(path: str) -> ContextSource:
        if path == "tree":
            return ContextSource("context", path, files=files)
        return ContextSource("context", path, files=(("", dict(files)[path[len('tree/'):]]),))

    spec = ImageSpec(
        name="//parity:modes", base=RegistryBase(registry.busybox_ref),
        steps=(
            CopyStep(src("tree"), "/tree/"),
            CopyStep(src("tree"), "/sym/", chmod="u+x,go-w"),
            CopyStep(src("tree/a.txt"), "/symfile/deep/", chmod="a=rX"),
            CopyStep(src("tree/a.txt"), "/deep/er/", chmod="0640"),
            CopyStep(src("tree"), "/oct/x/", chmod=0o750),
            CopyStep(src("tree/run.sh"), "/owned/", chown="1000:1000"),
        ),
    )
    cfg, _ = resolve(registry, "busybox", "latest")
    lowered = lower(spec, PLATFORM, base_configs={registry.busybox_ref: cfg}, context_digest="sha256:parity-modes")
    ours = build_ours(buildkitd_amd64, lowered, ours_ctx, tmp_path)
    theirs = build_dockerfile(buildkitd_amd64, dockerfile, theirs_ctx, tmp_path)
    assert_same(ours, theirs)
    tree = ours[0]
    assert tree["/tree/sub/big.bin"][1] == oct(0o644) and tree["/tree/sub/bigtool"][1] == oct(0o755)
    assert tree["/tree/sub"][1] == oct(0o755)
    assert tree["/tree/link"][0] == tarfile.SYMTYPE.decode() and tree["/tree/link"][5] == "a.txt"
    assert tree["/deep/er"][1] == oct(0o640)  # BuildKit's rule: an octal chmod's parents get it


def test_context_modes_are_kept_without_file_list(registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path) -> None:
    """A library user sending a real directory (no ``files``) gets its modes, as Docker does."""
    ctx = write(tmp_path / "ctx", {"t/a": (b"a", 0o600), "t/b": (b"b", 0o751)}, dir_mode=0o750)
    spec = ImageSpec(name="//parity:keep", base=RegistryBase(registry.busybox_ref),
                     steps=(CopyStep(ContextSource("context", "t"), "/t/"),))
    cfg, _ = resolve(registry, "busybox", "latest")
    lowered = lower(spec, PLATFORM, base_configs={registry.busybox_ref: cfg}, context_digest="sha256:parity-keep")
    assert_same(build_ours(buildkitd_amd64, lowered, ctx, tmp_path),
                build_dockerfile(buildkitd_amd64, f"FROM {registry.busybox_ref}\nCOPY t /t/\n", ctx, tmp_path))


def test_multi_stage_copies_and_onbuild(registry: Registry, buildkitd_amd64: Buildkitd, tmp_path: Path) -> None:
    """COPY --from another image (composed in LLB) and from a registry image pinned by digest;
    a base's ONBUILD triggers are cleared in the child's config."""
    ctx = write(tmp_path / "ctx", {"x": (b"x", 0o644)})
    onbuild_dir = tmp_path / "onbuild"
    onbuild_dir.mkdir()
    (onbuild_dir / "Dockerfile").write_text(f"FROM {registry.busybox_ref}\nONBUILD RUN true\nCMD [\"sh\", \"-c\", \"true\"]\n")
    onbuild_ref = registry.ref("onbuild", "latest")
    buildkitd_amd64.build_dockerfile(ctx, dockerfile_dir=onbuild_dir, platform=PLATFORM,
                                     outputs=[f"type=image,name={onbuild_ref},push=true"])
    onbuild_cfg, _ = resolve(registry, "onbuild", "latest")
    assert json.loads(onbuild_cfg.config)["config"]["OnBuild"] == ["RUN true"]
    _, busybox_digest = resolve(registry, "busybox", "latest")
    pinned = f"{registry.busybox_ref.rsplit(':', 1)[0]}@{busybox_digest}"
    dockerfile = f"""FROM {registry.busybox_ref} AS builder
RUN mkdir -p /out/lib && echo built > /out/app && chmod 0750 /out/app && chown 1000:1000 /out/app && ln -s ../app /out/lib/app
FROM {onbuild_ref}
COPY --from=builder /out/ /app/
COPY --from=builder /out/app /bin2/app2
COPY --from={pinned} /bin/busybox /pinned/
"""
    builder = ImageSpec(name="//parity:builder", base=RegistryBase(registry.busybox_ref), steps=(
        RunStep("mkdir -p /out/lib && echo built > /out/app && chmod 0750 /out/app && chown 1000:1000 /out/app"
                " && ln -s ../app /out/lib/app"),))
    spec = ImageSpec(name="//parity:final", base=RegistryBase(onbuild_ref), steps=(
        CopyStep(ImageSource(builder, "/out/"), "/app/"),
        CopyStep(ImageSource(builder, "/out/app"), "/bin2/app2"),
        CopyStep(ImageSource(pinned, "/bin/busybox"), "/pinned/"),
    ))
    busybox_cfg, _ = resolve(registry, "busybox", "latest")
    lowered = lower(spec, PLATFORM, base_configs={registry.busybox_ref: busybox_cfg, onbuild_ref: onbuild_cfg},
                    context_digest="sha256:parity-stages")
    ours = build_ours(buildkitd_amd64, lowered, ctx, tmp_path)
    theirs = build_dockerfile(buildkitd_amd64, dockerfile, ctx, tmp_path)
    # A documented difference: the frontend runs the base's trigger (`RUN true`, whose run leaves
    # the mount points /dev, /proc and /sys); llbkit does not run triggers. Both clear them.
    for mount_point in ("/dev", "/proc", "/sys"):
        assert theirs[0].pop(mount_point)[0] == tarfile.DIRTYPE.decode() and mount_point not in ours[0]
    assert_same(ours, theirs)
    assert ours[0]["/app/app"][1:4] == (oct(0o750), 1000, 1000)  # owners kept from the image
    assert ours[1]["OnBuild"] is None and ours[1]["Cmd"] == ["sh", "-c", "true"]


def test_copy_from_a_registry_image_needs_a_digest(registry: Registry) -> None:
    spec = ImageSpec(name="//parity:tag", base=RegistryBase(registry.busybox_ref),
                     steps=(CopyStep(ImageSource(registry.busybox_ref, "/bin/busybox"), "/x/"),))
    with pytest.raises(ImageSpecError) as e:
        lower(spec, PLATFORM, base_configs={registry.busybox_ref: {"config": {}}})
    assert e.value.field == "steps[0].source.image" and "pinned by digest" in str(e.value)
