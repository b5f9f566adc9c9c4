from __future__ import annotations

import json

import pytest

from llbkit import gojson
from llbkit.gojson import go_json


@pytest.mark.parametrize(
    "value, text",
    [
        ("a<b>&c", '"a\\u003cb\\u003e\\u0026c"'),
        ('q"\\', '"q\\"\\\\"'),
        ("\n\r\t\b\f", '"\\n\\r\\t\\b\\f"'),
        ("\x00\x1f\x7f", '"\\u0000\\u001f\x7f"'),
        ("é€😀", '"é€😀"'),
        ("\u2028\u2029", '"\\u2028\\u2029"'),
        ({"b": 1, "a": [True, False, None]}, '{"b":1,"a":[true,false,null]}'),
        ([], "[]"),
        (-(2**63), "-9223372036854775808"),
    ],
)
def test_go_json(value, text):
    assert go_json(value) == text
    assert json.loads(text) == value


def test_gojson_matches_go_marshal_indent_conventions():
    doc = {"b": "x<y>&z\u2028", "a": [], "c": {}, "d": [1], "e": "é"}
    assert gojson.indent(doc) == (
        '{\n  "b": "x\\u003cy\\u003e\\u0026z\\u2028",\n  "a": [],\n  "c": {},\n'
        '  "d": [\n    1\n  ],\n  "e": "é"\n}'
    ).encode()
    assert gojson.compact({"z": 1, "a": [1, 2]}) == b'{"z":1,"a":[1,2]}'


def test_lone_surrogates_become_replacement_characters_and_floats_are_refused():
    assert go_json("a\ud800b") == '"a\ufffdb"'
    with pytest.raises(TypeError, match="float"):
        go_json({"x": [1.5]})
