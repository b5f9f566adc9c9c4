"""HPACK (RFC 7541), the header compression of HTTP/2: what the session's own HTTP/2 server needs.

:class:`Decoder` reads every representation a peer may send (indexed fields, literals with and
without indexing, dynamic table size updates, Huffman-coded strings), keeping the connection's
dynamic table. :func:`encode` writes the few headers a gRPC server sends, as literals that never
enter a table and are never Huffman-coded (always valid, and the peer's decoder is cheap).

The Huffman code of RFC 7541 (Appendix B) is canonical: each symbol's code follows from the code
lengths alone (symbols ordered by length, then value, take consecutive codes), so only the 257
lengths are written here (:data:`_LENGTHS`, 5 + the letter's offset from ``A``; EOS is 30).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from llbkit.errors import SessionError

__all__ = ["Decoder", "HpackError", "encode", "huffman_decode"]

Header = Tuple[str, str]


class HpackError(SessionError):
    """A header block that does not decode (a protocol error of the peer)."""


# The static table (RFC 7541 Appendix A), index 1 first.
STATIC: Tuple[Header, ...] = (
    (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"),
    (":path", "/index.html"), (":scheme", "http"), (":scheme", "https"), (":status", "200"),
    (":status", "204"), (":status", "206"), (":status", "304"), (":status", "400"),
    (":status", "404"), (":status", "500"), ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""),
    ("accept", ""), ("access-control-allow-origin", ""), ("age", ""), ("allow", ""),
    ("authorization", ""), ("cache-control", ""), ("content-disposition", ""),
    ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
    ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""),
    ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""),
    ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
    ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""),
    ("max-forwards", ""), ("proxy-authenticate", ""), ("proxy-authorization", ""), ("range", ""),
    ("referer", ""), ("refresh", ""), ("retry-after", ""), ("server", ""), ("set-cookie", ""),
    ("strict-transport-security", ""), ("transfer-encoding", ""), ("user-agent", ""),
    ("vary", ""), ("via", ""), ("www-authenticate", ""),
)

_LENGTHS = (
    "ISXXXXXXXTZXXZXXXXXXXXZXXXXXXXXXBFFHIBDGFFDGDBBBAAABBBBBBBCDKBHFIBCCCCCCCCCCCCCCCCCCCCCCDCDIOI"
    "JBKABABABBBACCBBBABCBAABCCCCCKGJIXPRPPRRRSRSSSSSTSTTRSTSSSSQRSRSSTRQPRRSSQSRRTQRSSQQRQSRSSPRRRS"
    "RRSVVPORSRUVVVWWVTUOQVWWVWTQQVVXWWWPTPQRQQSRRUUTTVSVWVVWWWWWXWWWWWV"
)
_EOS = 256


def _huffman_table() -> Dict[Tuple[int, int], int]:
    """``(length, code) -> symbol`` of the canonical code."""
    lengths = [ord(c) - ord("A") + 5 for c in _LENGTHS] + [30]
    order = sorted(range(257), key=lambda s: (lengths[s], s))
    table: Dict[Tuple[int, int], int] = {}
    code, prev = 0, lengths[order[0]]
    for i, sym in enumerate(order):
        if i:
            code = (code + 1) << (lengths[sym] - prev)
        prev = lengths[sym]
        table[(lengths[sym], code)] = sym
    return table


_HUFFMAN: Optional[Dict[Tuple[int, int], int]] = None
_MIN_LENGTH = 5


def huffman_decode(data: bytes) -> bytes:
    global _HUFFMAN
    if _HUFFMAN is None:
        _HUFFMAN = _huffman_table()
    table = _HUFFMAN
    out = bytearray()
    code = length = 0
    for byte in data:
        for shift in range(7, -1, -1):
            code = (code << 1) | ((byte >> shift) & 1)
            length += 1
            if length >= _MIN_LENGTH:
                sym = table.get((length, code))
                if sym is not None:
                    if sym == _EOS:  # RFC 7541 5.2: a decoding error
                        raise HpackError("a Huffman-coded string holds EOS")
                    out.append(sym)
                    code = length = 0
            if length > 30:
                raise HpackError("a Huffman-coded string holds an unknown code")
    # What is left must be padding: fewer than 8 bits, all ones (a prefix of EOS).
    if length > 7 or code != (1 << length) - 1:
        raise HpackError("a Huffman-coded string ends with bad padding")
    return bytes(out)


def _integer(data: bytes, pos: int, prefix: int) -> Tuple[int, int]:
    """An integer with an N-bit prefix at ``data[pos]``: ``(value, next position)``."""
    mask = (1 << prefix) - 1
    value = data[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    shift = 0
    while True:
        if pos >= len(data):
            raise HpackError("a header block ends inside an integer")
        b = data[pos]
        pos += 1
        value += (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos
        if shift > 56:
            raise HpackError("an integer in a header block is too large")


def _string(data: bytes, pos: int) -> Tuple[str, int]:
    if pos >= len(data):
        raise HpackError("a header block ends before a string")
    huffman = data[pos] & 0x80
    length, pos = _integer(data, pos, 7)
    end = pos + length
    if end > len(data):
        raise HpackError("a header block ends inside a string")
    raw = bytes(data[pos:end])
    if huffman:
        raw = huffman_decode(raw)
    return raw.decode("latin-1"), end


class Decoder:
    """One connection's header block decoder (its dynamic table lives across blocks)."""

    def __init__(self, max_table_size: int = 4096) -> None:
        self.max_table_size = max_table_size  # what we allow (SETTINGS_HEADER_TABLE_SIZE)
        self._size_limit = max_table_size  # what the peer set last (a size update)
        self._dynamic: List[Header] = []  # newest first
        self._size = 0

    def _entry(self, index: int) -> Header:
        if index <= 0:
            raise HpackError("header index 0")
        if index <= len(STATIC):
            return STATIC[index - 1]
        i = index - len(STATIC) - 1
        if i >= len(self._dynamic):
            raise HpackError(f"header index {index} is past the tables")
        return self._dynamic[i]

    def _add(self, header: Header) -> None:
        size = len(header[0]) + len(header[1]) + 32
        self._dynamic.insert(0, header)
        self._size += size
        self._evict()

    def _evict(self) -> None:
        while self._size > self._size_limit and self._dynamic:
            name, value = self._dynamic.pop()
            self._size -= len(name) + len(value) + 32

    def decode(self, block: bytes) -> List[Header]:
        out: List[Header] = []
        pos = 0
        while pos < len(block):
            b = block[pos]
            if b & 0x80:  # indexed field
                index, pos = _integer(block, pos, 7)
                out.append(self._entry(index))
            elif b & 0x40:  # literal with incremental indexing
                index, pos = _integer(block, pos, 6)
                header, pos = self._literal(block, pos, index)
                self._add(header)
                out.append(header)
            elif b & 0x20:  # dynamic table size update
                size, pos = _integer(block, pos, 5)
                if size > self.max_table_size:
                    raise HpackError(f"table size update to {size}, above the {self.max_table_size} allowed")
                self._size_limit = size
                self._evict()
            else:  # literal without indexing (0000) or never indexed (0001)
                index, pos = _integer(block, pos, 4)
                header, pos = self._literal(block, pos, index)
                out.append(header)
        return out

    def _literal(self, block: bytes, pos: int, index: int) -> Tuple[Header, int]:
        if index:
            name = self._entry(index)[0]
        else:
            name, pos = _string(block, pos)
        value, pos = _string(block, pos)
        return (name, value), pos


def _encode_integer(value: int, prefix: int, first: int) -> bytes:
    mask = (1 << prefix) - 1
    if value < mask:
        return bytes([first | value])
    out = bytearray([first | mask])
    value -= mask
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode(headers: Sequence[Header]) -> bytes:
    """A header block: ``:status: 200`` indexed, everything else a literal never indexed."""
    out = bytearray()
    for name, value in headers:
        if (name, value) == (":status", "200"):
            out.append(0x88)
            continue
        n, v = name.encode("latin-1"), value.encode("latin-1")
        out += b"\x10" + _encode_integer(len(n), 7, 0) + n + _encode_integer(len(v), 7, 0) + v
    return bytes(out)
