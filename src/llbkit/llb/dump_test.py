from __future__ import annotations

import functools
import json

import pytest

from llbkit import llb
from llbkit._proto import ops_pb2 as pb
from llbkit.testutil import llb_examples as examples
from llbkit.testutil.llb_testing import buildctl_dump, find_buildctl, marshal
from llbkit.llb.dump import go_quote
from llbkit.llb.marshal import serialize, serialize_op

BB = llb.image("busybox")


def test_dump_shape():
    st = llb.scratch().file(
        llb.mkfile("/f", 0o644, b"<data>", owner="root:app").symlink("/f", "/l"),
        custom_name="files & <stuff>",
    )
    lines = llb.dump(marshal(st)).splitlines()
    assert len(lines) == 2
    rec = json.loads(lines[0])
    assert list(rec) == ["Op", "Digest", "OpMetadata"]
    assert list(rec["Op"]) == ["Op", "constraints"]  # no inputs (scratch), no platform (file op)
    actions = rec["Op"]["Op"]["file"]["actions"]
    assert actions[0] == {
        "input": -1,
        "secondaryInput": -1,
        "output": -1,
        "Action": {
            "mkfile": {
                "path": "/f",
                "mode": 420,
                "data": "PGRhdGE+",
                "owner": {"user": {"User": {}}, "group": {"User": {"byName": {"name": "app", "input": -1}}}},
                "timestamp": -1,
            }
        },
    }
    # buildctl's FileAction encoder has no case for symlinks: they print as an empty action.
    assert actions[1] == {"input": 0, "secondaryInput": -1, "output": 0, "Action": {}}
    assert rec["OpMetadata"] == {"description": {"llb.customname": "files & <stuff>"}, "caps": {"file.base": True, "file.symlink.create": True}}
    assert "\\u0026 \\u003cstuff\\u003e" in lines[0]
    terminal = json.loads(lines[1])
    assert terminal["Op"] == {"inputs": [{"digest": rec["Digest"]}], "Op": {}}


def test_dump_of_foreign_definition_keeps_wire_metadata():
    op = serialize_op(pb.Op(source=pb.SourceOp(identifier="local://x"), constraints=pb.WorkerConstraints()))
    other = serialize_op(pb.Op(source=pb.SourceOp(identifier="local://y")))
    d = pb.Definition()
    getattr(d, "def").extend([op, other])
    dgst = llb.load(serialize(d)).digests[0]
    d.metadata[dgst].caps["source.local"] = False
    d.metadata[dgst].export_cache.Value = False
    loaded = llb.load(serialize(d))
    recs = llb.dump_ops(loaded)
    assert recs[0]["OpMetadata"] == {"export_cache": {}, "caps": {"source.local": False}}
    assert recs[1]["OpMetadata"] == {}  # no metadata entry at all
    assert loaded.metadata[dgst].export_cache is False


def test_to_dot():
    es = BB.run("echo hi", mounts=[llb.bind("/data", llb.scratch().file(llb.mkdir("/d", 0o755)), readonly=True)])
    d = marshal(es.root())
    dot = llb.to_dot(d)
    lines = dot.splitlines()
    assert lines[0] == "digraph {" and lines[-1] == "}"
    assert f'  "{d.digests[0]}" [label="docker-image://docker.io/library/busybox:latest" shape="ellipse"];' in lines
    assert f'  "{d.digests[1]}" [label="mkdir{{path=/d}}" shape="note"];' in lines
    assert f'  "{d.digests[2]}" [label="echo hi" shape="box"];' in lines
    assert f'  "{d.digests[3]}" [label="{d.digests[3]}" shape="plaintext"];' in lines
    assert f'  "{d.digests[1]}" -> "{d.digests[2]}" [label="/data"];' in lines
    assert f'  "{d.digests[0]}" -> "{d.digests[2]}" [label=""];' in lines


@pytest.mark.parametrize(
    "s, q",
    [("plain", '"plain"'), ('a"b\\c', '"a\\"b\\\\c"'), ("\x01\n\x7f", '"\\x01\\n\\x7f"'), ("é\u200b", '"é\\u200b"')],
)
def test_go_quote(s, q):
    assert go_quote(s) == q


# -- against the real buildctl -----------------------------------------------------------------------

from llbkit.testutil.llb_states import odd_states  # noqa: E402

BUILDCTL = find_buildctl()


def needs_buildctl(test):
    """buildctl is a test requirement (the reference these dumps are compared with): a missing
    one fails the test, as generate_test.py does for grpcio-tools, rather than skipping it."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        if BUILDCTL is None:
            pytest.fail("buildctl v0.32.2 not found: it is a test requirement; run "
                        "build-support/provision.sh (or set LLBKIT_BUILDCTL)")
        return test(*args, **kwargs)

    return run


@needs_buildctl
@pytest.mark.parametrize("name", sorted(odd_states()))
def test_dump_equals_buildctl_for_odd_states(name):
    d = marshal(odd_states()[name], local_unique_id="ctx")
    assert llb.dump(d) == buildctl_dump(BUILDCTL, d.to_bytes())
    assert llb.to_dot(d) == buildctl_dump(BUILDCTL, d.to_bytes(), dot=True)


@needs_buildctl
def test_dump_equals_buildctl_for_the_example_catalogue():
    exs = examples.catalogue("127.0.0.1:5000")
    assert len(exs) >= 22
    for ex in exs:
        d = ex.state.marshal("linux/amd64", local_unique_id="ctx")
        data = d.to_bytes()
        assert llb.dump(d) == buildctl_dump(BUILDCTL, data), ex.name
        assert llb.dump(llb.load(data)) == buildctl_dump(BUILDCTL, data), ex.name
        assert llb.to_dot(d) == buildctl_dump(BUILDCTL, data, dot=True), ex.name
