"""The content service over the session's gRPC server on a unix socket, called the way buildkitd's
proxy store calls it (llbkit's gRPC client)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile

from llbkit.buildkit.rpc.channel import Channel
from llbkit.buildkit.rpc.status import RpcError, StatusCode
from llbkit.buildkit.rpc.transport import Endpoint
from llbkit.buildkit.session.socket_server import SocketServer
import pytest

from llbkit._proto import content_pb2 as cpb
from llbkit.buildkit.rpc.stubs import Stub
from llbkit.oci.store import OCIStore
from llbkit.buildkit.session.content import STORE_ID_HEADER, content_handler


@pytest.fixture
def stub(tmp_path):
    sock_dir = tempfile.mkdtemp(prefix="llbkit-content-test-")  # beside the store, not in it
    sock = os.path.join(sock_dir, "s.sock")
    server = SocketServer([content_handler({"local:x": OCIStore(str(tmp_path))})], sock)
    channel = Channel(Endpoint(path=sock))
    yield Stub(channel, cpb.DESCRIPTOR.services_by_name["Content"])
    channel.close()
    server.close()
    shutil.rmtree(sock_dir)


MD = ((STORE_ID_HEADER, "local:x"),)


def _write(stub, data: bytes, ref: str = "ref"):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    reqs = [
        cpb.WriteContentRequest(action=cpb.STAT, ref=ref, total=len(data), expected=digest),
        cpb.WriteContentRequest(action=cpb.WRITE, offset=0, data=data[:10]),
        cpb.WriteContentRequest(action=cpb.COMMIT, offset=10, data=data[10:], total=len(data), expected=digest),
    ]
    return digest, list(stub.Write(iter(reqs), metadata=MD))


def test_write_then_read_and_info(stub, tmp_path):
    data = b"0123456789abcdefghij" * 100
    digest, resps = _write(stub, data)
    assert [r.action for r in resps] == [cpb.STAT, cpb.WRITE, cpb.COMMIT]
    assert [r.offset for r in resps] == [0, 10, len(data)] and resps[-1].digest == digest
    assert stub.Info(cpb.InfoRequest(digest=digest), metadata=MD).info.size == len(data)
    got = b"".join(r.data for r in stub.Read(cpb.ReadContentRequest(digest=digest, offset=5), metadata=MD))
    assert got == data[5:]
    assert [i.digest for r in stub.List(cpb.ListContentRequest(), metadata=MD) for i in r.info] == [digest]


def test_existing_blob_is_already_exists(stub):
    data = b"x" * 50
    _write(stub, data)
    with pytest.raises(RpcError) as ei:
        _write(stub, data, ref="other")
    assert ei.value.code() == StatusCode.ALREADY_EXISTS  # buildkitd skips the blob


def test_wrong_digest_fails_the_commit(stub):
    reqs = [cpb.WriteContentRequest(action=cpb.COMMIT, ref="r", data=b"abc", expected="sha256:" + "0" * 64)]
    with pytest.raises(RpcError) as ei:
        list(stub.Write(iter(reqs), metadata=MD))
    assert ei.value.code() == StatusCode.FAILED_PRECONDITION and "unexpected digest" in ei.value.details()


def test_store_is_chosen_by_metadata(stub):
    with pytest.raises(RpcError) as ei:
        stub.Info(cpb.InfoRequest(digest="sha256:" + "0" * 64), metadata=((STORE_ID_HEADER, "local:y"),))
    assert ei.value.code() == StatusCode.NOT_FOUND and "unknown store" in ei.value.details()
    with pytest.raises(RpcError) as ei:
        stub.Info(cpb.InfoRequest(digest="sha256:" + "0" * 64))
    assert ei.value.code() == StatusCode.INVALID_ARGUMENT
