"""Download the Debian packages a small runtime image needs: a package and its dependency closure.

``python -m llbkit.testutil.debian_debs DEST ARCH PACKAGE...`` resolves the ``Depends`` and
``Pre-Depends`` closure of the packages with ``apt-cache depends`` (the first alternative of each
``a | b`` group, the first provider of a virtual package), leaves out what only a package
manager needs (:data:`NOT_AT_RUNTIME`), downloads the .debs with ``apt-get download`` into
``DEST`` and writes ``DEST/packages.txt`` (one ``name version`` a line) last, so an interrupted
download is redone. It needs apt's package lists (``apt-get update``) and, for a foreign
architecture, ``dpkg --add-architecture ARCH`` first; ``build-support/provision.sh`` does both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from llbkit.testutil.errors import PROVISION_HINT, FixtureError

# Dependencies of maintainer scripts and package managers, not of the programs themselves: an
# image made by unpacking .debs runs no maintainer script (mailcap pulls in all of perl).
NOT_AT_RUNTIME = frozenset({
    "dpkg", "install-info", "tar", "perl", "perl-base", "perl-modules-5.36", "libperl5.36",
    "debconf", "mailcap", "mime-support",
})
PACKAGES_FILE = "packages.txt"


def _strip_arch(name: str) -> str:
    return name.split(":", 1)[0]


def parse_depends(text: str) -> Dict[str, List[List[str]]]:
    """``apt-cache depends`` output -> package -> dependency groups (alternatives, in order).

    A virtual alternative ``<name>`` is replaced by its providers (the indented lines after it).
    """
    out: Dict[str, List[List[str]]] = {}
    current: Optional[List[List[str]]] = None
    group: List[str] = []
    continues = False
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            current = out.setdefault(line.strip(), [])
            group, continues = [], False
            continue
        if current is None:
            continue
        stripped = line.strip()
        if line.startswith("    "):  # a provider of the virtual package just listed
            group.append(stripped)
            continue
        alt = stripped.startswith("|")
        kind, _, name = stripped.lstrip("|").partition(":")
        if kind.strip() not in ("Depends", "PreDepends"):
            continue
        if not continues:
            group = []
            current.append(group)
        name = name.strip()
        if not (name.startswith("<") and name.endswith(">")):
            group.append(name)
        continues = alt
    return out


def closure(roots: Sequence[str], arch: str,
            depends: Optional[Callable[[List[str]], Dict[str, List[List[str]]]]] = None,
            native_arch: Optional[str] = None) -> List[str]:
    """The sorted package names (``name`` or ``name:arch``) that ``roots`` need at run time.

    ``depends(names) -> parse_depends(...)`` is ``apt-cache depends`` by default; a foreign
    ``arch`` (not ``native_arch``, by default dpkg's) qualifies the roots as ``name:arch``.
    """
    depends = depends or _apt_depends
    native = native_arch or _native_arch()
    qualify = (lambda n: n) if arch == native else (lambda n: n if ":" in n else f"{n}:{arch}")
    chosen: Dict[str, str] = {}  # plain name -> name as apt knows it
    frontier = [qualify(r) for r in roots]
    while frontier:
        info = depends(frontier)
        frontier = []
        for pkg in info:
            chosen.setdefault(_strip_arch(pkg), pkg)
        for pkg, groups in info.items():
            for group in groups:
                names = [n for n in group if _strip_arch(n) not in NOT_AT_RUNTIME]
                if not names or any(_strip_arch(n) in chosen for n in names):
                    continue
                first = names[0]
                chosen[_strip_arch(first)] = first
                frontier.append(first)
    return sorted(chosen.values())


def _native_arch() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], check=True, capture_output=True,
                          text=True).stdout.strip()


def _apt_depends(names: Iterable[str]) -> Dict[str, List[List[str]]]:
    argv = ["apt-cache", "depends", "--no-recommends", "--no-suggests", "--no-conflicts",
            "--no-breaks", "--no-replaces", "--no-enhances", *names]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise FixtureError(
            f"apt-cache depends failed: {proc.stderr.strip()[-500:]}; if a package of a foreign "
            f"architecture is unknown: `dpkg --add-architecture ARCH && apt-get update`; {PROVISION_HINT}"
        )
    return parse_depends(proc.stdout)


def download(dest: Path, arch: str, roots: Sequence[str]) -> List[Tuple[str, str]]:
    """Download the closure of ``roots`` for ``arch`` into ``dest``; ``[(name, version)]``."""
    dest = Path(dest)
    names = closure(roots, arch)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=dest))
    try:
        os.chmod(tmp, 0o755)  # apt downloads as the _apt user
        proc = subprocess.run(["apt-get", "download", "-qq", *names], cwd=tmp,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise FixtureError(
                f"apt-get download {' '.join(names)} failed: {proc.stderr.strip()[-800:]}; "
                f"run `apt-get update` and retry; {PROVISION_HINT}"
            )
        got: List[Tuple[str, str]] = []
        for deb in sorted(tmp.glob("*.deb")):
            name, version = deb.name.split("_")[:2]
            got.append((name, version.replace("%3a", ":")))
            os.replace(deb, dest / deb.name)
        (dest / (PACKAGES_FILE + ".part")).write_text("".join(f"{n} {v}\n" for n, v in got))
        os.replace(dest / (PACKAGES_FILE + ".part"), dest / PACKAGES_FILE)
        return got
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def downloaded_debs(dest: Path) -> List[Path]:
    """The .debs a completed :func:`download` left in ``dest`` (sorted), or raise saying how."""
    dest = Path(dest)
    if not (dest / PACKAGES_FILE).is_file():
        raise FixtureError(f"Debian packages not downloaded to {dest}; {PROVISION_HINT}")
    debs = sorted(dest.glob("*.deb"))
    if not debs:
        raise FixtureError(f"{dest} has no .deb; delete {dest / PACKAGES_FILE} and {PROVISION_HINT}")
    return debs


def main(argv: Sequence[str]) -> int:
    if len(argv) < 3:
        print("usage: python -m llbkit.testutil.debian_debs DEST ARCH PACKAGE...", file=sys.stderr)
        return 2
    try:
        got = download(Path(argv[0]), argv[1], argv[2:])
    except FixtureError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{len(got)} packages for {argv[1]} in {argv[0]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
