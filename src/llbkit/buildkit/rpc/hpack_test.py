"""HPACK against RFC 7541's own examples (Appendix C.4: requests with Huffman coding)."""

from __future__ import annotations

import pytest

from llbkit.buildkit.rpc.hpack import Decoder, HpackError, encode, huffman_decode


def test_huffman_strings_of_the_rfc() -> None:
    assert huffman_decode(bytes.fromhex("f1e3c2e5f23a6ba0ab90f4ff")) == b"www.example.com"
    assert huffman_decode(bytes.fromhex("a8eb10649cbf")) == b"no-cache"
    assert huffman_decode(bytes.fromhex("25a849e95ba97d7f")) == b"custom-key"
    assert huffman_decode(bytes.fromhex("25a849e95bb8e8b4bf")) == b"custom-value"


def test_three_requests_share_the_dynamic_table() -> None:
    d = Decoder()
    assert d.decode(bytes.fromhex("828684418cf1e3c2e5f23a6ba0ab90f4ff")) == [
        (":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")]
    assert d.decode(bytes.fromhex("828684be5886a8eb10649cbf")) == [
        (":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com"),
        ("cache-control", "no-cache")]
    assert d.decode(bytes.fromhex("828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf")) == [
        (":method", "GET"), (":scheme", "https"), (":path", "/index.html"),
        (":authority", "www.example.com"), ("custom-key", "custom-value")]


def test_bad_blocks_are_errors() -> None:
    with pytest.raises(HpackError):
        Decoder().decode(b"\xff")  # an integer cut short
    with pytest.raises(HpackError):
        Decoder().decode(b"\xbe")  # index 62: no dynamic entry yet
    with pytest.raises(HpackError):
        Decoder().decode(b"\x80")  # index 0
    with pytest.raises(HpackError):
        huffman_decode(b"\x00")  # '0' then 3 bits of zero padding


def test_encoded_headers_read_back() -> None:
    headers = [(":status", "200"), ("content-type", "application/grpc"), ("grpc-message", "x" * 200)]
    assert Decoder().decode(encode(headers)) == headers
