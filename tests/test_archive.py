"""Hostile archives, made by hand: every unsafe member is refused with a clear error, nothing written."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from codemem.archive import ArchiveError, Limits, stream

JAVA = b"class A { int f() { return 1; } }\n"


def member(name: str, data: bytes = JAVA, **attrs) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in attrs.items():
        setattr(info, k, v)
    if info.type != tarfile.REGTYPE:
        info.size = 0
        data = None
    return info, data


def make(path: Path, members) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


GOOD = [member("java-small/training/p/A.java"), member("java-small/test/q/B.java")]


def test_a_clean_archive_streams_and_inside_links_are_skipped(tmp_path):
    inside = member("java-small/training/p/Link.java", type=tarfile.SYMTYPE, linkname="A.java")
    path = make(tmp_path / "ok.tar.gz", [*GOOD, inside])
    assert [name for name, _ in stream(path)] == ["java-small/training/p/A.java", "java-small/test/q/B.java"]
    assert [d for _, d in stream(path, select=lambda n: "test/" in n)] == [JAVA]


@pytest.mark.parametrize("bad, rule", [
    (member("/etc/cron.d/evil.java"), "absolute path"),
    (member("java-small/../../evil.java"), "`..` path component"),
    (member("C:/evil.java"), "absolute path"),
    (member("java-small/training/p/l", type=tarfile.SYMTYPE, linkname="/etc/passwd"), "absolute path"),
    (member("java-small/training/p/l", type=tarfile.SYMTYPE, linkname="../../../../etc"), "link out of the tree"),
    (member("java-small/training/p/h", type=tarfile.LNKTYPE, linkname="../outside"), "link out of the tree"),
    (member("java-small/training/p/dev", type=tarfile.CHRTYPE, devmajor=1, devminor=3), "device file"),
    (member("java-small/training/p/blk", type=tarfile.BLKTYPE, devmajor=8, devminor=0), "device file"),
    (member("java-small/training/p/fifo", type=tarfile.FIFOTYPE), "FIFO"),
])  # fmt: skip
def test_unsafe_members_are_refused(tmp_path, bad, rule):
    path = make(tmp_path / "bad.tar.gz", [GOOD[0], bad, GOOD[1]])
    outside = tmp_path.parent / "evil.java"
    with pytest.raises(ArchiveError) as e:
        list(stream(path))
    message = str(e.value)
    assert rule in message and str(path) in message and repr(bad[0].name) in message and "\n" not in message
    assert not outside.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar.gz"]


def test_a_member_over_the_limit_is_refused_before_it_is_read(tmp_path):
    path = make(tmp_path / "big.tar.gz", [member("java-small/training/p/Big.java", b"x" * 5000)])
    with pytest.raises(ArchiveError, match="over the 4,096-byte limit per member"):
        list(stream(path, limits=Limits(member_bytes=4096)))


def test_a_decompression_bomb_is_stopped_at_the_total_limit(tmp_path):
    # 40 members of 1 MB of zeros: about 40 KB compressed, 40 MB expanded; the limit is 8 MB.
    zeros = b"\0" * (1 << 20)
    path = make(tmp_path / "bomb.tar.gz", [member(f"java-small/training/p/Z{i}.java", zeros) for i in range(40)])
    assert path.stat().st_size < 200_000
    seen = []
    with pytest.raises(ArchiveError, match="expands past the 8,388,608-byte limit for a whole archive"):
        for name, _ in stream(path, limits=Limits(total_bytes=8 << 20)):
            seen.append(name)
    assert len(seen) <= 8


def test_a_truncated_or_foreign_file_is_a_clear_error(tmp_path):
    path = make(tmp_path / "ok.tar.gz", [member("java-small/training/p/A.java", os.urandom(100_000))])
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ArchiveError, match="download it again|truncated"):
        list(stream(cut))
    html = tmp_path / "page.tar.gz"
    html.write_bytes(b"<html>403 Forbidden</html>")
    with pytest.raises(ArchiveError, match="not a readable tar.gz"):
        list(stream(html))


def test_streaming_keeps_nothing_per_member(tmp_path):
    """A Java-Large-sized stream has ~2M members: what is held must not grow with them (tarfile's own
    list of headers took 1.9 GB there)."""
    import tracemalloc

    def peak(n: int) -> int:
        path = make(tmp_path / f"{n}.tar.gz", (member(f"java-small/training/p/F{k}.java") for k in range(n)))
        tracemalloc.start()
        assert sum(1 for _ in stream(path)) == n
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    small, large = peak(1_000), peak(20_000)
    assert large < small + 1_000_000  # tarfile's headers alone would add ~10 MB
