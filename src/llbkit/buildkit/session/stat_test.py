from __future__ import annotations

import os
import stat

from llbkit.buildkit.session import stat as fstat


def test_go_mode_bits():
    assert fstat.go_mode(stat.S_IFREG | 0o644) == 0o644
    assert fstat.go_mode(stat.S_IFDIR | 0o755) == (1 << 31) | 0o755
    assert fstat.go_mode(stat.S_IFLNK | 0o777) == (1 << 27) | 0o777
    assert fstat.go_mode(stat.S_IFIFO | 0o600) == (1 << 25) | 0o600
    assert fstat.go_mode(stat.S_IFCHR | 0o666) == (1 << 26) | (1 << 21) | 0o666
    assert fstat.go_mode(stat.S_IFBLK | 0o660) == (1 << 26) | 0o660
    assert fstat.go_mode(stat.S_IFSOCK | 0o700) == (1 << 24) | 0o700
    m = fstat.go_mode(stat.S_IFREG | stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX | 0o755)
    assert m == (1 << 23) | (1 << 22) | (1 << 20) | 0o755
    assert fstat.posix_permissions(m) == 0o7755


def test_can_request_data_only_for_regular_files():
    assert fstat.can_request_data(0o644)
    assert fstat.can_request_data(fstat.MODE_SETUID | 0o755)
    for t in (fstat.MODE_DIR, fstat.MODE_SYMLINK, fstat.MODE_NAMED_PIPE, fstat.MODE_DEVICE):
        assert not fstat.can_request_data(t | 0o644)


def test_make_stat(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"12345")
    os.chmod(f, 0o640)
    os.utime(f, ns=(1, 1_600_000_000_123_456_789))
    os.link(f, tmp_path / "g")
    os.symlink("f", tmp_path / "l")
    links: dict = {}
    s = fstat.make_stat(str(f), "f", os.lstat(f), links)
    assert (s.path, s.mode, s.size, s.modTime, s.linkname) == ("f", 0o640, 5, 1_600_000_000_123_456_789, "")
    assert (s.uid, s.gid) == (os.getuid(), os.getgid())
    g = fstat.make_stat(str(tmp_path / "g"), "g", os.lstat(tmp_path / "g"), links)
    assert (g.linkname, g.size) == ("f", 0)  # a hardlink to the first path sent
    link = fstat.make_stat(str(tmp_path / "l"), "l", os.lstat(tmp_path / "l"), links)
    assert link.linkname == "f" and link.mode & fstat.MODE_SYMLINK
    d = fstat.make_stat(str(tmp_path), "d", os.lstat(tmp_path))
    assert d.mode & fstat.MODE_DIR and d.size == 0
