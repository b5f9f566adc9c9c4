"""The build code's per-machine copy: made once, whole or not at all, reused with its bytecode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from llbkit.code_cache import COMPLETE, code_digest, install


def _code(root: Path, text: str = "X = 1\n") -> Path:
    code = root / "code"
    (code / "llbkit" / "sub").mkdir(parents=True)
    (code / "llbkit" / "__init__.py").write_text("")
    (code / "llbkit" / "sub" / "__init__.py").write_text("")
    (code / "llbkit" / "sub" / "mod.py").write_text(
        text + "if __name__ == '__main__':\n    import sys; print(__file__, *sys.argv[1:])\n")
    return code


def test_the_copy_is_named_by_content_and_made_once(tmp_path: Path) -> None:
    code = _code(tmp_path)
    first = install(code, tmp_path / "cache")
    assert first is not None and first.name == code_digest(code) and (first / COMPLETE).is_file()
    assert (first / "llbkit" / "sub" / "mod.py").read_bytes() == (code / "llbkit" / "sub" / "mod.py").read_bytes()
    (first / "llbkit" / "marker").write_text("kept")  # a second install reuses the copy as it is
    assert install(code, tmp_path / "cache") == first and (first / "llbkit" / "marker").exists()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [first.name]  # no temp dir left


def test_other_code_gets_another_copy(tmp_path: Path) -> None:
    a = install(_code(tmp_path / "a"), tmp_path / "cache")
    b = install(_code(tmp_path / "b", "X = 2\n"), tmp_path / "cache")
    assert a is not None and b is not None and a != b


def test_an_incomplete_copy_is_not_used(tmp_path: Path) -> None:
    code = _code(tmp_path)
    (tmp_path / "cache" / code_digest(code) / "llbkit").mkdir(parents=True)  # e.g. a copy cut short
    assert install(code, tmp_path / "cache") is None  # the caller then runs from the sandbox


def test_an_unusable_cache_dir_gives_none(tmp_path: Path) -> None:
    code = _code(tmp_path)
    (tmp_path / "cache").write_text("a file, not a dir")
    assert install(code, tmp_path / "cache") is None


def _boot(code: Path, cwd: Path, *args: str) -> str:
    here = Path(__file__).resolve().parent.parent  # the llbkit package under test provides boot()
    script = (f"import sys; sys.path.insert(0, {str(here)!r}); from llbkit.code_cache import boot; "
              f"boot('llbkit.sub.mod', {str(code)!r}, 'cache')")
    return subprocess.run([sys.executable, "-B", "-c", script, *args], cwd=cwd, capture_output=True,
                          text=True, check=True, env={**os.environ, "PYTHONPATH": str(code)}).stdout


def test_boot_runs_the_module_from_the_copy_and_keeps_its_bytecode(tmp_path: Path) -> None:
    code = _code(tmp_path)
    out = _boot(code, tmp_path, "solve", "job")
    copy = tmp_path / "cache" / code_digest(code)
    assert out.split() == [str(copy / "llbkit" / "sub" / "mod.py"), "solve", "job"]
    # The sandbox stays clean (-B); the copy has the bytecode of what was imported, for the next run.
    assert not list(code.rglob("__pycache__"))
    assert list((copy / "llbkit" / "sub" / "__pycache__").glob("__init__.*.pyc"))


def test_a_given_digest_names_the_copy_without_hashing(tmp_path: Path) -> None:
    code = _code(tmp_path)
    digest = code_digest(code)
    assert install(code, tmp_path / "cache", digest).name == digest
    # Trusted as given: the caller computed it from the files it put there (a name that is
    # not a sha256 is ignored, and the sources are hashed).
    other = "ab" * 32
    assert install(code, tmp_path / "cache", other).name == other
    assert install(code, tmp_path / "cache", "../escape").name == digest
