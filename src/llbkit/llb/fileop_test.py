from __future__ import annotations

import datetime as dt

import pytest

from llbkit import llb
from llbkit.llb import caps
from llbkit.testutil.llb_testing import head, input_op, marshal
from llbkit.llb.fileop import normalize_path

BB = llb.image("busybox")


def file_of(state):
    d = marshal(state)
    op = head(d)
    assert op.kind == "file"
    assert op.platform is None  # file ops are not platform specific
    return d, op


def test_mkdir_on_image():
    d, op = file_of(BB.file(llb.mkdir("/foo", 0o700)))
    assert len(d) == 3
    assert input_op(d, op, 0).kind == "source"
    assert op.body["actions"] == [
        {"input": 0, "secondaryInput": -1, "output": 0, "Action": {"mkdir": {"path": "/foo", "mode": 0o700, "timestamp": -1}}}
    ]
    assert op.metadata.caps == {caps.FILE_BASE}


def test_chain_indexes_and_relative_paths():
    st = BB.dir("/etc").file(
        llb.mkdir("/foo", 0o700).mkdir("bar", 0o600, make_parents=True).mkdir("bar/baz", 0o701)
    )
    _, op = file_of(st)
    actions = op.body["actions"]
    assert [(a["input"], a["secondaryInput"], a["output"]) for a in actions] == [(0, -1, -1), (1, -1, -1), (2, -1, 0)]
    assert [a["Action"]["mkdir"]["path"] for a in actions] == ["/foo", "/etc/bar", "/etc/bar/baz"]
    assert actions[1]["Action"]["mkdir"]["makeParents"] is True


def test_mkfile_chain_on_scratch():
    d, op = file_of(llb.scratch().file(llb.mkdir("/foo", 0o700).mkfile("bar", 0o700, b"data")))
    assert len(d) == 2 and op.inputs == ()
    a0, a1 = op.body["actions"]
    assert (a0["input"], a0["output"]) == (-1, -1)
    assert (a1["input"], a1["output"]) == (0, 0)  # 0 inputs, so 0 is the result of action 0
    assert a1["Action"]["mkfile"] == {"path": "/bar", "mode": 0o700, "data": "ZGF0YQ==", "timestamp": -1}


def test_mkfile_str_data_and_empty_data():
    _, op = file_of(llb.scratch().file(llb.mkfile("/a", 0o644, "héllo").mkfile("/b", 0o644, b"")))
    assert op.body["actions"][0]["Action"]["mkfile"]["data"] == "aMOpbGxv"
    assert "data" not in op.body["actions"][1]["Action"]["mkfile"]


def test_symlink_and_rm():
    _, op = file_of(
        BB.dir("/src").file(
            llb.mkdir("dir", 0o755)
            .symlink("/src/dir", "/srcdir")
            .symlink("dir/file", "/srcdirfile", owner="1:2")
            .rm("gone", allow_not_found=True)
            .rm("/tmp/*", allow_wildcard=True)
        )
    )
    acts = [a["Action"] for a in op.body["actions"]]
    assert acts[1] == {"symlink": {"oldpath": "/src/dir", "newpath": "/srcdir", "timestamp": -1}}
    assert acts[2]["symlink"]["owner"] == {"user": {"User": {"byId": 1}}, "group": {"User": {"byId": 2}}}
    assert acts[3] == {"rm": {"path": "/src/gone", "allowNotFound": True}}
    assert acts[4] == {"rm": {"path": "/tmp/*", "allowWildcard": True}}
    assert op.metadata.caps == {caps.FILE_BASE, caps.FILE_SYMLINK_CREATE, caps.FILE_RM_WILDCARD}


def test_copy_from_another_state():
    src = llb.image("alpine").dir("/etc")
    d, op = file_of(BB.dir("/work").file(llb.copy(src, "passwd", "out/")))
    assert len(op.inputs) == 2
    assert input_op(d, op, 0).body["identifier"].endswith("busybox:latest")
    assert input_op(d, op, 1).body["identifier"].endswith("alpine:latest")
    a = op.body["actions"][0]
    assert (a["input"], a["secondaryInput"], a["output"]) == (0, 1, 0)
    # src resolves against the source state's dir, dest against the target's; "out/" keeps its slash.
    assert a["Action"]["copy"] == {"src": "/etc/passwd", "dest": "/work/out/", "mode": -1, "timestamp": -1}


def test_copy_all_options():
    when = dt.datetime(2001, 9, 9, 1, 46, 40, 123456, tzinfo=dt.timezone.utc)
    _, op = file_of(
        llb.scratch().file(
            llb.copy(
                BB,
                "/etc",
                "/out/.",
                owner=(1, "wheel"),
                mode=0o640,
                follow_symlinks=True,
                dir_contents_only=True,
                attempt_unpack=True,
                create_dest_path=True,
                allow_wildcard=True,
                allow_empty_wildcard=True,
                include_patterns=["*.conf"],
                exclude_patterns=["secret*"],
                required_paths=["a.conf"],
                created_time=when,
                always_replace_existing_dest_paths=True,
            )
        )
    )
    a = op.body["actions"][0]
    assert (a["input"], a["secondaryInput"]) == (-1, 0)
    assert a["Action"]["copy"] == {
        "src": "/etc",
        "dest": "/out/.",
        # A named group on a copy is looked up in the target (input -1: scratch).
        "owner": {"user": {"User": {"byId": 1}}, "group": {"User": {"byName": {"name": "wheel", "input": -1}}}},
        "mode": 0o640,
        "followSymlink": True,
        "dirCopyContents": True,
        "attemptUnpackDockerCompatibility": True,
        "createDestPath": True,
        "allowWildcard": True,
        "allowEmptyWildcard": True,
        "timestamp": 1000000000123456000,
        "include_patterns": ["*.conf"],
        "exclude_patterns": ["secret*"],
        "alwaysReplaceExistingDestPaths": True,
        "required_paths": ["a.conf"],
    }
    assert op.metadata.caps == {
        caps.FILE_BASE,
        caps.FILE_COPY_INCLUDE_EXCLUDE_PATTERNS,
        caps.FILE_COPY_REQUIRED_PATHS,
        caps.FILE_COPY_ALWAYS_REPLACE_EXISTING_DEST_PATHS,
    }


def test_copy_mode_string_is_sent_without_the_unregistered_cap():
    _, op = file_of(llb.scratch().file(llb.copy(BB, "/bin/sh", "/sh", mode="u+x,go-w")))
    c = op.body["actions"][0]["Action"]["copy"]
    assert c["modeStr"] == "u+x,go-w" and "mode" not in c
    assert caps.FILE_COPY_MODE_STRING not in op.metadata.caps
    assert op.metadata.caps <= caps.SUPPORTED_CAPS


def test_owner_names_resolve_in_the_target_input():
    _, op = file_of(BB.file(llb.mkfile("/f", 0o644, b"x", owner="app:staff").mkdir("/d", 0o755, owner="root:0")))
    mk = op.body["actions"][0]["Action"]["mkfile"]
    assert mk["owner"] == {
        "user": {"User": {"byName": {"name": "app"}}},  # input 0 (busybox) is omitted as zero
        "group": {"User": {"byName": {"name": "staff"}}},
    }
    assert op.body["actions"][1]["Action"]["mkdir"]["owner"] == {"user": {"User": {}}, "group": {"User": {}}}


def test_copy_from_action_chain_with_state():
    chain = llb.mkdir("/x", 0o755).mkfile("/x/f", 0o644, b"f")
    d, op = file_of(BB.file(chain.copy(chain.with_state(llb.scratch().dir("/x")), "f", "/g")))
    acts = op.body["actions"]
    # Actions 0-1 on busybox, 2-3 the same chain on scratch, 4 the copy from action 3's result.
    assert len(op.inputs) == 1 and len(acts) == 5
    assert [(a["input"], a["secondaryInput"], a["output"]) for a in acts] == [
        (0, -1, -1),
        (1, -1, -1),
        (-1, -1, -1),
        (3, -1, -1),
        (2, 4, 0),
    ]
    assert acts[4]["Action"]["copy"]["src"] == "/x/f"


def test_same_input_used_twice_is_one_input():
    _, op = file_of(llb.scratch().file(llb.copy(BB, "/a", "/a").copy(BB, "/b", "/b")))
    assert len(op.inputs) == 1
    assert [a["secondaryInput"] for a in op.body["actions"]] == [0, 0]
    assert [a["input"] for a in op.body["actions"]] == [-1, 1]


def test_long_chains_do_not_recurse():
    action = llb.mkdir("/d0", 0o755)
    for i in range(1, 3000):
        action = action.mkdir(f"/d{i}", 0o755)
    _, op = file_of(llb.scratch().file(action))
    assert len(op.body["actions"]) == 3000
    assert op.body["actions"][-1]["input"] == 2998


def _mkfile_timestamp(**kw):
    _, op = file_of(llb.scratch().file(llb.mkfile("/f", 0o644, b"", **kw)))
    return op.body["actions"][0]["Action"]["mkfile"].get("timestamp", 0)  # 0 is omitted like any zero


def test_timestamps():
    ts = _mkfile_timestamp
    assert ts() == -1
    assert ts(created_time=0) == 0
    assert ts(created_time=1.5) == 1_500_000_000
    assert ts(created_time=dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=dt.timezone.utc)) == 1_000_000_000


@pytest.mark.parametrize(
    "parent, path, keep, want",
    [
        ("/", "foo", False, "/foo"),
        ("/etc", "foo/../bar", False, "/etc/bar"),
        ("/etc", "/abs//x/", False, "/abs/x"),
        ("/etc", "dir/", True, "/etc/dir/"),
        ("/etc", "dir/.", True, "/etc/dir/."),
        ("/", "/.", True, "/."),
        ("", ".", False, "/"),
    ],
)
def test_normalize_path(parent, path, keep, want):
    assert normalize_path(parent, path, keep) == want


@pytest.mark.parametrize(
    "make, error, fragment",
    [
        (lambda: llb.mkdir("", 0o755), llb.InvalidPathError, "file.mkdir: path must be a non-empty path"),
        (lambda: llb.mkdir("/d", 0o4755), llb.InvalidArgumentError, "file.mkdir: mode"),
        (lambda: llb.mkfile("/f", 0o644, 123), llb.InvalidArgumentError, "file.mkfile: data must be bytes or str"),
        (lambda: llb.mkfile("/f", 0o644, b"", owner=""), llb.InvalidArgumentError, "owner is empty"),
        (lambda: llb.mkfile("/f", 0o644, b"", owner="-5"), llb.InvalidArgumentError, "negative"),
        (lambda: llb.mkfile("/f", 0o644, b"", created_time=dt.datetime(2000, 1, 1)), llb.InvalidArgumentError, "no timezone"),
        (lambda: llb.symlink("/t", "rel/link"), llb.InvalidPathError, "file.symlink: link path \\(newpath\\) 'rel/link' must be an absolute path"),
        (lambda: llb.symlink("", "/l"), llb.InvalidPathError, "link target"),
        (lambda: llb.rm(""), llb.InvalidPathError, "file.rm"),
        (lambda: llb.copy("busybox", "/a", "/b"), llb.InvalidArgumentError, "copy source must be a State"),
        (lambda: llb.copy(BB, "", "/b"), llb.InvalidPathError, "source path"),
        (lambda: llb.copy(BB, "/a", "/b", mode="rwx"), llb.InvalidArgumentError, "invalid mode string 'rwx'"),
        (lambda: llb.copy(BB, "/a", "/b", include_patterns="*.py"), llb.InvalidArgumentError, "must be a list"),
        (lambda: llb.copy(BB, "/a", "/b", required_paths=["x"]), llb.ConflictingOptionsError, "need include_patterns"),
        (lambda: llb.copy(BB, "/a", "/b", allow_empty_wildcard=True), llb.ConflictingOptionsError, "needs allow_wildcard"),
        (lambda: BB.file("mkdir /x"), llb.InvalidArgumentError, "file: expected a file action"),
    ],
)
def test_file_errors(make, error, fragment):
    with pytest.raises(error, match=fragment) as e:
        make()
    assert isinstance(e.value, llb.LLBError)


def test_file_result_keeps_state_values_and_custom_name():
    st = BB.dir("/w").add_env("K", "v").file(llb.mkdir("x", 0o755), custom_name="make x")
    assert st.get_dir() == "/w" and st.get_env("K") == "v"
    _, op = file_of(st)
    assert op.metadata.custom_name == "make x"
