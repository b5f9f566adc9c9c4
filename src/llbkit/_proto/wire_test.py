"""The generated modules describe BuildKit's wire format: method paths, stream kinds, field numbers.

The expected values are taken from BuildKit v0.32.2's and fsutil's own .proto files, not from ours.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from llbkit._proto import generate

MODULES = sorted(Path(p).stem for p in generate.proto_files())


@pytest.mark.parametrize("stem", MODULES)
def test_generated_modules_import(stem: str) -> None:
    importlib.import_module(f"llbkit._proto.{stem}_pb2")


def _module(stem: str):
    return importlib.import_module(f"llbkit._proto.{stem}_pb2")


# (module, service) -> {method: (client streams, server streams)}
SERVICES = {
    ("control", "moby.buildkit.v1.Control"): {
        "DiskUsage": (False, False),
        "Prune": (False, True),
        "Solve": (False, False),
        "Status": (False, True),
        "Session": (True, True),
        "ListWorkers": (False, False),
        "Info": (False, False),
        "ListenBuildHistory": (False, True),
        "UpdateBuildHistory": (False, False),
    },
    ("gateway", "moby.buildkit.v1.frontend.LLBBridge"): {
        "ResolveImageConfig": (False, False),
        "ResolveSourceMeta": (False, False),
        "Solve": (False, False),
        "ReadFile": (False, False),
        "ReadDir": (False, False),
        "StatFile": (False, False),
        "Evaluate": (False, False),
        "Ping": (False, False),
        "Return": (False, False),
        "Inputs": (False, False),
        "NewContainer": (False, False),
        "ReleaseContainer": (False, False),
        "ExecProcess": (True, True),
        "ReadFileContainer": (False, False),
        "ReadDirContainer": (False, False),
        "StatFileContainer": (False, False),
        "Warn": (False, False),
    },
    ("filesync", "moby.filesync.v1.FileSync"): {"DiffCopy": (True, True), "TarStream": (True, True)},
    ("filesync", "moby.filesync.v1.FileSend"): {"DiffCopy": (True, True)},
    ("auth", "moby.filesync.v1.Auth"): {
        "Credentials": (False, False),
        "FetchToken": (False, False),
        "GetTokenAuthority": (False, False),
        "VerifyTokenAuthority": (False, False),
    },
    ("secrets", "moby.buildkit.secrets.v1.Secrets"): {"GetSecret": (False, False)},
    ("sshforward", "moby.sshforward.v1.SSH"): {
        "CheckAgent": (False, False),
        "ForwardAgent": (True, True),
    },
    ("upload", "moby.upload.v1.Upload"): {"Pull": (True, True)},
}

# Request and response types of some methods (FileSync.DiffCopy carries fsutil Packets).
STREAM_TYPES = {
    "/moby.buildkit.v1.Control/Session": ("moby.buildkit.v1.BytesMessage",) * 2,
    "/moby.filesync.v1.FileSync/DiffCopy": ("fsutil.types.Packet",) * 2,
    "/moby.filesync.v1.FileSend/DiffCopy": ("moby.filesync.v1.BytesMessage",) * 2,
    "/moby.buildkit.v1.frontend.LLBBridge/Return": (
        "moby.buildkit.v1.frontend.ReturnRequest",
        "moby.buildkit.v1.frontend.ReturnResponse",
    ),
}


def _all_methods():
    for (stem, service), methods in SERVICES.items():
        for method in methods:
            yield stem, service, method


def test_services_have_exactly_upstreams_methods() -> None:
    for (stem, service), methods in SERVICES.items():
        package, _, name = service.rpartition(".")
        descriptor = _module(stem).DESCRIPTOR
        assert descriptor.package == package
        service_descriptor = descriptor.services_by_name[name]
        got = {m.name: (m.client_streaming, m.server_streaming) for m in service_descriptor.methods}
        assert got == methods, service


def test_method_paths_and_stream_types() -> None:
    by_path = {}
    for stem, service, method in _all_methods():
        name = service.rpartition(".")[2]
        m = _module(stem).DESCRIPTOR.services_by_name[name].methods_by_name[method]
        path = f"/{m.containing_service.full_name}/{m.name}"
        by_path[path] = (m.input_type.full_name, m.output_type.full_name)
    for path in (
        "/moby.buildkit.v1.Control/Solve",
        "/moby.buildkit.v1.Control/Session",
        "/moby.buildkit.v1.frontend.LLBBridge/Return",
        "/moby.filesync.v1.FileSync/DiffCopy",
        "/moby.filesync.v1.FileSend/DiffCopy",
        "/moby.filesync.v1.Auth/Credentials",
        "/moby.buildkit.secrets.v1.Secrets/GetSecret",
    ):
        assert path in by_path
    for path, types in STREAM_TYPES.items():
        assert by_path[path] == types, path


class _RecordingChannel:
    """Stands in for llbkit's channel and records what the stubs made from the service
    descriptors ask it for."""

    def __init__(self) -> None:
        self.calls: dict[str, str] = {}

    def __getattr__(self, kind: str):
        def make(path: str, *args, **kwargs):
            self.calls[path] = kind
            return object()

        return make


_CHANNEL_METHOD = {
    (False, False): "unary_unary",
    (False, True): "unary_stream",
    (True, True): "stream_stream",
}


def test_stubs_from_the_descriptors_call_the_upstream_paths() -> None:
    from llbkit.buildkit.rpc.stubs import Stub

    for (stem, service), methods in SERVICES.items():
        channel = _RecordingChannel()
        Stub(channel, _module(stem).DESCRIPTOR.services_by_name[service.rpartition('.')[2]])
        expected = {f"/{service}/{m}": _CHANNEL_METHOD[streams] for m, streams in methods.items()}
        assert channel.calls == expected, service


def _numbers(stem: str, message: str) -> dict[str, int]:
    descriptor = _module(stem).DESCRIPTOR.message_types_by_name[message]
    return {f.name: f.number for f in descriptor.fields}


def test_control_solve_request_field_numbers() -> None:
    n = _numbers("control", "SolveRequest")
    assert (n["Ref"], n["Definition"], n["Session"]) == (1, 2, 5)
    assert (n["Frontend"], n["FrontendAttrs"]) == (6, 7)
    assert (n["ExporterDeprecated"], n["ExporterAttrsDeprecated"]) == (3, 4)
    assert (n["Cache"], n["Entitlements"], n["FrontendInputs"], n["Internal"]) == (8, 9, 10, 11)
    assert (n["SourcePolicy"], n["Exporters"], n["EnableSessionExporter"]) == (12, 13, 14)
    assert max(n.values()) == 17
    assert _numbers("control", "Exporter") == {"Type": 1, "Attrs": 2}
    cache = _numbers("control", "CacheOptions")
    assert (cache["Exports"], cache["Imports"]) == (4, 5)
    status = _numbers("control", "StatusResponse")
    assert status == {"vertexes": 1, "statuses": 2, "logs": 3, "warnings": 4}
    assert _numbers("control", "BytesMessage") == {"data": 1}


def test_deprecated_usage_record_parent_is_marked() -> None:
    field = _module("control").UsageRecord.DESCRIPTOR.fields_by_name["Parent"]
    assert field.number == 5 and field.GetOptions().deprecated


def test_gateway_field_numbers() -> None:
    n = _numbers("gateway", "SolveRequest")
    assert (n["Definition"], n["Frontend"], n["FrontendOpt"]) == (1, 2, 3)
    assert (n["allowResultReturn"], n["allowResultArrayRef"]) == (5, 6)
    assert (n["Final"], n["CacheImports"], n["FrontendInputs"], n["Evaluate"]) == (10, 12, 13, 14)
    assert 4 not in n.values()
    assert _numbers("gateway", "Result") == {
        "refDeprecated": 1,
        "refsDeprecated": 2,
        "ref": 3,
        "refs": 4,
        "metadata": 10,
        "attestations": 12,
    }
    result = _module("gateway").Result.DESCRIPTOR
    oneof = [f.name for f in result.oneofs_by_name["result"].fields]
    assert oneof == ["refDeprecated", "refsDeprecated", "ref", "refs"]
    assert _numbers("gateway", "ReturnRequest") == {"result": 1, "error": 2}
    assert _numbers("gateway", "Ref") == {"id": 1, "def": 2}
    r = _numbers("gateway", "ResolveImageConfigRequest")
    assert (r["Ref"], r["Platform"], r["ResolveMode"], r["LogName"]) == (1, 2, 3, 4)
    assert (r["ResolverType"], r["SessionID"], r["StoreID"], r["SourcePolicies"]) == (5, 6, 7, 8)
    assert _numbers("gateway", "ResolveImageConfigResponse") == {"Digest": 1, "Config": 2, "Ref": 3}
    assert _numbers("gateway", "SolveResponse") == {"ref": 1, "result": 3}
    assert _numbers("gateway", "PongResponse") == {"FrontendAPICaps": 1, "LLBCaps": 2, "Workers": 3}


def test_cross_file_types_resolve_to_the_right_packages() -> None:
    gw = _module("gateway")
    assert gw.Ref.DESCRIPTOR.fields_by_name["def"].message_type.full_name == "pb.Definition"
    error = gw.ReturnRequest.DESCRIPTOR.fields_by_name["error"]
    assert error.message_type.full_name == "llbkit.rpc.Status"
    stat = gw.StatFileResponse.DESCRIPTOR.fields_by_name["stat"]
    assert stat.message_type.full_name == "fsutil.types.Stat"
    worker = _module("worker").WorkerRecord.DESCRIPTOR
    assert worker.full_name == "moby.buildkit.v1.types.WorkerRecord"
    assert worker.fields_by_name["platforms"].message_type.full_name == "pb.Platform"
    assert _numbers("worker", "WorkerRecord") == {
        "ID": 1,
        "Labels": 2,
        "platforms": 3,
        "GCPolicy": 4,
        "BuildkitVersion": 5,
        "CDIDevices": 6,
    }


def test_fsutil_packet_and_stat() -> None:
    fs = _module("fsutil_types")
    assert _numbers("fsutil_types", "Packet") == {"type": 1, "stat": 2, "ID": 3, "data": 4}
    assert dict(fs.Packet.PacketType.items()) == {
        "PACKET_STAT": 0,
        "PACKET_REQ": 1,
        "PACKET_DATA": 2,
        "PACKET_FIN": 3,
        "PACKET_ERR": 4,
    }
    assert _numbers("fsutil_types", "Stat") == {
        "path": 1,
        "mode": 2,
        "uid": 3,
        "gid": 4,
        "size": 5,
        "modTime": 6,
        "linkname": 7,
        "devmajor": 8,
        "devminor": 9,
        "xattrs": 10,
    }
    # A request for file #5 (tag 1 varint 1, tag 3 varint 5), byte for byte.
    assert fs.Packet(type=fs.Packet.PACKET_REQ, ID=5).SerializeToString() == b"\x08\x01\x18\x05"
    # An empty PACKET_STAT (end of listing) is the empty message.
    assert fs.Packet(type=fs.Packet.PACKET_STAT).SerializeToString() == b""


def test_session_service_messages() -> None:
    assert _numbers("auth", "CredentialsResponse") == {"Username": 1, "Secret": 2}
    assert _numbers("auth", "FetchTokenRequest") == {
        "ClientID": 1,
        "Host": 2,
        "Realm": 3,
        "Service": 4,
        "Scopes": 5,
    }
    assert _numbers("secrets", "GetSecretRequest") == {"ID": 1, "annotations": 2}
    assert _numbers("secrets", "GetSecretResponse") == {"data": 1}
    assert _numbers("filesync", "BytesMessage") == {"data": 1}
    assert _numbers("rpc_status", "Status") == {"code": 1, "message": 2, "details": 3}
    assert _numbers("caps", "APICap") == {
        "ID": 1,
        "Enabled": 2,
        "Deprecated": 3,
        "DisabledReason": 4,
        "DisabledReasonMsg": 5,
        "DisabledAlternative": 6,
    }
