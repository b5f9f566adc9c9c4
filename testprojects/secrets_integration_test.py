"""`[buildkit].secrets` in both forms (`env:` and `file:`), under pantsd and with `--no-pantsd`:
the build reads each value, and no value appears in Pants' output, `dist/` (the image's layers
decompressed included), Pants' local store (where cache entries live) or the build's logs.

The only place a value is written is the machine-settings file of the Pants named cache the
build processes read it from (`llbkit_machine_*/settings.json`, mode 0600, rewritten on every
run; see `util_rules/machine.py`): that file is checked to be private to its owner instead.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import secrets
import stat
import tarfile
from pathlib import Path
from textwrap import dedent
from typing import Iterator, List

import pytest

from checkout import Checkout
from llbkit.testutil.procs import make_temp_dir, remove_tree
from llbkit.testutil.run_image import run_image

BUSYBOX = "127.0.0.1:5050/llbkit/busybox:latest"  # the samples' registry, started by ./pants


@pytest.fixture(scope="module")
def base_dir() -> Iterator[Path]:
    path = make_temp_dir("secrets", need_socket_room=len("/cache-xx/buildkitd/buildkitd.sock"))
    yield path
    remove_tree(path)


def _all_bytes_of_image(image: Path) -> List[bytes]:
    """Every blob of an OCI layout tar, gzip layers decompressed, and every file inside them."""
    out: List[bytes] = []
    with tarfile.open(image) as t:
        for member in t.getmembers():
            if not member.isfile():
                continue
            f = t.extractfile(member)
            if f is None:
                continue
            data = f.read()
            out.append(data)
            if data[:2] == b"\x1f\x8b":
                raw = gzip.decompress(data)
                out.append(raw)
                with tarfile.open(fileobj=io.BytesIO(raw)) as layer:
                    for m in layer.getmembers():
                        if not m.isfile():  # links and directories hold no bytes of their own
                            continue
                        lf = layer.extractfile(m)
                        if lf is not None:
                            out.append(lf.read())
    return out


def _files_under(root: Path) -> Iterator[Path]:
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            yield p


@pytest.mark.parametrize("pantsd", [True, False], ids=["pantsd", "no-pantsd"])
def test_secret_values_reach_the_build_and_nothing_else(base_dir: Path, pantsd: bool) -> None:
    name = "d" if pantsd else "n"
    co = Checkout(base_dir, name, pantsd=pantsd, own_store=True, own_named_caches=True)
    try:
        env_value = f"env-secret-{secrets.token_hex(12)}"
        file_value = f"file-secret-{secrets.token_hex(12)}"
        secret_file = base_dir / f"npmrc-{name}"
        secret_file.write_text(file_value)
        (co.repo / "scenario").mkdir()
        (co.repo / "scenario/BUILD").write_text(dedent(f"""\
            container_image(name="s", base="{BUSYBOX}", platforms=["linux/amd64"],
                            steps=[run("sha256sum < /run/secrets/token | cut -c1-64 > /token.sha; "
                                       "sha256sum < /run/secrets/npmrc | cut -c1-64 > /npmrc.sha",
                                       secrets=[secret_mount("token"), secret_mount("npmrc")])],
                            cmd=["cat", "/token.sha", "/npmrc.sha"])
            """))
        option = f"--buildkit-secrets=['token=env:LLBKIT_TEST_TOKEN', 'npmrc=file:{secret_file}']"
        run = co.package(option, "--buildkit-progress=plain", targets=["scenario:s"],
                         env={"LLBKIT_TEST_TOKEN": env_value}).check()
        image = co.repo / "dist/scenario/s.oci.tar"
        # The build read both values.
        assert run_image(image, "linux/amd64").check().stdout.split() == [
            hashlib.sha256(env_value.encode()).hexdigest(), hashlib.sha256(file_value.encode()).hexdigest()]
        values = [env_value.encode(), file_value.encode()]
        # Not in Pants' output (BuildKit's plain log included)...
        assert not any(v.decode() in run.log for v in values)
        # ... nor anywhere in the image, nor anything else in dist/ ...
        blobs = _all_bytes_of_image(image) + [p.read_bytes() for p in _files_under(co.repo / "dist")]
        assert not any(v in b for v in values for b in blobs)
        # ... nor in Pants' local store (cache entries), nor in Pants' logs and workdir.
        store = Path(co.env["PANTS_LOCAL_STORE_DIR"])
        for root in (store, co.repo / ".pants.d"):
            for p in _files_under(root):
                data = p.read_bytes()
                assert not any(v in data for v in values), f"a secret value is in {p}"
        # The settings file that carries the env value to the build process is the owner's only.
        named = Path(co.env["PANTS_NAMED_CACHES_DIR"])
        settings = list(named.glob("llbkit_machine_*/settings.json"))
        assert settings, "the build read its settings from a named cache"
        for s in settings:
            assert stat.S_IMODE(s.stat().st_mode) == 0o600
    finally:
        co.close()
