import pytest

from llbkit_pants.dockerfile.model import Dockerfile, DockerfileProblem, expand, is_address


def cmd(cmd, *value, flags=(), line=1, original=""):
    return {"cmd": cmd, "value": list(value), "flags": list(flags), "start_line": line, "original": original}


def dockerfile(*commands, text=""):
    return Dockerfile.parse("app/Dockerfile", commands, text)


def test_expand_like_the_frontend():
    values = {"A": "a", "EMPTY": "", "N": None}
    assert expand("$A/${A}x", values) == "a/ax"
    assert expand("${EMPTY:-d} ${EMPTY-d} ${N-d} ${MISSING:-d}", values) == "d  d d"
    assert expand("${A:+alt} ${EMPTY:+alt}|${EMPTY+set}", values) == "alt |set"
    assert expand("\\$A", values) == "$A"
    assert expand("${MISSING:-$A}", values) == "a"


def test_stage_bases_meta_args_build_args_and_stages():
    df = dockerfile(
        cmd("ARG", "BASE=busybox:1.36"),
        cmd("ARG", "TOOL"),
        cmd("FROM", "$BASE", "AS", "Build", line=3),
        cmd("FROM", "build", line=4),
        cmd("FROM", "scratch", line=5),
        cmd("FROM", "${TOOL:-alpine}:$TARGETARCH", line=6),
        cmd("FROM", "$TOOL", line=7),
    )
    bases = df.stage_bases({"TOOL": "//tools:img"}, "linux/arm64", "linux/amd64")
    assert [(b.kind, b.value) for b in bases] == [
        ("image", "busybox:1.36"), ("stage", "build"), ("scratch", "scratch"),
        ("image", "//tools:img:arm64"), ("target", "//tools:img")]
    assert df.stage_names() == ("build",)
    # A build argument overrides a meta ARG's default.
    assert df.stage_bases({"BASE": "debian:12", "TOOL": "t"}, "linux/amd64", "linux/amd64")[0].value == "debian:12"


def test_from_that_expands_to_nothing_names_the_line():
    df = dockerfile(cmd("ARG", "BASE"), cmd("FROM", "$BASE", line=2))
    with pytest.raises(DockerfileProblem) as e:
        df.stage_bases({}, "linux/amd64", "linux/amd64")
    assert (e.value.path, e.value.line) == ("app/Dockerfile", 2)
    assert "extra_build_args" in e.value.fix


def test_copy_sources_skip_stages_urls_and_heredocs():
    df = dockerfile(
        cmd("FROM", "busybox", "AS", "b"),
        cmd("COPY", "a.txt", "dir/", "/x/", line=2),
        cmd("COPY", "/out", "/y", flags=["--from=b"], line=3),
        cmd("ADD", "https://example.com/t.tgz", "local.tar", "/z/", line=4),
        cmd("COPY", "<<EOF", "/w", line=5),
        cmd("COPY", "/bin/sh", "/sh", flags=["--from=busybox:1.36"], line=6),
        dict(cmd("ONBUILD", "trigger.txt", "/t/", line=7), sub_cmd="COPY"),
        dict(cmd("ONBUILD", "/x", "/t/", line=8, original="ONBUILD COPY --from=b /x /t/"), sub_cmd="COPY"),
        cmd("RUN", "make", line=9, flags=["--mount=type=bind,source=src,target=/s", "--mount=target=/all",
                                          "--mount=type=bind,from=b,source=/o,target=/o", "--mount=type=cache,target=/c"]),
    )
    assert df.copy_sources() == (("a.txt", 2), ("dir/", 2), ("local.tar", 4), ("trigger.txt", 7), ("src", 9),
                                 (".", 9))
    assert df.copy_from_images() == (("busybox:1.36", 6),)


def test_build_args_and_target_stage_are_checked():
    df = dockerfile(cmd("ARG", "BASE=busybox"), cmd("FROM", "$BASE", "AS", "runtime"), cmd("ARG", "VERSION"))
    df.check_build_args(["VERSION", "BASE", "TARGETARCH"], "in `extra_build_args`")
    with pytest.raises(DockerfileProblem) as e:
        df.check_build_args(["VERSOIN"], "in `extra_build_args`")
    assert "'VERSOIN'" in e.value.problem and "BASE, VERSION" in e.value.problem
    df.check_target_stage("RUNTIME")
    with pytest.raises(DockerfileProblem) as e2:
        df.check_target_stage("test")
    assert "'test'" in e2.value.problem and "runtime" in e2.value.problem


def test_secret_mounts():
    df = dockerfile(cmd("FROM", "busybox"),
                    cmd("RUN", "cat /run/secrets/token", flags=["--mount=type=secret,id=token,required=true"]),
                    cmd("RUN", "x", flags=["--mount=type=secret,target=/root/.npmrc", "--mount=type=cache,target=/c"]))
    assert df.secret_mounts() == ((".npmrc", False), ("token", True))


def test_no_from_is_a_problem():
    with pytest.raises(DockerfileProblem, match="no FROM"):
        dockerfile(cmd("ARG", "A"))


def test_addresses():
    assert is_address(":base") and is_address("//images/base:base") and is_address("//images/base")
    assert not is_address("registry:5000/base") and not is_address("images/base:1.0")


def test_entitlements_its_runs_need():
    df = dockerfile(cmd("FROM", "busybox"),
                    cmd("RUN", "wget http://127.0.0.1/x", flags=["--network=host"]),
                    cmd("RUN", "mount -t tmpfs t /mnt", flags=["--security=insecure"]),
                    cmd("RUN", "true", flags=["--network=none"]))
    assert df.entitlements() == ("network.host", "security.insecure")
    assert dockerfile(cmd("FROM", "busybox"), cmd("RUN", "true", flags=["--network=default"])).entitlements() == ()


def test_entitlement_lines_point_at_the_first_run_needing_each():
    df = dockerfile(cmd("FROM", "busybox", line=1),
                    cmd("RUN", "true", flags=["--security=INSECURE"], line=3),
                    cmd("RUN", "wget http://127.0.0.1/x", flags=["--network=host"], line=5),
                    cmd("RUN", "wget http://127.0.0.1/y", flags=["--network=host"], line=7))
    assert df.entitlement_lines() == (("network.host", 5), ("security.insecure", 3))
