"""gRPC's client half on the wire: request headers, message framing, trailers, text encodings."""

from __future__ import annotations

import base64

import pytest

from llbkit.buildkit.rpc.status import (
    RpcError,
    StatusCode,
    decode_timeout,
    encode_timeout,
    percent_decode,
    percent_encode,
)
from llbkit.buildkit.rpc.wire import Deframer, check_response_headers, frame_message, metadata_of, request_headers, status_of


def test_request_headers_carry_path_timeout_and_metadata() -> None:
    h = request_headers("/moby.buildkit.v1.Control/Solve", "localhost", timeout=2.5,
                        metadata=[("Buildkit-ControlAPI-BuildID", "abc"), ("x-key-bin", b"\x00\xff\x01")])
    assert h[:6] == [(":method", "POST"), (":scheme", "http"), (":path", "/moby.buildkit.v1.Control/Solve"),
                     (":authority", "localhost"), ("content-type", "application/grpc"), ("te", "trailers")]
    d = dict(h)
    assert d["grpc-timeout"] == "2500000u"
    assert d["buildkit-controlapi-buildid"] == "abc"
    assert d["x-key-bin"] == base64.b64encode(b"\x00\xff\x01").decode().rstrip("=")
    assert "grpc-timeout" not in dict(request_headers("/a/b", "x"))


def test_timeouts_use_at_most_eight_digits_rounded_up() -> None:
    assert encode_timeout(0.001) == "1000000n"
    assert encode_timeout(30) == "30000000u"
    assert encode_timeout(1e6) == "1000000S" and encode_timeout(1e9) == "16666667M"
    assert decode_timeout("30000000u") == pytest.approx(30)
    assert decode_timeout("5S") == 5 and decode_timeout("1H") == 3600
    assert decode_timeout("123456789S") is None and decode_timeout("5x") is None


def test_deframer_splits_messages_across_any_boundaries() -> None:
    stream = frame_message(b"a") + frame_message(b"") + frame_message(b"x" * 1000)
    for cut in (1, 4, 5, 6, 7, 500, len(stream) - 1):
        d = Deframer(1 << 20)
        assert d.feed(stream[:cut]) + d.feed(stream[cut:]) == [b"a", b"", b"x" * 1000]
        assert d.pending == 0
    assert Deframer(10).feed(frame_message(b"whole")) == [b"whole"]


def test_deframer_refuses_compressed_and_oversized_messages() -> None:
    with pytest.raises(RpcError) as e:
        Deframer(10).feed(b"\x01" + (3).to_bytes(4, "big") + b"abc")
    assert e.value.code() is StatusCode.INTERNAL
    with pytest.raises(RpcError) as e:
        Deframer(10).feed(frame_message(b"y" * 11))
    assert e.value.code() is StatusCode.RESOURCE_EXHAUSTED and "larger than max" in e.value.details()


def test_status_from_trailers_with_percent_decoded_message_and_binary_details() -> None:
    assert status_of([("grpc-status", "0")]) is None
    details = b"\x08\x05\x12\x03abc"
    err = status_of([("grpc-status", "5"), ("grpc-message", "no such job %E2%9C%93 100%25"),
                     ("grpc-status-details-bin", base64.b64encode(details).decode().rstrip("=")),
                     ("x-other", "v")])
    assert err is not None and err.code() is StatusCode.NOT_FOUND
    assert err.details() == "no such job \u2713 100%"
    assert dict(err.trailing_metadata()) == {"grpc-status-details-bin": details, "x-other": "v"}
    assert status_of([("grpc-status", "99")]).code() is StatusCode.UNKNOWN  # type: ignore[union-attr]
    assert status_of([]).code() is StatusCode.UNKNOWN  # type: ignore[union-attr]


def test_percent_encoding_round_trips_and_tolerates_stray_percents() -> None:
    text = "failed: \u00e9t\u00e9 100%\nnext line"
    encoded = percent_encode(text)
    assert encoded.isascii() and "\n" not in encoded and percent_decode(encoded) == text
    assert percent_decode("50%") == "50%" and percent_decode("%zz%4") == "%zz%4"
    assert percent_decode("plain") == "plain"


def test_responses_that_are_not_grpc_are_told_by_their_http_status() -> None:
    assert check_response_headers([(":status", "200"), ("content-type", "application/grpc+proto")]) is None
    err = check_response_headers([(":status", "404"), ("content-type", "text/html")])
    assert err is not None and err.code() is StatusCode.UNIMPLEMENTED and "HTTP status 404" in err.details()
    err = check_response_headers([(":status", "200"), ("content-type", "text/html")])
    assert err is not None and err.code() is StatusCode.UNKNOWN


def test_metadata_drops_grpc_own_headers_and_bad_binary_values() -> None:
    md = metadata_of([(":status", "200"), ("content-type", "application/grpc"), ("grpc-status", "0"),
                      ("a", "1"), ("b-bin", "AAE"), ("c-bin", "!!notbase64!!")])
    assert md == (("a", "1"), ("b-bin", b"\x00\x01"))
