from __future__ import annotations

import pytest

from llbkit import llb
from llbkit.llb import caps
from llbkit.testutil.llb_testing import head, input_op, marshal

BB = llb.image("busybox")


def exec_of(state, **kw):
    d = marshal(state, **kw)
    op = head(d)
    assert op.kind == "exec", op.kind
    return d, op


def test_basic_run():
    d, op = exec_of(BB.run("echo hi").root())
    assert len(d) == 3
    assert input_op(d, op, 0).body["identifier"] == "docker-image://docker.io/library/busybox:latest"
    assert op.inputs[0].index == 0
    assert op.body["meta"] == {"args": ["echo", "hi"], "cwd": "/", "removeMountStubsRecursive": True}
    assert op.body["mounts"] == [{"dest": "/"}]  # input 0, output 0: both omitted as zero
    assert op.platform == llb.Platform("linux", "amd64")
    assert op.metadata.caps == {caps.EXEC_META_BASE, caps.EXEC_MOUNT_BIND}


def test_state_values_reach_the_run():
    st = (
        BB.dir("/src")
        .dir("app")
        .user("nobody")
        .add_env("A", "1")
        .add_env("B", "2")
        .add_env("A", "3")
        .hostname("builder")
        .add_extra_host("registry", "10.0.0.1")
        .add_ulimit("nofile", 1024, 2048)
        .with_cgroup_parent("/bk")
    )
    _, op = exec_of(st.run(["sh", "-c", "env"]).root())
    meta = op.body["meta"]
    assert meta["cwd"] == "/src/app"
    assert meta["user"] == "nobody"
    assert meta["env"] == ["B=2", "A=3"]  # Go's EnvList: a re-added key moves last
    assert meta["hostname"] == "builder"
    assert meta["extraHosts"] == [{"Host": "registry", "IP": "10.0.0.1"}]
    assert meta["ulimit"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert meta["cgroupParent"] == "/bk"
    assert {caps.EXEC_META_ULIMIT, caps.EXEC_META_CGROUP_PARENT} <= op.metadata.caps


def test_run_overrides_apply_to_the_run_only():
    st = BB.dir("/a").add_env("X", "state")
    es = st.run(
        "true",
        env={"X": "run", "Y": "y"},
        cwd="b",
        user="1000:1000",
        hostname="h",
        network="none",
        security="insecure",
        extra_hosts=[("h2", "::ffff:10.0.0.2")],
        ulimits=[("nproc", 1, 2)],
        cgroup_parent="/cg",
    )
    _, op = exec_of(es.root())
    meta = op.body["meta"]
    assert meta["env"] == ["X=run", "Y=y"]
    assert meta["cwd"] == "/a/b"
    assert meta["user"] == "1000:1000"
    assert meta["extraHosts"] == [{"Host": "h2", "IP": "10.0.0.2"}]
    assert op.body["network"] == llb.NetMode.NONE
    assert op.body["security"] == llb.SecurityMode.INSECURE
    assert {caps.EXEC_META_NETWORK, caps.EXEC_META_SECURITY} <= op.metadata.caps
    # The resulting state keeps the original values, as in Go.
    assert es.get_dir() == "/a" and es.get_env("X") == "state" and es.get_env("Y") is None
    assert es.get_network() == llb.NetMode.SANDBOX


def test_network_and_security_from_state():
    _, op = exec_of(BB.network(llb.NetMode.HOST).security("sandbox").run("true").root())
    assert op.body["network"] == 1 and "security" not in op.body


def test_mounts_sorted_with_output_indexes():
    data = llb.scratch().file(llb.mkfile("/d", 0o644, b"d"))
    es = BB.run(
        "true",
        mounts=[
            llb.bind("/out", llb.scratch()),
            llb.cache("/cache", "pip", sharing="locked"),
            llb.tmpfs("/tmp", size=1 << 20),
            llb.bind("/data", data, readonly=True, selector="/d"),
            llb.bind("/b-rw", data),
            llb.bind("/c-noout", data, no_output=True, content_cache="on"),
        ],
    )
    d, op = exec_of(es.root())
    mounts = op.body["mounts"]
    assert [m["dest"] for m in mounts] == ["/", "/b-rw", "/c-noout", "/cache", "/data", "/out", "/tmp"]
    # Inputs: busybox, then data once (three mounts share it).
    assert len(op.inputs) == 2
    assert input_op(d, op, 1).kind == "file"
    by_dest = {m["dest"]: m for m in mounts}
    assert by_dest["/"].get("input", 0) == 0 and by_dest["/"].get("output", 0) == 0
    assert by_dest["/b-rw"]["input"] == 1 and by_dest["/b-rw"]["output"] == 1
    assert by_dest["/c-noout"] == {"input": 1, "dest": "/c-noout", "output": -1, "contentCache": 1}
    assert by_dest["/cache"] == {"input": -1, "dest": "/cache", "output": -1, "mountType": 3, "cacheOpt": {"ID": "pip", "sharing": 2}}
    assert by_dest["/data"] == {"input": 1, "selector": "/d", "dest": "/data", "output": -1, "readonly": True}
    assert by_dest["/out"] == {"input": -1, "dest": "/out", "output": 2}
    assert by_dest["/tmp"] == {"input": -1, "dest": "/tmp", "output": -1, "mountType": 4, "TmpfsOpt": {"size": 1048576}}
    assert op.metadata.caps == {
        caps.EXEC_META_BASE,
        caps.EXEC_MOUNT_BIND,
        caps.EXEC_MOUNT_SELECTOR,
        caps.EXEC_MOUNT_CACHE,
        caps.EXEC_MOUNT_CACHE_SHARING,
        caps.EXEC_MOUNT_TMPFS,
        caps.EXEC_MOUNT_TMPFS_SIZE,
        caps.EXEC_MOUNT_BIND_READWRITE_NO_OUTPUT,
        caps.EXEC_MOUNT_CONTENT_CACHE,
    }
    # Mount results as states: writable binds are outputs of this exec; read-only ones are the source.
    out = marshal(es.get_mount("/out"))
    assert head(out).digest == op.digest
    assert out.ops[-1].inputs[0].index == 2
    assert marshal(es.get_mount("/b-rw")).ops[-1].inputs[0].index == 1
    assert head(marshal(es.get_mount("/data"))).kind == "file"
    assert marshal(es.get_mount("/")).digests == d.digests


@pytest.mark.parametrize("dest, fragment", [("/tmp", "tmpfs mount"), ("/cache", "cache mount"), ("/n", "no_output"), ("/nope", "no mount at '/nope'"), ("/s", "secret/ssh")])
def test_get_mount_without_output_raises(dest, fragment):
    es = BB.run(
        "true",
        mounts=[llb.tmpfs("/tmp"), llb.cache("/cache"), llb.bind("/n", BB, no_output=True), llb.secret("/s", "id")],
    )
    with pytest.raises(llb.InvalidMountError, match=fragment) as e:
        es.get_mount(dest)
    assert str(e.value).startswith("run: ")


def test_cache_id_defaults_to_dest_and_can_have_a_source():
    seed = llb.scratch().file(llb.mkdir("/seed", 0o755))
    _, op = exec_of(BB.run("true", mounts=[llb.cache("/root/.cache", source=seed, sharing=llb.CacheSharing.PRIVATE)]).root())
    m = op.body["mounts"][1]
    assert m["cacheOpt"] == {"ID": "/root/.cache", "sharing": 1}
    assert m["input"] == 1 and m["output"] == -1


def test_tmpfs_without_size_still_sends_options():
    _, op = exec_of(BB.run("true", mounts=[llb.tmpfs("/t")]).root())
    assert op.body["mounts"][1]["TmpfsOpt"] == {}
    assert caps.EXEC_MOUNT_TMPFS_SIZE not in op.metadata.caps


def test_secrets_and_ssh_come_after_sorted_mounts():
    _, op = exec_of(
        BB.run(
            "true",
            mounts=[
                llb.ssh(id="default"),
                llb.secret("/run/secrets/tok", "tok", uid=1, gid=2, mode=0o440, optional=True),
                llb.bind("/a", llb.scratch()),
                llb.ssh("/agent2", id="other", optional=True),
                llb.secret("/run/secrets/id-is-path"),
            ],
            secret_env=[llb.secret_env("API", "api"), llb.secret_env("TOKEN", optional=True)],
        ).root()
    )
    mounts = op.body["mounts"]
    assert [m["dest"] for m in mounts] == [
        "/",
        "/a",
        "/run/secrets/tok",
        "/run/secrets/id-is-path",
        "/run/buildkit/ssh_agent.0",
        "/agent2",
    ]
    assert mounts[2] == {
        "input": -1,
        "dest": "/run/secrets/tok",
        "mountType": 1,
        "secretOpt": {"ID": "tok", "uid": 1, "gid": 2, "mode": 0o440, "optional": True},
    }
    assert mounts[3]["secretOpt"] == {"ID": "/run/secrets/id-is-path", "mode": 0o400}
    assert mounts[4]["SSHOpt"] == {"ID": "default", "mode": 0o600}
    assert mounts[5]["SSHOpt"] == {"ID": "other", "mode": 0o600, "optional": True}
    assert op.body["secretenv"] == [{"ID": "api", "name": "API"}, {"ID": "TOKEN", "name": "TOKEN", "optional": True}]
    assert op.body["meta"]["env"] == ["SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0"]
    assert {caps.EXEC_MOUNT_SECRET, caps.EXEC_SECRET_ENV, caps.EXEC_MOUNT_SSH} <= op.metadata.caps


def test_ssh_auth_sock_from_env_is_kept():
    _, op = exec_of(BB.add_env("SSH_AUTH_SOCK", "/mine").run("true", mounts=[llb.ssh()]).root())
    assert op.body["meta"]["env"] == ["SSH_AUTH_SOCK=/mine"]


def test_meta_options():
    _, op = exec_of(
        BB.run(
            "true",
            valid_exit_codes=[0, 3],
            proxy_env=llb.ProxyEnv(http_proxy="http://p:3128", no_proxy="localhost"),
            cdi_devices=[llb.CDIDevice("vendor.com/gpu=0", optional=True)],
            constraints=llb.Constraints.of(linux_resources=llb.LinuxResources(memory=1 << 30, cpuset_cpus="0-1")),
        ).root()
    )
    meta = op.body["meta"]
    assert meta["validExitCodes"] == [0, 3]
    assert meta["proxy_env"] == {"http_proxy": "http://p:3128", "no_proxy": "localhost"}
    assert op.body["cdiDevices"] == [{"name": "vendor.com/gpu=0", "optional": True}]
    assert op.metadata.linux_resources == llb.LinuxResources(memory=1 << 30, cpuset_cpus="0-1")
    assert {
        caps.EXEC_VALID_EXIT_CODE,
        caps.EXEC_META_PROXY,
        caps.EXEC_META_CDI,
        caps.EXEC_META_LINUX_RESOURCES,
    } <= op.metadata.caps


def test_readonly_rootfs_result_is_the_input():
    es = BB.run("true", readonly_rootfs=True, mounts=[llb.bind("/o", llb.scratch())])
    d, op = exec_of(es.get_mount("/o"))
    assert op.body["mounts"][0] == {"dest": "/", "output": -1, "readonly": True}
    assert op.body["mounts"][1] == {"input": -1, "dest": "/o"}  # the only output: index 0
    assert marshal(es.root()).digests == marshal(BB).digests


def test_run_on_scratch_has_no_inputs():
    _, op = exec_of(llb.scratch().run(["/bin/true"]).root())
    assert op.inputs == () and op.body["mounts"] == [{"input": -1, "dest": "/"}]
    assert op.metadata.caps == {caps.EXEC_META_BASE}


def test_run_platform_option_and_state_platform():
    es = BB.run("true", platform="linux/arm64")
    _, op = exec_of(es.root())
    assert op.platform == llb.Platform("linux", "arm64")
    assert es.get_platform() == llb.Platform("linux", "arm64")
    _, op2 = exec_of(BB.platform("linux/s390x").run("true").root())
    assert op2.platform == llb.Platform("linux", "s390x")


def test_string_args_are_split_like_shlex():
    _, op = exec_of(BB.run("sh -c 'echo \"a b\"'").root())
    assert op.body["meta"]["args"] == ["sh", "-c", 'echo "a b"']


def test_mount_by_type_name():
    assert llb.mount("/c", "cache", id="x", sharing="private") == llb.cache("/c", "x", sharing="private")
    assert llb.mount("/b", "bind", source=BB, readonly=True) == llb.bind("/b", BB, readonly=True)
    assert llb.mount("/t", llb.MountType.TMPFS, size=1) == llb.tmpfs("/t", size=1)


@pytest.mark.parametrize(
    "make, error, fragment",
    [
        (lambda: BB.run([]), llb.InvalidArgumentError, "run: arguments are required"),
        (lambda: BB.run(""), llb.InvalidArgumentError, "run: arguments are required"),
        (lambda: BB.run("echo 'unterminated"), llb.InvalidArgumentError, "can't split command"),
        (lambda: BB.run(["echo", 1]), llb.InvalidArgumentError, "every argument must be a string"),
        (lambda: BB.run("true", env=["NOEQUALS"]), llb.InvalidArgumentError, "'NOEQUALS' is not 'KEY=value'"),
        (lambda: BB.run("true", mounts=[{"type": "bind"}]), llb.InvalidMountError, "unknown mount"),
        (lambda: llb.mount("/x", "overlay"), llb.InvalidMountError, "unknown mount type 'overlay'"),
        (lambda: llb.mount("/x", "tmpfs", source=BB), llb.InvalidMountError, "source do not apply to a tmpfs"),
        (lambda: llb.bind("relative", BB), llb.InvalidPathError, "bind: mount destination 'relative' must be an absolute path"),
        (lambda: llb.cache(""), llb.InvalidPathError, "cache: mount destination"),
        (lambda: llb.secret("run/secrets/x"), llb.InvalidPathError, "secret: secret path 'run/secrets/x'"),
        (lambda: llb.ssh("agent"), llb.InvalidPathError, "ssh: ssh socket path 'agent'"),
        (lambda: llb.tmpfs("/t", size=-1), llb.InvalidMountError, "tmpfs: size"),
        (lambda: llb.cache("/c", sharing="exclusive"), llb.InvalidMountError, "unknown cache sharing mode 'exclusive'"),
        (lambda: llb.bind("/b", "busybox"), llb.InvalidMountError, "mount source must be a State"),
        (lambda: BB.run("true", mounts=[llb.bind("/a", BB), llb.tmpfs("/a")]), llb.ConflictingOptionsError, "two mounts at '/a'"),
        (lambda: BB.run("true", mounts=[llb.bind("/", BB)]), llb.ConflictingOptionsError, "conflicts with the root"),
        (lambda: BB.run("true", network="bridge"), llb.InvalidArgumentError, "unknown network mode 'bridge'"),
        (lambda: BB.run("true", valid_exit_codes=[]), llb.InvalidArgumentError, "valid_exit_codes"),
        (lambda: BB.run("true", extra_hosts={"h": "not-an-ip"}), llb.InvalidArgumentError, "invalid IP address 'not-an-ip'"),
        (lambda: BB.run("true", ulimits=[("files", 1, 2)]), llb.InvalidArgumentError, "unknown ulimit 'files'"),
        (lambda: llb.secret("/s", uid=-1), llb.InvalidArgumentError, "uid"),
        (lambda: llb.secret_env("A=B"), llb.InvalidArgumentError, "invalid environment variable name"),
    ],
)
def test_run_errors(make, error, fragment):
    with pytest.raises(error, match=fragment) as e:
        make()
    assert isinstance(e.value, llb.LLBError)


def test_tmpfs_with_source_conflicts():
    m = llb.Mount(dest="/t", type=llb.MountType.TMPFS, source=BB)
    with pytest.raises(llb.ConflictingOptionsError, match="run: tmpfs mount '/t' can't have a source state"):
        BB.run("true", mounts=[m])


def test_custom_name_and_ignore_cache():
    _, op = exec_of(BB.run("true", custom_name="step 1", ignore_cache=True).root())
    assert op.metadata.custom_name == "step 1" and op.metadata.ignore_cache
