"""The build code's id, computed by the rule, is what the build process would compute."""

from __future__ import annotations

from pathlib import Path

from llbkit.code_cache import code_digest
from llbkit_pants.util_rules.solver import CODE_DIR, _sources, code_id


def test_code_id_is_the_code_digest_of_the_sandboxed_sources(tmp_path: Path) -> None:
    for path, data in _sources():
        dest = tmp_path / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    assert code_id() == code_digest(tmp_path / CODE_DIR)
    assert len(_sources()) > 1  # (the sandbox holds the modules this test depends on)
