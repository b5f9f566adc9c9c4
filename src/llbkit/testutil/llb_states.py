"""States shared by several llb test modules (not part of the public API).

``golden_states()`` are the twins of the states testdata/go_client_llb/main.go marshals with Go's
client/llb; ``odd_states()`` stress the JSON encoding of dump().
"""

from __future__ import annotations

import datetime as dt

from llbkit import llb

BB = llb.image("busybox")

T = dt.datetime.fromtimestamp(1700000000, dt.timezone.utc) + dt.timedelta(microseconds=123456)
D64 = "0123456789abcdef" * 4


def golden_states():
    out = {}
    busybox = llb.image("busybox")
    out["image_run"] = busybox.run("echo hi").root()
    out["file_chain"] = llb.scratch().dir("/work").file(
        llb.mkdir("/app", 0o755, make_parents=True, owner=(1000, 1000))
        .mkfile("hello.txt", 0o644, b"hello <world> & co\n", owner="app:staff", created_time=T)
        .mkfile("/app/x", 0o600, b"", owner="root")
        .symlink("/app/x", "/app/link")
        .rm("/tmp/*", allow_wildcard=True, allow_not_found=True),
        custom_name="make files",
    )
    out["copy_opts"] = llb.scratch().file(
        llb.copy(
            busybox.dir("/etc"),
            "passwd",
            "/out/",
            mode=0o640,
            follow_symlinks=True,
            dir_contents_only=True,
            attempt_unpack=True,
            create_dest_path=True,
            allow_wildcard=True,
            allow_empty_wildcard=True,
            include_patterns=["*.conf", "a&b"],
            exclude_patterns=["secret*"],
            owner=(1, "wheel"),
            created_time=T,
            always_replace_existing_dest_paths=True,
        )
    )
    out["copy_modestr"] = llb.scratch().file(llb.copy(busybox, "/bin/sh", "/sh", mode="u+x,go-w"), custom_name="c")
    data = llb.scratch().file(llb.mkfile("/d", 0o644, b"d"))
    es = (
        busybox.dir("/src")
        .user("nobody")
        .add_env("A", "1")
        .add_env("B", "2")
        .add_env("A", "3")
        .network("none")
        .hostname("builder")
        .run(
            ["/bin/sh", "-c", "env; pwd"],
            mounts=[
                llb.cache("/cache", "pip", sharing="locked"),
                llb.tmpfs("/tmp", size=1 << 20),
                llb.bind("/data", data, readonly=True, selector="/d"),
                llb.bind("/out", llb.scratch()),
                llb.secret("/run/secrets/tok", "tok", uid=1, gid=2, mode=0o440, optional=True),
                llb.ssh(id="default"),
            ],
            secret_env=[llb.secret_env("API", "api")],
            extra_hosts={"registry": "10.0.0.1"},
            ulimits=[("nofile", 1024, 2048)],
            valid_exit_codes=[0, 1],
            cgroup_parent="/bk",
            proxy_env=llb.ProxyEnv(http_proxy="http://p:3128", no_proxy="localhost"),
            custom_name="the run",
            ignore_cache=True,
        )
    )
    out["exec_all"] = es.root()
    out["exec_mount_out"] = llb.scratch().file(llb.copy(es.get_mount("/out"), "/", "/from-out/"))
    a = llb.scratch().file(llb.mkfile("/a", 0o644, b"a"))
    b = llb.scratch().file(llb.mkfile("/b", 0o644, b"b"))
    out["merge"] = llb.merge([a, llb.scratch(), b, a], custom_name="m")
    out["diff"] = llb.diff(busybox, busybox.run("touch /new").root())
    out["diff_scratch_upper"] = llb.diff(busybox, llb.scratch())
    ctx = llb.local(
        "context",
        include_patterns=["src/", "a<b>&c"],
        exclude_patterns=["*.pyc"],
        follow_paths=["src"],
        shared_key_hint="ctx",
        differ="none",
        differ_required=True,
    )
    out["local"] = llb.scratch().file(llb.copy(ctx, "/src", "/app"))
    out["git"] = llb.git("https://github.com/moby/buildkit.git", "v0.32.2:frontend", keep_git_dir=True)
    out["git_scp"] = llb.git("git@github.com:moby/buildkit.git", "main", known_ssh_hosts="github.com ssh-ed25519 AAAA")
    out["git_noscheme"] = llb.git("github.com/moby/buildkit", "")
    out["http"] = llb.http(
        "https://example.com/a.tar.gz", checksum="sha256:ab" + D64[:62], filename="a.tgz", chmod=0o755, uid=1, gid=2
    )
    out["oci"] = llb.oci_layout("docker.io/library/foo@sha256:" + D64, store_id="store")
    out["image_opts"] = llb.image("ghcr.io/a/b:1", platform="linux/arm64", resolve_mode="pull")
    base = llb.image("alpine:3.20")
    out["diamond"] = llb.merge([base.run("touch /l").root(), base.run("touch /r").root()])
    chain = llb.mkdir("/x", 0o755).mkfile("/x/f", 0o644, b"f")
    out["copy_from_chain"] = busybox.file(chain.copy(chain.with_state(llb.scratch().dir("/x")), "f", "/g"))
    out["meta"] = busybox.run(
        "true", constraints=llb.Constraints.of(progress_group=llb.ProgressGroup("g1", "Group", True), export_cache=True)
    ).root()
    out["readonly_root"] = busybox.run("true", readonly_rootfs=True, mounts=[llb.bind("/o", llb.scratch())]).get_mount("/o")
    out["security"] = busybox.security("insecure").run("true").root()
    out["run_scratch"] = (
        llb.scratch().dir("/w").run(["/bin/true"], mounts=[llb.bind("/m", busybox, selector="/etc")]).get_mount("/m")
    )
    out["copy_self"] = busybox.file(
        llb.copy(busybox, "/etc/passwd", "/etc/passwd.bak").copy(busybox, "bin/", "/b/.")
    )
    out["image_digest"] = llb.image("alpine@sha256:" + D64).run("true").root()
    # Go masks modes to 0o777 (0o1777 -> 0o777, 0o4755 -> 0o755); llbkit rejects such modes instead.
    out["old_time"] = llb.scratch().file(
        llb.mkdir("/d", 0o777, created_time=-86400).mkfile("/d/f", 0o755, b"x")
    )
    # What llbkit.image lowers RUN mounts and ADD to (see main.go's twin).
    seed = llb.scratch().file(llb.mkdir("/cache", 0o750, owner=(1000, 1001)),
                              custom_name="[internal] settings cache mount permissions")
    rf = busybox.run(
        ["/bin/sh", "-c", "true"],
        mounts=[
            llb.cache("/c", "c", sharing="locked", source=seed, selector="/cache"),
            llb.bind("/ro", busybox, selector="/etc", readonly=True),
            llb.bind("/rw", busybox, selector="/bin", no_output=True),
            llb.ssh("/gh.sock", id="gh", uid=1, gid=2, mode=0o640),
        ],
        secret_env=[llb.secret_env("TOKEN", "token", optional=True)],
        network="host",
        security="insecure",
    )
    dl = llb.http("http://127.0.0.1:8000/t.sh", checksum="sha256:ab" + D64[:62], filename="t.sh")
    out["run_features"] = busybox.file(
        llb.copy(dl, "/t.sh", "/opt/", create_dest_path=True, owner=(0, 0)).copy(
            rf.root(), "/x.tar", "/srv/", attempt_unpack=True, create_dest_path=True, follow_symlinks=True,
            dir_contents_only=True)
    )
    return out



def odd_states():
    """States with strings and values that stress the JSON encoding."""
    weird = "tab\t nl\n quote\" back\\ html<&> uni é😀 ctl\x01 sep\u2028 del\x7f"
    return {
        "weird_strings": BB.add_env("W", weird).run(["echo", weird], custom_name=weird).root(),
        "weird_files": llb.scratch().file(
            llb.mkfile("/w", 0o644, weird.encode() + b"\xff\x00", owner="0:0").symlink(weird, "/s").rm("/x*", allow_wildcard=True)
        ),
        "big_numbers": BB.run(
            "true", ulimits=[("nofile", 2**62, 2**63 - 1)], mounts=[llb.tmpfs("/t", size=2**40)]
        ).root(),
        "metadata": BB.run(
            "true",
            ignore_cache=True,
            constraints=llb.Constraints.of(
                export_cache=False,
                progress_group=llb.ProgressGroup("id", "name", True),
                linux_resources=llb.LinuxResources(memory=1, memory_swap=-1, cpu_shares=2, cpu_period=3, cpu_quota=-4, cpuset_cpus="0", cpuset_mems="1"),
                worker_constraints=["a==b", "c!=d"],
            ),
        ).root(),
    }
