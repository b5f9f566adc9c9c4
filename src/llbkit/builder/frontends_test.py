"""Choosing a Dockerfile's frontend without a daemon: the `# syntax=` directive found as
BuildKit's parser finds it, and a custom frontend always pinned by digest."""

from __future__ import annotations

import pytest

from llbkit.builder.frontends import (
    Syntax,
    UnpinnedFrontendError,
    detect_syntax,
    dockerfile_frontend,
    gateway_frontend,
    named_input,
)

D = "sha256:" + "12" * 32


@pytest.mark.parametrize("text, want", [
    ("# syntax=docker/dockerfile:1.7\nFROM x\n", Syntax("docker/dockerfile:1.7", "docker/dockerfile:1.7", 1)),
    ("#syntax = reg/fe:1 --flag v\nFROM x\n", Syntax("reg/fe:1", "reg/fe:1 --flag v", 1)),
    ("# escape=`\n# SYNTAX=reg/fe:1\nFROM x\n", Syntax("reg/fe:1", "reg/fe:1", 2)),
    ("\ufeff#!/usr/bin/env buildctl\n# syntax=reg/fe:1\n", Syntax("reg/fe:1", "reg/fe:1", 2)),
    ("// syntax=reg/fe:1\n{}", Syntax("reg/fe:1", "reg/fe:1", 1)),
    ('{"syntax": "reg/fe:1", "files": {}}', Syntax("reg/fe:1", "reg/fe:1", 0)),
    ("FROM x\n# syntax=reg/fe:1\n", None),  # directives only lead the file
    ("# a comment\n# syntax=reg/fe:1\n", None),  # a comment ends the directives
    ("# unknown=1\n# syntax=reg/fe:1\n", None),  # so does an unknown key
    ("", None),
])
def test_the_syntax_directive_is_found_as_buildkit_finds_it(text: str, want: object) -> None:
    assert detect_syntax(text.encode()) == want


def test_a_plain_dockerfile_runs_buildkits_own_frontend() -> None:
    call = dockerfile_frontend(b"FROM x\n", (("target", "a"),))
    assert call.name == "dockerfile.v0" and call.opts == {"target": "a"}


def test_a_syntax_directive_runs_its_image_through_the_gateway_pinned() -> None:
    df = b"# syntax=reg/fe:1 --x\nFROM x\n"
    call = dockerfile_frontend(df, (("platform", "linux/amd64"),), pins={"reg/fe:1": D})
    assert call.name == "gateway.v0"
    assert call.opts == {"platform": "linux/amd64", "source": f"reg/fe:1@{D}", "cmdline": "reg/fe:1 --x"}
    with pytest.raises(UnpinnedFrontendError, match=r"app.Dockerfile:1: # syntax=: .*'reg/fe:1' is not pinned"):
        dockerfile_frontend(df, filename="app.Dockerfile")
    pinned = f"# syntax=reg/fe@{D}\n".encode()
    assert dockerfile_frontend(pinned).opts["source"] == f"reg/fe@{D}"


def test_the_buildkit_syntax_build_arg_wins_over_the_directive() -> None:
    call = dockerfile_frontend(b"# syntax=reg/other:1\n", (("build-arg:BUILDKIT_SYNTAX", f"reg/fe@{D}"),))
    assert call.opts["source"] == f"reg/fe@{D}" and call.opts["cmdline"] == f"reg/fe@{D}"


def test_a_frontend_image_field_is_a_gateway_call() -> None:
    call = gateway_frontend(f"reg/fe@{D}", (("filename", "build.json"),))
    assert call.name == "gateway.v0" and call.opts == {"filename": "build.json", "source": f"reg/fe@{D}"}
    with pytest.raises(UnpinnedFrontendError):
        gateway_frontend("reg/fe:latest")


def test_a_named_input_carries_the_images_llb_and_config_as_go_encodes_them() -> None:
    import base64
    import json

    opts, inp = named_input("app-base", b"LLB", b'{"config":{}}')
    assert inp == ("app-base", b"LLB")
    assert opts["context:app-base"] == "input:app-base"
    meta = json.loads(opts["input-metadata:app-base"])
    assert base64.b64decode(meta["containerimage.config"]) == b'{"config":{}}'  # Go's []byte in JSON
    assert named_input("x", b"LLB")[0] == {"context:x": "input:x"}
