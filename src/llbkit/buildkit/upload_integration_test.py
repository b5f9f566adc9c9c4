"""A large build context through the client: 200 MB in 5,000 files, then an incremental re-send.

The second solve shares the first one's session key, so buildkitd compares the listing with the
copy it kept and asks only for what changed; the session's counters measure what was sent.
"""

from __future__ import annotations

import random
import tarfile
import time
import uuid
from pathlib import Path
from typing import Dict, Tuple

from llbkit import llb
from llbkit.buildkit import Client, Export
from llbkit.buildkit.session import FileOutput, Session

FILES = 5_000
TOTAL = 200_000_000
FILE_SIZE = TOTAL // FILES  # 40,000 bytes
DIRS = 50


def _name(i: int) -> str:
    return f"d{i % DIRS:02d}/f{i:04d}.bin"


def _make_context(root: Path) -> Path:
    """5,000 files of 40,000 deterministic bytes (seeded), in 50 directories."""
    blob = random.Random(20261128).randbytes(TOTAL)
    for d in range(DIRS):
        (root / f"d{d:02d}").mkdir(parents=True)
    for i in range(FILES):
        (root / _name(i)).write_bytes(blob[i * FILE_SIZE:(i + 1) * FILE_SIZE])
    return root


def _members(path: Path, names) -> Tuple[int, Dict[str, bytes]]:
    """How many regular files the tar holds, and the content of ``names``."""
    wanted, count, out = set(names), 0, {}
    with tarfile.open(path) as tf:
        for m in tf:
            if not m.isfile():
                continue
            count += 1
            if m.name in wanted:
                out[m.name] = tf.extractfile(m).read()
    return count, out


def test_200mb_context_uploads_then_only_the_changed_file_is_sent(buildkitd_amd64, tmp_path):
    t0 = time.monotonic()
    ctx = _make_context(tmp_path / "ctx")
    t_gen = time.monotonic() - t0
    key = uuid.uuid4().hex
    state = llb.scratch().file(llb.copy(llb.local("ctx"), "/", "/app/", create_dest_path=True))
    definition = state.marshal(platform="linux/amd64")
    samples = [_name(i) for i in (0, 1, 2_345, 4_999)]

    def build(n: int) -> Tuple[Session, Path, float]:
        out = tmp_path / f"out{n}.tar"
        session = Session(local_dirs={"ctx": str(ctx)}, outputs={0: FileOutput(str(out))},
                          auth=None, shared_key=key)
        start = time.monotonic()
        with Client(buildkitd_amd64.addr) as c:
            c.solve(definition, exports=[Export.tar(str(out))], session=session)
        return session, out, time.monotonic() - start

    first, out1, t1 = build(1)
    stats = first.stats("ctx").snapshot()
    assert stats["bytes_sent"] == TOTAL and stats["files_sent"] == FILES, stats
    count, got = _members(out1, ["app/" + s for s in samples])
    assert count == FILES
    for s in samples:
        assert got["app/" + s] == (ctx / s).read_bytes(), s

    changed = ctx / _name(1_234)
    changed.write_bytes(b"changed " + uuid.uuid4().hex.encode() + b"\n" * 50_000)
    second, out2, t2 = build(2)
    sent = second.stats("ctx").snapshot()
    size = changed.stat().st_size
    # about that one file: its content, plus at most a few files' worth of slack
    assert size <= sent["bytes_sent"] <= size + 3 * FILE_SIZE, sent
    assert sent["files_sent"] <= 3, sent
    # the listing (one stat per entry) is sent again: a few hundred kB, not the content
    assert sent["packet_bytes"] < 2_000_000, sent
    _, got2 = _members(out2, ["app/" + _name(1_234), "app/" + samples[0]])
    assert got2["app/" + _name(1_234)] == changed.read_bytes()
    assert got2["app/" + samples[0]] == (ctx / samples[0]).read_bytes()
    print(f"\ngenerate {t_gen:.1f}s, first solve {t1:.1f}s ({TOTAL / t1 / 1e6:.0f} MB/s with "
          f"export), second {t2:.1f}s; second sent {sent}")
