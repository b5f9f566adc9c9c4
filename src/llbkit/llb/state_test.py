from __future__ import annotations

import dataclasses
import json

import pytest

from llbkit import llb
from llbkit.testutil.llb_testing import head, marshal

BB = llb.image("busybox")


def test_states_are_immutable():
    st = llb.scratch()
    with pytest.raises(dataclasses.FrozenInstanceError):
        st.output = None  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        st.meta.dir = "/x"  # type: ignore[misc]
    st2 = st.dir("/x")
    assert st.get_dir() == "/" and st2.get_dir() == "/x"


def test_defaults_match_a_fresh_go_state():
    st = llb.scratch()
    assert st.is_scratch
    assert st.get_dir() == "/"
    assert st.env() == ()
    assert st.get_user() == "" and st.get_hostname() == ""
    assert st.get_platform() is None
    assert st.get_network() is llb.NetMode.SANDBOX
    assert st.get_security() is llb.SecurityMode.SANDBOX


def test_env_values():
    st = BB.add_env("A", "1").add_env("B", "2").add_env("A", "3")
    assert st.env() == ("B=2", "A=3")
    assert st.get_env("A") == "3" and st.get_env("C") is None
    assert st.del_env("B").env() == ("A=3",)
    assert st.with_env({"X": "x", "Y": "y"}).env() == ("X=x", "Y=y")
    assert st.with_env(["P=1", "Q=a=b"]).env() == ("P=1", "Q=a=b")
    assert st.with_env([("R", "")]).env() == ("R=",)


@pytest.mark.parametrize("key", ["", "A=B", None])
def test_bad_env_keys(key):
    with pytest.raises(llb.InvalidArgumentError, match="add_env: invalid environment variable name"):
        BB.add_env(key, "v")  # type: ignore[arg-type]


def test_dir_joins_relative_paths_like_go():
    assert BB.dir("/a").dir("b").dir("../c").get_dir() == "/a/c"
    assert BB.dir("/a").dir("/abs/./x").get_dir() == "/abs/./x"  # absolute paths are kept as given
    assert BB.dir("rel").get_dir() == "/rel"
    assert BB.dir("/a").dir("").get_dir() == "/a"
    with pytest.raises(llb.InvalidPathError, match="dir: directory must be a string"):
        BB.dir(None)  # type: ignore[arg-type]


def test_platform_network_security_user_hostname():
    st = BB.platform("linux/arm64").network("host").security(llb.SecurityMode.INSECURE).user("app").hostname("h")
    assert st.get_platform() == llb.Platform("linux", "arm64")
    assert st.get_network() is llb.NetMode.HOST
    assert st.get_security() is llb.SecurityMode.INSECURE
    assert st.get_user() == "app" and st.get_hostname() == "h"
    with pytest.raises(llb.InvalidPlatformError, match="platform: invalid platform 'arm64'"):
        BB.platform("arm64")
    with pytest.raises(llb.InvalidArgumentError, match="security: unknown security mode 'root'"):
        BB.security("root")


def test_derived_states_are_plain_states():
    es = BB.run("true")
    assert isinstance(es, llb.ExecState)
    assert type(es.dir("/x")) is llb.State
    assert type(es.root()) is llb.State


def test_with_image_config():
    config = {
        "architecture": "arm64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin", "EMPTY=", "NOVALUE"], "WorkingDir": "/app"},
    }
    st = llb.scratch().with_image_config(json.dumps(config).encode())
    assert st.env() == ("PATH=/usr/bin:/bin", "EMPTY=", "NOVALUE=")
    assert st.get_dir() == "/app"
    assert st.get_platform() == llb.Platform("linux", "arm64")
    with pytest.raises(llb.InvalidArgumentError, match="with_image_config: image config is not JSON"):
        llb.scratch().with_image_config(b"{nope")


def test_platform_reaches_image_pulls_made_for_runs():
    # A state's platform is the default for its runs; the image itself keeps the marshal platform
    # unless given one, as in Go.
    op = head(marshal(BB.platform("linux/arm64").run("true").root()))
    assert op.platform == llb.Platform("linux", "arm64")


def test_a_state_can_be_reused_in_many_graphs():
    base = BB.run("apk add x").root()
    one = marshal(base.run("a").root())
    two = marshal(base.run("b").root())
    assert one.digests[:2] == two.digests[:2]
