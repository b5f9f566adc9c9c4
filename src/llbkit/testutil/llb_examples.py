"""A catalogue of varied, solvable states with what their exported filesystems must hold.

For integration tests and benchmarks: ``catalogue(registry)`` returns :class:`Example` s that cover
every op kind and the options that change what lands on disk (modes, owners, symlinks, copies with
options, merge, diff, env/cwd/user seen by runs, cache/secret/tmpfs mounts, network none, local
and registry sources). Each example says, in words and as :class:`Expect` checks, what the export
must contain; :func:`verify_export` applies the checks to an exported directory.

Runs use ``<registry>/busybox:latest`` (e.g. ``127.0.0.1:5000``), so the registry fixture must
hold a busybox image. Most examples end on scratch with only the files they make, so their export
is small and ``exact``: nothing else may be there. Solve with the ``local_dirs`` and ``secrets``
an example lists; export with ownership preserved (as root, or as a tar) for ``uid``/``gid`` checks.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Mapping, Optional, Tuple

from llbkit.llb.constraints import Constraints
from llbkit.llb.diff import diff
from llbkit.llb.exec import bind, cache, secret, secret_env, tmpfs
from llbkit.llb.fileop import copy, mkdir, mkfile
from llbkit.llb.merge import merge
from llbkit.llb.source import image, local, scratch
from llbkit.llb.state import State

__all__ = ["Expect", "Example", "catalogue", "verify_export", "SECRET_VALUE", "SECRET_ENV_VALUE"]

SECRET_VALUE = b"llbkit-secret-value-7c1f"
"""The value to serve for secret id ``token``: it must never appear in the definition bytes."""

SECRET_ENV_VALUE = b"llbkit-env-secret-93ab"
"""The value to serve for secret id ``api-key``."""

_EPOCH_2001 = 1000000000  # a fixed, recognizable mtime (2001-09-09)


@dataclass(frozen=True)
class Expect:
    """One check on an exported path. ``kind`` is ``file``, ``dir``, ``symlink`` or ``absent``."""

    path: str
    kind: str = "file"
    content: Optional[bytes] = None
    contains: Optional[bytes] = None
    mode: Optional[int] = None
    uid: Optional[int] = None
    gid: Optional[int] = None
    target: Optional[str] = None
    mtime: Optional[int] = None


@dataclass(frozen=True)
class Example:
    name: str
    description: str
    state: State
    expect: Tuple[Expect, ...]
    #: The export holds exactly the expected paths (and their parent directories), nothing else.
    exact: bool = False
    #: Local directories to serve: name -> {relative path: content}.
    local_dirs: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict)
    #: Secrets to serve: id -> value.
    secrets: Mapping[str, bytes] = field(default_factory=dict)
    #: Checks for a second solve of the same definition (with the same buildkitd).
    expect_second_solve: Tuple[Expect, ...] = ()
    #: Entitlements the solve must allow (buildctl --allow ...).
    entitlements: Tuple[str, ...] = ()


def _f(path: str, content: bytes, mode: Optional[int] = None, **kw) -> Expect:
    return Expect(path, "file", content=content, mode=mode, **kw)


def _sh(script: str) -> List[str]:
    return ["/bin/sh", "-c", script]


def catalogue(registry: str, *, cache_namespace: str = "llbkit-test") -> List[Example]:
    """The examples, using ``<registry>/busybox:latest`` for runs.

    ``cache_namespace`` prefixes cache mount ids: pass a fresh value per test session so the
    cache example starts from an empty cache.
    """
    bb = image(f"{registry}/busybox:latest")
    out_dir = scratch()  # the empty, writable /out most runs write their results to
    ex: List[Example] = []

    def add(name: str, description: str, state: State, *expect: Expect, **kw) -> None:
        ex.append(Example(name, description, state, tuple(expect), **kw))

    # -- file actions on scratch ---------------------------------------------------------------
    add(
        "mkfile_modes",
        "Three files with exact contents and permission bits: /hello.txt (0644), /bin/tool (0755), "
        "/private (0600, empty).",
        scratch().file(
            mkfile("/hello.txt", 0o644, b"hello, llbkit\n")
            .mkdir("/bin", 0o755)
            .mkfile("/bin/tool", 0o755, b"#!/bin/sh\necho tool\n")
            .mkfile("/private", 0o600, b"")
        ),
        _f("/hello.txt", b"hello, llbkit\n", 0o644),
        Expect("/bin", "dir", mode=0o755),
        _f("/bin/tool", b"#!/bin/sh\necho tool\n", 0o755),
        _f("/private", b"", 0o600),
        exact=True,
    )
    add(
        "owners",
        "Numeric owners: /data is a 0750 directory owned by 1000:1000 holding /data/f (uid 123, "
        "gid 456, 0640, 'owned\\n'); /root-owned is 0:0.",
        scratch().file(
            mkdir("/data", 0o750, owner=(1000, 1000))
            .mkfile("/data/f", 0o640, b"owned\n", owner="123:456")
            .mkfile("/root-owned", 0o644, b"r", owner="root")
        ),
        Expect("/data", "dir", mode=0o750, uid=1000, gid=1000),
        _f("/data/f", b"owned\n", 0o640, uid=123, gid=456),
        _f("/root-owned", b"r", 0o644, uid=0, gid=0),
        exact=True,
    )
    named = bb.file(mkfile("/owned-by-nobody", 0o644, b"n\n", owner="nobody:nogroup"))
    add(
        "named_owner",
        "An owner given by name is looked up in the target image's /etc/passwd and /etc/group: "
        "/owned-by-nobody belongs to 65534:65534 (busybox's nobody:nogroup) and is copied out as is.",
        scratch().file(copy(named, "/owned-by-nobody", "/owned-by-nobody")),
        _f("/owned-by-nobody", b"n\n", 0o644, uid=65534, gid=65534),
        exact=True,
    )
    add(
        "symlinks",
        "Symlinks keep their targets verbatim: /usr/bin/run -> /opt/app/run.sh (absolute) and "
        "/opt/current -> app (relative); the target file exists with mode 0755.",
        scratch().file(
            mkdir("/opt/app", 0o755, make_parents=True)
            .mkfile("/opt/app/run.sh", 0o755, b"#!/bin/sh\n")
            .mkdir("/usr/bin", 0o755, make_parents=True)
            .symlink("/opt/app/run.sh", "/usr/bin/run")
            .symlink("app", "/opt/current")
        ),
        _f("/opt/app/run.sh", b"#!/bin/sh\n", 0o755),
        Expect("/usr/bin/run", "symlink", target="/opt/app/run.sh"),
        Expect("/opt/current", "symlink", target="app"),
        exact=True,
    )
    add(
        "mkdir_rm",
        "mkdir -p then rm: /a/b/c exists and is empty; /a/gone, /a/b/c/f and the wildcard-matched "
        "/a/x1 and /a/x2 are removed; rm of a missing path with allow_not_found succeeds.",
        scratch().file(
            mkdir("/a/b/c", 0o755, make_parents=True)
            .mkfile("/a/gone", 0o644, b"x")
            .mkfile("/a/b/c/f", 0o644, b"x")
            .mkfile("/a/x1", 0o644, b"1")
            .mkfile("/a/x2", 0o644, b"2")
            .rm("/a/gone")
            .rm("/a/b/c/f")
            .rm("/a/x*", allow_wildcard=True)
            .rm("/never-there", allow_not_found=True)
        ),
        Expect("/a/b/c", "dir", mode=0o755),
        Expect("/a/gone", "absent"),
        Expect("/a/x1", "absent"),
        exact=True,
    )
    add(
        "relative_paths",
        "Relative file-action paths resolve against the state's working directory (/srv/www): "
        "/srv/www/index.html holds '<h1>hi</h1>\\n'.",
        scratch().dir("/srv").dir("www").file(
            mkdir(".", 0o755, make_parents=True).mkfile("index.html", 0o644, b"<h1>hi</h1>\n")
        ),
        _f("/srv/www/index.html", b"<h1>hi</h1>\n", 0o644),
        exact=True,
    )

    # -- copies -----------------------------------------------------------------------------------
    tree = scratch().file(
        mkdir("/src/sub", 0o755, make_parents=True)
        .mkfile("/src/a.txt", 0o644, b"a\n")
        .mkfile("/src/b.txt", 0o644, b"b\n")
        .mkfile("/src/c.log", 0o644, b"c\n")
        .mkfile("/src/sub/d.txt", 0o644, b"d\n")
        .symlink("a.txt", "/src/link-to-a")
    )
    add(
        "copy_from_image",
        "A file copied out of the registry image into scratch, creating its parent: /etc/passwd "
        "contains busybox's root entry.",
        scratch().file(copy(bb, "/etc/passwd", "/etc/passwd", create_dest_path=True)),
        Expect("/etc/passwd", "file", contains=b"root:x:0:0:"),
        exact=True,
    )
    add(
        "copy_options",
        "Directory contents only, include *.txt (recursively) but exclude b.txt, mode forced to "
        "0600, owner 10:20, mtime 1000000000: /dst holds a.txt and sub/d.txt only.",
        scratch().file(
            copy(
                tree,
                "/src",
                "/dst",
                dir_contents_only=True,
                create_dest_path=True,
                include_patterns=["*.txt", "sub/*.txt"],
                exclude_patterns=["b.txt"],
                mode=0o600,
                owner=(10, 20),
                created_time=_EPOCH_2001,
            )
        ),
        _f("/dst/a.txt", b"a\n", 0o600, uid=10, gid=20, mtime=_EPOCH_2001),
        _f("/dst/sub/d.txt", b"d\n", 0o600, uid=10, gid=20, mtime=_EPOCH_2001),
        Expect("/dst/b.txt", "absent"),
        Expect("/dst/c.log", "absent"),
        exact=True,
    )
    add(
        "copy_wildcard",
        "Wildcard copy into a directory (/dst/ gets a.txt and b.txt); an empty wildcard match is "
        "allowed and copies nothing.",
        scratch().file(
            copy(tree, "/src/*.txt", "/dst/", allow_wildcard=True, create_dest_path=True).copy(
                tree, "/src/*.none", "/dst/", allow_wildcard=True, allow_empty_wildcard=True
            )
        ),
        _f("/dst/a.txt", b"a\n"),
        _f("/dst/b.txt", b"b\n"),
        exact=True,
    )
    add(
        "copy_follow_symlinks",
        "Copying a symlink with follow_symlinks gives a regular file with the target's content; "
        "without it the symlink itself is copied.",
        scratch().file(
            copy(tree, "/src/link-to-a", "/followed", follow_symlinks=True).copy(tree, "/src/link-to-a", "/kept")
        ),
        _f("/followed", b"a\n"),
        Expect("/kept", "symlink", target="a.txt"),
        exact=True,
    )
    chain = mkdir("/gen", 0o755).mkfile("/gen/made.txt", 0o644, b"made in the same op\n")
    add(
        "copy_from_action_chain",
        "A copy whose source is an action chain applied to another state in the same file op: "
        "/made.txt holds 'made in the same op\\n'; /gen is not in the result.",
        scratch().file(copy(chain.with_state(scratch()), "/gen/made.txt", "/made.txt")),
        _f("/made.txt", b"made in the same op\n", 0o644),
        exact=True,
    )

    # -- merge and diff --------------------------------------------------------------------------
    layer1 = scratch().file(mkfile("/shared", 0o644, b"one\n").mkfile("/only1", 0o644, b"1\n"))
    layer2 = scratch().file(mkfile("/shared", 0o644, b"two\n").mkfile("/only2", 0o644, b"2\n"))
    layer3 = scratch().file(mkdir("/dir3", 0o755).mkfile("/dir3/f", 0o644, b"3\n"))
    add(
        "merge",
        "Three layers merged in order; the later one wins on /shared ('two\\n'); /only1, /only2 "
        "and /dir3/f all present.",
        merge([layer1, layer2, layer3], custom_name="merge three layers"),
        _f("/shared", b"two\n"),
        _f("/only1", b"1\n"),
        _f("/only2", b"2\n"),
        _f("/dir3/f", b"3\n"),
        exact=True,
    )
    lower = scratch().file(mkfile("/kept", 0o644, b"k\n").mkfile("/old", 0o644, b"o\n"))
    upper = lower.file(mkfile("/new", 0o644, b"n\n").rm("/old"))
    other = scratch().file(mkfile("/other", 0o644, b"x\n"))
    add(
        "diff_merge",
        "diff(lower, upper) holds only what upper changed (/new added, /old deleted); merged onto "
        "another state it adds /new next to /other; /kept (unchanged) is not carried over.",
        merge([other, diff(lower, upper)]),
        _f("/other", b"x\n"),
        _f("/new", b"n\n"),
        Expect("/kept", "absent"),
        Expect("/old", "absent"),
        exact=True,
    )
    ran = bb.run(_sh("echo added > /added.txt"), custom_name="touch a file").root()
    add(
        "diff_of_run",
        "The diff of a busybox run holds the file the run wrote (/added.txt = 'added\\n') and "
        "none of busybox's own files.",
        diff(bb, ran),
        _f("/added.txt", b"added\n"),
        Expect("/bin/busybox", "absent"),
    )

    # -- runs ---------------------------------------------------------------------------------------
    env_run = bb.dir("/work").add_env("GREETING", "hello from env").add_env("EMPTY", "").run(
        _sh('mkdir -p /work && echo "$GREETING" > /out/env && pwd > /out/cwd && echo "${EMPTY-unset}" > /out/empty'),
        mounts=[bind("/out", out_dir)],
    )
    add(
        "run_env_cwd",
        "A run sees the state's env and working directory: /env is 'hello from env\\n', /cwd is "
        "'/work\\n', /empty is '\\n' (set but empty).",
        env_run.get_mount("/out"),
        _f("/env", b"hello from env\n"),
        _f("/cwd", b"/work\n"),
        _f("/empty", b"\n"),
        exact=True,
    )
    user_run = bb.user("nobody").run(_sh("id -u > /tmp/uid && id -g > /tmp/gid")).root()
    add(
        "run_user",
        "A run as user nobody: /uid is '65534\\n' and /gid '65534\\n'; the files it wrote belong "
        "to 65534.",
        scratch().file(copy(user_run, "/tmp/uid", "/uid").copy(user_run, "/tmp/gid", "/gid")),
        _f("/uid", b"65534\n", uid=65534),
        _f("/gid", b"65534\n", uid=65534),
        exact=True,
    )
    # A fresh value on every solve (the op ignores the cache), read by the counter below so that
    # the counter runs again. The counter itself must not ignore the cache: buildkitd empties the
    # cache mounts of an ignore_cache exec before solving it (Dockerfile's --no-cache semantics).
    stamp = bb.run(
        _sh("cat /proc/sys/kernel/random/uuid > /o/stamp"),
        mounts=[bind("/o", out_dir)],
        ignore_cache=True,
        custom_name="a fresh stamp per solve",
    ).get_mount("/o")
    counter = bb.run(
        _sh('n=$(cat /cache/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /cache/n; echo $n > /out/n'),
        mounts=[
            cache("/cache", f"{cache_namespace}-counter", sharing="locked"),
            bind("/stamp", stamp, readonly=True),
            bind("/out", out_dir),
        ],
        custom_name="count solves in a cache mount",
    )
    add(
        "cache_mount",
        "A counter kept in a cache mount: the first solve exports /n = '1\\n', a second solve of the "
        "same definition '2\\n' (the counter reads a stamp that an ignore_cache op makes anew each "
        "solve, so it runs again; the cache mount persists). The cache itself is not exported.",
        counter.get_mount("/out"),
        _f("/n", b"1\n"),
        exact=True,
        expect_second_solve=(_f("/n", b"2\n"),),
    )
    add(
        "secret_mount",
        "A secret mounted as a file: /sha256 is the sha256 of the value served for id 'token' "
        "(mode 0400 at /run/secrets/token); the value itself appears neither in the definition "
        "bytes nor in the export.",
        bb.run(
            _sh(
                "sha256sum /run/secrets/token | cut -d' ' -f1 > /out/sha256 && "
                "stat -c %a /run/secrets/token > /out/mode"
            ),
            mounts=[secret("/run/secrets/token", "token"), bind("/out", out_dir)],
        ).get_mount("/out"),
        _f("/sha256", hashlib.sha256(SECRET_VALUE).hexdigest().encode() + b"\n"),
        _f("/mode", b"400\n"),
        exact=True,
        secrets={"token": SECRET_VALUE},
    )
    add(
        "secret_env",
        "A secret exposed as env var API_KEY: /sha256 is the sha256 of the value served for id "
        "'api-key'.",
        bb.run(
            _sh('printf %s "$API_KEY" | sha256sum | cut -d" " -f1 > /out/sha256'),
            mounts=[bind("/out", out_dir)],
            secret_env=[secret_env("API_KEY", "api-key")],
        ).get_mount("/out"),
        _f("/sha256", hashlib.sha256(SECRET_ENV_VALUE).hexdigest().encode() + b"\n"),
        exact=True,
        secrets={"api-key": SECRET_ENV_VALUE},
    )
    wrote_tmpfs = bb.run(
        _sh(
            "dd if=/dev/zero of=/scratchpad/big bs=1024 count=64 2>/dev/null && "
            "awk '$2 == \"/scratchpad\" {print $3}' /proc/mounts > /out/fstype"
        ),
        mounts=[tmpfs("/scratchpad", size=8 << 20), bind("/out", out_dir)],
    )
    after_tmpfs = wrote_tmpfs.root().run(
        _sh("if [ -e /scratchpad/big ]; then echo yes; else echo no; fi > /out/leaked"),
        mounts=[bind("/out", out_dir)],
    )
    add(
        "tmpfs",
        "A tmpfs mount: /fstype is 'tmpfs\\n'; what the run wrote into the tmpfs is not in its "
        "result, so a later run finds no /scratchpad/big (/leaked is 'no\\n').",
        merge([wrote_tmpfs.get_mount("/out"), after_tmpfs.get_mount("/out")]),
        _f("/fstype", b"tmpfs\n"),
        _f("/leaked", b"no\n"),
        exact=True,
    )
    # Asks the registry's /v2/ over plain HTTP with nc (busybox's wget can crash on a static build,
    # which would make "unreachable" prove nothing; network_host_control is the control).
    reg_host, _, reg_port = registry.rpartition(":")
    probe = (
        f"printf 'GET /v2/ HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {reg_host} {reg_port or 80} 2>/dev/null "
        "| grep -q '^HTTP/1'"
    )
    add(
        "network_none",
        f"A run with network none cannot reach the registry at {registry}: /result is "
        "'unreachable\\n' (only loopback exists; the run itself succeeds).",
        bb.network("none").run(
            _sh(
                f"if {probe}; then echo reachable; else echo unreachable; fi > /out/result; "
                "ls /sys/class/net > /out/interfaces"
            ),
            mounts=[bind("/out", out_dir)],
            ignore_cache=True,
        ).get_mount("/out"),
        _f("/result", b"unreachable\n"),
        _f("/interfaces", b"lo\n"),
        exact=True,
    )
    add(
        "network_host_control",
        f"Control for network_none: with network host the registry at {registry} answers "
        "(/result is 'reachable\\n'). Needs the network.host entitlement.",
        bb.network("host").run(
            _sh(f"if {probe}; then echo reachable; else echo unreachable; fi > /out/result"),
            mounts=[bind("/out", out_dir)],
            ignore_cache=True,
        ).get_mount("/out"),
        _f("/result", b"reachable\n"),
        exact=True,
        entitlements=("network.host",),
    )
    add(
        "readonly_rootfs",
        "With a read-only root the run can't write to / but can write to its /out mount: /result "
        "is 'readonly\\n'.",
        bb.run(
            _sh("if touch /probe 2>/dev/null; then echo writable; else echo readonly; fi > /out/result"),
            mounts=[bind("/out", out_dir)],
            readonly_rootfs=True,
        ).get_mount("/out"),
        _f("/result", b"readonly\n"),
        exact=True,
    )
    data = scratch().file(mkdir("/sub", 0o755).mkfile("/sub/f", 0o644, b"selected\n").mkfile("/top", 0o644, b"t"))
    add(
        "bind_readonly_selector",
        "A read-only bind mount of a subdirectory (selector /sub) at /in: the run sees only f "
        "('selected\\n'), not top; /listing is 'f\\n'.",
        bb.run(
            _sh("cat /in/f > /out/f && ls /in > /out/listing"),
            mounts=[bind("/in", data, selector="/sub", readonly=True), bind("/out", out_dir)],
        ).get_mount("/out"),
        _f("/f", b"selected\n"),
        _f("/listing", b"f\n"),
        exact=True,
    )
    add(
        "hostname_extra_hosts_exit_codes",
        "A run with hostname llbkit-builder and an extra host registry.test -> 10.1.2.3 that exits 3, "
        "which valid_exit_codes accepts: /hostname is 'llbkit-builder\\n', /hosts contains "
        "'10.1.2.3'.",
        bb.hostname("llbkit-builder").add_extra_host("registry.test", "10.1.2.3").run(
            _sh("hostname > /out/hostname; grep registry.test /etc/hosts > /out/hosts; exit 3"),
            mounts=[bind("/out", out_dir)],
            valid_exit_codes=[0, 3],
        ).get_mount("/out"),
        _f("/hostname", b"llbkit-builder\n"),
        Expect("/hosts", contains=b"10.1.2.3"),
        exact=True,
    )

    # -- sources ------------------------------------------------------------------------------------
    add(
        "image_file",
        "The busybox binary copied out of the registry image keeps its executable mode.",
        scratch().file(copy(bb, "/bin/busybox", "/busybox")),
        Expect("/busybox", "file", mode=0o755),
        exact=True,
    )
    ctx = local(
        "context",
        include_patterns=["src", "README.md"],
        exclude_patterns=["**/*.pyc"],
        shared_key_hint="examples-context",
    )
    add(
        "local_source",
        "A local directory 'context' sent by the client, filtered by include/exclude patterns: "
        "/app/src/main.py and /app/README.md arrive, src/cache.pyc and notes.txt do not.",
        scratch().file(copy(ctx, "/", "/app", create_dest_path=True, dir_contents_only=True)),
        _f("/app/src/main.py", b"print('hi')\n"),
        _f("/app/README.md", b"# demo\n"),
        Expect("/app/src/cache.pyc", "absent"),
        Expect("/app/notes.txt", "absent"),
        exact=True,
        local_dirs={
            "context": {
                "src/main.py": b"print('hi')\n",
                "src/cache.pyc": b"\x00pyc",
                "README.md": b"# demo\n",
                "notes.txt": b"not included\n",
            }
        },
    )
    add(
        "constraints_metadata",
        "Op metadata does not change results: a progress-grouped, custom-named mkfile gives "
        "/meta.txt = 'metadata only\\n'.",
        scratch().file(
            mkfile("/meta.txt", 0o644, b"metadata only\n"),
            custom_name="write meta.txt",
            constraints=Constraints.of(description={"com.example.note": "hello"}),
        ),
        _f("/meta.txt", b"metadata only\n"),
        exact=True,
    )
    return ex


# -- checking an export ------------------------------------------------------------------------------


def _parents(path: str) -> List[str]:
    parts = path.strip("/").split("/")
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]


def verify_export(
    example: Example, root: os.PathLike, *, second_solve: bool = False, check_owners: bool = True
) -> List[str]:
    """Problems found in ``root`` (an exported filesystem) against the example; empty if none."""
    base = Path(root)
    problems: List[str] = []
    expects = example.expect_second_solve if second_solve else example.expect
    for e in expects:
        p = base / e.path.lstrip("/")
        where = f"{example.name}: {e.path}"
        if e.kind == "absent":
            if os.path.lexists(p):
                problems.append(f"{where}: should not exist")
            continue
        if not os.path.lexists(p):
            problems.append(f"{where}: missing")
            continue
        st = os.lstat(p)
        kinds = {"file": stat.S_ISREG, "dir": stat.S_ISDIR, "symlink": stat.S_ISLNK}
        if not kinds[e.kind](st.st_mode):
            problems.append(f"{where}: is not a {e.kind}")
            continue
        if e.kind == "symlink" and e.target is not None and os.readlink(p) != e.target:
            problems.append(f"{where}: points to {os.readlink(p)!r}, want {e.target!r}")
        if e.kind == "file":
            data = p.read_bytes()
            if e.content is not None and data != e.content:
                problems.append(f"{where}: content {data[:200]!r}, want {e.content!r}")
            if e.contains is not None and e.contains not in data:
                problems.append(f"{where}: does not contain {e.contains!r}")
        if e.mode is not None and stat.S_IMODE(st.st_mode) != e.mode:
            problems.append(f"{where}: mode {oct(stat.S_IMODE(st.st_mode))}, want {oct(e.mode)}")
        if check_owners and e.uid is not None and st.st_uid != e.uid:
            problems.append(f"{where}: uid {st.st_uid}, want {e.uid}")
        if check_owners and e.gid is not None and st.st_gid != e.gid:
            problems.append(f"{where}: gid {st.st_gid}, want {e.gid}")
        if e.mtime is not None and int(st.st_mtime) != e.mtime:
            problems.append(f"{where}: mtime {int(st.st_mtime)}, want {e.mtime}")
    if example.exact and not second_solve:
        allowed = set()
        for e in expects:
            if e.kind != "absent":
                allowed.add(e.path)
                allowed.update(_parents(e.path))
        found = set()
        for dirpath, dirnames, filenames in os.walk(base):
            for name in dirnames + filenames:
                rel = "/" + os.path.relpath(os.path.join(dirpath, name), base).replace(os.sep, "/")
                found.add(rel)
        for extra in sorted(found - allowed):
            problems.append(f"{example.name}: unexpected {extra}")
    return problems
