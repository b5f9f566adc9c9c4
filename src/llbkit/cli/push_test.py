"""`llbkit push` without a registry: references, bad input, and that it needs no grpc."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import llbkit
from llbkit.cli.main import main
from llbkit.cli.push import PushTarget, group_references
from llbkit.errors import LlbkitError
from llbkit.testutil.oci_images import two_platform_layout


def test_references_are_grouped_by_repository_in_order() -> None:
    assert group_references([
        "r.example.com/acme/app:1.0", "127.0.0.1:5000/acme/app:1.0", "r.example.com/acme/app:latest",
        "r.example.com/acme/app:1.0", "localhost/acme/other",
    ]) == [
        PushTarget("r.example.com", "acme/app", ("1.0", "latest")),
        PushTarget("127.0.0.1:5000", "acme/app", ("1.0",)),
        PushTarget("localhost", "acme/other", ()),
    ]


@pytest.mark.parametrize(
    "ref, fragment",
    [
        ("acme/app:1.0", "names no registry"),  # would silently go to Docker Hub
        ("r.example.com/acme/app@sha256:" + "0" * 64, "names a digest"),
        ("r.example.com/Acme/App:1", "must be lowercase"),
    ],
)
def test_bad_references(ref: str, fragment: str) -> None:
    with pytest.raises(LlbkitError, match=fragment):
        group_references([ref])


def test_missing_layout_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["push", "--layout", str(tmp_path / "app.oci.tar"), "r.example.com/acme/app:1"]) == 1
    err = capsys.readouterr().err
    assert "no image at" in err and "app.oci.tar" in err and "pants package" in err
    assert "Traceback" not in err


def test_a_layout_with_two_images_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    layout = two_platform_layout(tmp_path / "two", nested=False)  # index.json names two manifests
    index = json.loads((layout / "index.json").read_text())
    assert len({m["digest"] for m in index["manifests"]}) == 2
    assert main(["push", "--layout", str(layout), "127.0.0.1:1/acme/app:1"]) == 1
    assert "names 2 different images" in capsys.readouterr().err


def test_push_imports_no_grpc(tmp_path: Path) -> None:
    # `pants publish` runs `python -m llbkit push` with an interpreter that may lack grpcio.
    src = os.path.dirname(os.path.dirname(os.path.abspath(llbkit.__file__)))
    code = ("import sys; from llbkit.cli.main import main; "
            f"rc = main(['push', '--layout', {str(tmp_path / 'none')!r}, 'r.example.com/a:1']); "
            "print(rc, sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'google')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": src})
    assert res.stdout.strip() == "1 []", res.stdout + res.stderr
