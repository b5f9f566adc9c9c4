from typing import Dict, List

import pytest

from llbkit.testutil.debian_debs import closure, downloaded_debs, parse_depends
from llbkit.testutil.errors import FixtureError

APT_OUTPUT = """\
libpython3.11-stdlib:arm64
  Depends: libpython3.11-minimal:arm64
 |Depends: <media-types:arm64>
    media-types
  Depends: <mime-support:arm64>
    mime-support
  Depends: libc6:arm64
  Recommends: ca-certificates
mailcap
  PreDepends: perl
  Depends: media-types
"""


def test_parse_depends_keeps_alternatives_and_providers_in_order() -> None:
    assert parse_depends(APT_OUTPUT) == {
        "libpython3.11-stdlib:arm64": [
            ["libpython3.11-minimal:arm64"],
            ["media-types", "mime-support"],
            ["libc6:arm64"],
        ],
        "mailcap": [["perl"], ["media-types"]],
    }


def _fake_apt(graph: Dict[str, List[List[str]]]):
    asked: List[List[str]] = []

    def depends(names: List[str]) -> Dict[str, List[List[str]]]:
        asked.append(list(names))
        return {n: graph[n] for n in names}

    return depends, asked


def test_closure_takes_first_alternatives_and_skips_package_manager_tools() -> None:
    graph = {
        "python3": [["python3.11"], ["libc6"]],
        "python3.11": [["libc6"], ["mailcap", "media-types"], ["dpkg"]],
        "libc6": [["libgcc-s1"]],
        "libgcc-s1": [["libc6"]],
        "media-types": [],
    }
    depends, asked = _fake_apt(graph)
    got = closure(["python3"], "amd64", depends=depends, native_arch="amd64")
    # mailcap (the first alternative) needs perl only for its maintainer scripts: media-types is
    # taken instead; dpkg is never needed at run time; the libc6 <-> libgcc-s1 cycle ends.
    assert got == ["libc6", "libgcc-s1", "media-types", "python3", "python3.11"]
    assert asked[0] == ["python3"]


def test_closure_for_a_foreign_architecture_qualifies_the_roots() -> None:
    depends, asked = _fake_apt({"python3:arm64": [["libc6:arm64"]], "libc6:arm64": []})
    assert closure(["python3"], "arm64", depends=depends, native_arch="amd64") == \
        ["libc6:arm64", "python3:arm64"]
    assert asked == [["python3:arm64"], ["libc6:arm64"]]


def test_downloaded_debs_needs_a_completed_download(tmp_path) -> None:
    with pytest.raises(FixtureError, match="not downloaded"):
        downloaded_debs(tmp_path)
    (tmp_path / "packages.txt").write_text("")
    with pytest.raises(FixtureError, match="has no .deb"):
        downloaded_debs(tmp_path)
    (tmp_path / "b_1_all.deb").write_bytes(b"")
    (tmp_path / "a_1_all.deb").write_bytes(b"")
    assert [p.name for p in downloaded_debs(tmp_path)] == ["a_1_all.deb", "b_1_all.deb"]
