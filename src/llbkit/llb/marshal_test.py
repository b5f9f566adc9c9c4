from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llbkit import llb
from llbkit._proto import ops_pb2 as pb
from llbkit.llb import caps
from llbkit.testutil.llb_testing import head, marshal, sample_state
from llbkit.llb.marshal import digest_of, serialize, serialize_op

BB = llb.image("busybox")
SRC_ROOT = Path(__file__).resolve().parents[2]


def test_inputs_come_before_users_and_terminal_is_last():
    d = marshal(sample_state())
    seen = set()
    for op in d.ops[:-1]:
        for inp in op.inputs:
            assert inp.digest in seen, "input marshaled after its user"
        seen.add(op.digest)
    terminal = d.ops[-1]
    assert terminal.is_terminal and terminal.kind == "" and terminal.body == {}
    assert terminal.platform is None and terminal.worker_constraints == ()
    assert len(terminal.inputs) == 1 and terminal.inputs[0].digest == d.head
    assert d.terminal == terminal.digest
    assert terminal.metadata.caps == {caps.CONSTRAINTS, caps.PLATFORM, caps.META_DESCRIPTION}


def test_digests_are_sha256_of_the_op_bytes():
    d = marshal(sample_state())
    for data, dgst in zip(d.defs, d.digests):
        assert dgst == "sha256:" + hashlib.sha256(data).hexdigest()
    assert len(set(d.digests)) == len(d.digests)


def test_identical_ops_built_twice_appear_once_with_merged_metadata():
    one = llb.image("busybox", custom_name="first", constraints=llb.Constraints.of(description={"a": "1"}))
    two = llb.image("busybox", ignore_cache=True, constraints=llb.Constraints.of(description={"b": "2"}))
    d = marshal(llb.merge([one, two]))
    sources = [op for op in d.ops if op.kind == "source"]
    assert len(sources) == 1
    md = sources[0].metadata
    assert dict(md.description) == {"llb.customname": "first", "a": "1", "b": "2"}
    assert md.ignore_cache
    assert {caps.META_IGNORE_CACHE, caps.META_DESCRIPTION} <= d.ops[-1].metadata.caps
    merge_op = head(d)
    assert [i.digest for i in merge_op.inputs] == [sources[0].digest] * 2


def test_marshal_wide_constraints_apply_to_every_op():
    c = llb.Constraints.of(worker_constraints=["arch==amd64"], ignore_cache=True)
    d = marshal(BB.run("true").root(), constraints=c)
    for op in d.ops[:-1]:
        assert op.worker_constraints == ("arch==amd64",)
        assert op.metadata.ignore_cache
    # Op-level filters add to marshal-level ones.
    st = llb.image("busybox", constraints=llb.Constraints.of(worker_constraints=["os==linux"]))
    assert head(marshal(st, constraints=c)).worker_constraints == ("arch==amd64", "os==linux")


def test_marshal_platform():
    assert head(marshal(BB, platform="linux/arm64")).platform == llb.Platform("linux", "arm64")
    assert head(BB.marshal(llb.Platform("linux", "riscv64"))).platform == llb.Platform("linux", "riscv64")
    assert head(BB.marshal()).platform == llb.default_platform()


@pytest.mark.parametrize(
    "kwargs, error, fragment",
    [
        (dict(platform="linux"), llb.InvalidPlatformError, "marshal: invalid platform 'linux'"),
        (dict(platform="linux/amd64", constraints={"platform": "x"}), llb.InvalidArgumentError, "constraints must be a Constraints"),
        (dict(platform="linux/amd64", local_unique_id=""), llb.InvalidArgumentError, "local_unique_id"),
    ],
)
def test_marshal_errors(kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        BB.marshal(**kwargs)


def test_ops_are_written_in_go_field_order():
    """Op fields platform (10) and constraints (11) come before the op body (a oneof), as Go writes."""
    d = marshal(BB)
    data = d.defs[0]
    op = pb.Op.FromString(data)
    assert data != serialize(op)  # number order would put the body (field 3) first
    assert data == serialize_op(op)
    assert data.startswith(bytes([10 << 3 | 2]))  # platform first
    assert pb.Op.FromString(serialize(op)) == op  # same message either way


def test_load_round_trip():
    d = marshal(sample_state())
    loaded = llb.load(d.to_bytes())
    assert loaded == d
    assert loaded.digests == d.digests
    assert dict(loaded.metadata) == dict(d.metadata)
    assert loaded.to_bytes() == d.to_bytes()
    assert llb.Definition.from_bytes(d.to_bytes()).head == d.head


def test_load_errors():
    with pytest.raises(llb.InvalidDefinitionError, match="load: bytes do not decode"):
        llb.load(b"\xff\xff\xff")
    with pytest.raises(llb.InvalidDefinitionError, match="load: expected bytes"):
        llb.load("text")  # type: ignore[arg-type]
    dangling = pb.Definition()
    getattr(dangling, "def").append(serialize(pb.Op(inputs=[pb.Input(digest="sha256:" + "0" * 64)])))
    with pytest.raises(llb.InvalidDefinitionError, match="not an earlier op"):
        llb.load(serialize(dangling))
    bad_op = pb.Definition()
    getattr(bad_op, "def").append(b"\x0a\x05\xff")
    with pytest.raises(llb.InvalidDefinitionError, match="does not decode as pb.Op"):
        llb.load(serialize(bad_op))


def test_deep_graphs_marshal_without_recursion():
    st = BB
    for i in range(3000):
        st = st.run(["true", str(i)]).root()
    d = marshal(st)
    assert len(d) == 3002


def test_required_caps_are_supported_by_buildkitd():
    d = marshal(sample_state())
    assert d.required_caps() <= caps.SUPPORTED_CAPS
    assert caps.missing_caps(d.required_caps(), caps.SUPPORTED_CAPS) == []
    assert caps.missing_caps(d.required_caps(), {caps.SOURCE_IMAGE}) != []


def test_source_locations_are_collected():
    sm = llb.SourceMap("BUILD", b"container_image(...)", "python")
    where = sm.location(llb.Range(llb.Position(3, 1), llb.Position(5, 0)))
    st = llb.image("busybox", constraints=llb.Constraints.of(source_locations=[where]))
    d = marshal(st)
    source = pb.Definition.FromString(d.to_bytes()).Source
    assert [(i.filename, i.data, i.language) for i in source.infos] == [("BUILD", b"container_image(...)", "python")]
    locs = source.locations[d.digests[0]].locations
    assert locs[0].sourceIndex == 0 and locs[0].ranges[0].start.line == 3


# -- determinism across processes and interpreters ---------------------------------------------------

_SCRIPT = """
import hashlib, sys
from llbkit.testutil import llb_examples as examples, llb_testing as _testing
out = []
for ex in examples.catalogue("127.0.0.1:5000"):
    d = ex.state.marshal("linux/amd64", local_unique_id="ctx")
    out.append(ex.name + " " + hashlib.sha256(d.to_bytes()).hexdigest())
d = _testing.sample_state().marshal("linux/arm64")
out.append("sample " + hashlib.sha256(d.to_bytes()).hexdigest())
sys.stdout.write("\\n".join(out))
"""


def _fingerprints(python: str, seed: str) -> str:
    # This interpreter gets our sys.path (it may be a test venv or pex); another one gets only
    # the sources and must bring protobuf itself.
    path = os.pathsep.join(sys.path) if python == sys.executable else str(SRC_ROOT)
    env = dict(os.environ, PYTHONPATH=path, PYTHONHASHSEED=seed)
    return subprocess.run([python, "-c", _SCRIPT], env=env, capture_output=True, check=True, text=True).stdout


def _other_pythons():
    """Interpreters of other Python versions: $LLBKIT_OTHER_PYTHON (os.pathsep-separated), else
    python3.X on PATH. Only those that can import protobuf are used."""
    env = os.environ.get("LLBKIT_OTHER_PYTHON")
    candidates = env.split(os.pathsep) if env else [shutil.which(f"python3.{m}") for m in range(9, 16)]
    found = []
    for c in candidates:
        if not c:
            continue
        try:
            version = subprocess.run(
                [c, "-c", "import sys, google.protobuf; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True, text=True, check=True,
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            continue
        if version != "%d.%d" % sys.version_info[:2]:
            found.append(c)
    return found


def test_same_bytes_in_fresh_processes_with_different_hash_seeds():
    here = _fingerprints(sys.executable, "1")
    assert here == _fingerprints(sys.executable, "2") == _fingerprints(sys.executable, "12345")
    assert len(here.splitlines()) >= 23


def test_same_bytes_on_other_python_versions():
    others = _other_pythons()
    if not others:
        pytest.skip("no other Python version with protobuf (set LLBKIT_OTHER_PYTHON)")
    here = _fingerprints(sys.executable, "0")
    for other in others:
        assert _fingerprints(other, "0") == here, f"{other} marshals different bytes"


def test_digest_of():
    assert digest_of(b"") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
