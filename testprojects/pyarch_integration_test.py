"""The multi-arch Python sample (`testprojects/pyarch`) end to end, in a copy of this repo: each
platform's variant gets a PEX built for that platform's interpreter (the base's python3 inspected
on linux/amd64 natively and on linux/arm64 under qemu), its native module imports and reports
its machine, its wheels are its platform's (read from the PEX's own PEX-INFO), a pure-Python PEX
is shared, a requirement without a wheel for a platform is an error before any solve, and
rebuilding with nothing changed solves nothing, under pantsd and with `--no-pantsd`.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
import zipfile
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from checkout import Checkout
from llbkit.testutil.layers import layout_images
from llbkit.testutil.procs import make_temp_dir, remove_tree
from llbkit.testutil.run_image import run_image

TARGETS = ("testprojects/pyarch:pyarch", "testprojects/pyarch:pure_image")
MACHINES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}


@pytest.fixture(scope="module")
def base_dir() -> Iterator[Path]:
    path = make_temp_dir("pyarch", need_socket_room=len("/cache-xx/buildkitd/buildkitd.sock"))
    yield path
    remove_tree(path)


@pytest.fixture(scope="module")
def ws(base_dir: Path) -> Iterator[Checkout]:
    # A store of its own: the inspections, the PEXes and the images are all built by this run.
    ws = Checkout(base_dir, "py", pantsd=True, own_store=True)
    try:
        ws.first = ws.package(targets=TARGETS).check()  # type: ignore[attr-defined]
        yield ws
    finally:
        ws.close()


def _record(ws: Checkout, name: str) -> Dict[str, Any]:
    return json.loads((ws.repo / "dist/testprojects/pyarch" / f"{name}.image.json").read_text())


def _layer_file(tar_path: Path, layer_digest: str, name: str) -> bytes:
    with tarfile.open(tar_path) as t:
        f = t.extractfile(f"blobs/sha256/{layer_digest.split(':', 1)[1]}")
        assert f is not None
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    with tarfile.open(fileobj=io.BytesIO(data)) as layer:
        member = layer.extractfile(name)
        assert member is not None, f"{name} is not in layer {layer_digest}"
        return member.read()


def _pex_distributions(pex: bytes) -> List[str]:
    with zipfile.ZipFile(io.BytesIO(pex)) as z:
        return sorted(json.loads(z.read("PEX-INFO"))["distributions"])


def test_the_base_interpreter_was_inspected_once_per_platform(ws: Checkout) -> None:
    log = ws.first.log  # type: ignore[attr-defined]
    inspected = re.findall(r"Completed: Inspecting the python3 of (\S+) on (\S+)", log)
    # both images share one base: one inspection per platform, not per image
    assert sorted(inspected) == [("127.0.0.1:5050/llbkit/python3:3.11", "linux/amd64"),
                                 ("127.0.0.1:5050/llbkit/python3:3.11", "linux/arm64")], log[-3000:]


@pytest.mark.parametrize("platform", ["linux/amd64", "linux/arm64"])
def test_each_variant_imports_its_native_module_and_reports_its_machine(ws: Checkout, platform: str) -> None:
    out = json.loads(run_image(ws.image("pyarch/pyarch"), platform).check().stdout)
    machine = MACHINES[platform]
    assert out["machine"] == machine
    assert out["escaped"] == "&lt;pyarch&gt;"
    assert out["speedups"].endswith(f"/markupsafe/_speedups.cpython-311-{machine}-linux-gnu.so"), out
    assert f"manylinux_2_17_{machine}" in out["speedups"], out


def test_the_app_layers_differ_and_each_pex_holds_its_platforms_wheels(ws: Checkout) -> None:
    tar = ws.image("pyarch/pyarch")
    images = layout_images(tar)
    assert set(images) == set(MACHINES)
    amd, arm = images["linux/amd64"], images["linux/arm64"]
    assert amd.layers[-1] != arm.layers[-1]  # the app layer
    for platform, image in images.items():
        dists = _pex_distributions(_layer_file(tar, image.layers[-1], "app/app.pex"))
        markupsafe = [d for d in dists if d.lower().startswith("markupsafe-")]
        assert len(markupsafe) == 1, dists
        assert "-cp311-cp311-" in markupsafe[0] and f"_{MACHINES[platform]}" in markupsafe[0], dists
        other = {"linux/amd64": "aarch64", "linux/arm64": "x86_64"}[platform]
        assert not [d for d in dists if other in d], dists


def test_image_json_and_llb_say_what_each_pex_was_built_for(ws: Checkout) -> None:
    (copy,) = _record(ws, "pyarch")["copies"]
    assert copy["target"] == "testprojects/pyarch:app" and copy["shared"] is False
    for entry in copy["platforms"]:
        built_for = entry["built_for"]
        assert built_for["source"] == "inspected"
        assert built_for["machine"] == MACHINES[entry["platform"]] and built_for["python"].startswith("3.11.")
        assert built_for["base_digest"].startswith("sha256:")
    assert copy["platforms"][0]["sha256"] != copy["platforms"][1]["sha256"]
    llb = ws.pants("llb", "testprojects/pyarch:pyarch").check().log
    assert re.search(r"# testprojects/pyarch:pyarch steps\[0\] copies testprojects/pyarch:app built for "
                     r"linux/arm64: python3 3\.11\.\d+ on aarch64, inspected in ", llb), llb[-3000:]


def test_a_pure_python_pex_is_shared_by_both_variants(ws: Checkout) -> None:
    (copy,) = _record(ws, "pure_image")["copies"]
    assert copy["shared"] is True
    assert len({p["sha256"] for p in copy["platforms"]}) == 1
    images = layout_images(ws.image("pyarch/pure_image"))
    assert images["linux/amd64"].layers[-1] == images["linux/arm64"].layers[-1]  # one blob
    for platform, machine in MACHINES.items():
        assert run_image(ws.image("pyarch/pure_image"), platform).check().stdout == f"pure Python on {machine}\n"


# A linux/s390x interpreter: the lockfile has no markupsafe wheel for it.
S390X = {
    "path": "/usr/bin/python3",
    "compatible_tags": [f"cp311-cp311-manylinux_2_{n}_s390x" for n in range(36, 16, -1)]
    + ["cp311-abi3-manylinux_2_17_s390x", "cp311-none-any", "py3-none-any"],
    "marker_environment": {
        "implementation_name": "cpython", "implementation_version": "3.11.2", "os_name": "posix",
        "platform_machine": "s390x", "platform_python_implementation": "CPython", "platform_release": "",
        "platform_system": "Linux", "platform_version": "", "python_full_version": "3.11.2",
        "python_version": "3.11", "sys_platform": "linux",
    },
}


def test_a_pex_without_a_wheel_for_a_platform_is_an_error_before_any_solve(ws: Checkout) -> None:
    bad = ws.repo / "testprojects/pyarch_bad"
    bad.mkdir()
    (bad / "s390x.json").write_text(json.dumps(S390X))
    (bad / "BUILD").write_text(
        'file(name="s390x", source="s390x.json")\n'
        'container_image(name="bad", base="127.0.0.1:5050/llbkit/python3:3.11",\n'
        '    steps=[copy("//testprojects/pyarch:app", "/app/app.pex")],\n'
        '    platforms=["linux/amd64", "linux/s390x"], complete_platforms={"linux/s390x": ":s390x"})\n')
    pantsd = ws.pantsd
    ws.pantsd = False
    try:
        run = ws.package(targets=["testprojects/pyarch_bad:bad"])
    finally:
        ws.pantsd = pantsd
        for f in bad.iterdir():
            f.unlink()
        bad.rmdir()
    assert run.returncode != 0, run.log[-3000:]
    message = run.log
    for fragment in ("testprojects/pyarch_bad:bad", "copies testprojects/pyarch:app into its linux/s390x variant",
                     "MarkupSafe has no wheel for that platform's interpreter",
                     "the complete platform in testprojects/pyarch_bad:s390x", "pants generate-lockfiles"):
        assert fragment in message, message[-3000:]
    assert "Traceback" not in message
    assert "Building testprojects/pyarch_bad:bad for" not in message  # no solve started
    assert not (ws.repo / "dist/testprojects/pyarch_bad").exists()


@pytest.mark.parametrize("pantsd", [True, False], ids=["pantsd", "no-pantsd"])
def test_rebuilding_with_nothing_changed_solves_nothing(ws: Checkout, pantsd: bool) -> None:
    before = {k: v for k, v in ws.dist_digests().items() if k.startswith("testprojects/pyarch/")}
    assert len(before) == 4
    ws.stop_daemon()
    ws.clear_dist()
    ws.pantsd = pantsd
    try:
        run = ws.package(targets=TARGETS).check()
    finally:
        ws.pantsd = True
    assert {k: v for k, v in ws.dist_digests().items() if k.startswith("testprojects/pyarch/")} == before
    how = run.how_built()
    if pantsd:
        assert set(how.values()) <= {"from cache"}, how
    else:
        assert how == {t: "from cache" for t in TARGETS}, how
    assert "Inspecting the python3" not in run.log and "Building testprojects/pyarch:app for" not in run.log
    assert ws.daemon.pid() is None, "the rebuild started the local buildkitd:\n" + run.log[-3000:]
