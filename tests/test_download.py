"""codemem.download against a real HTTP server on 127.0.0.1: resume, retry, verify, clear errors."""

from __future__ import annotations

import hashlib
import os

import pytest
from lookalike import Server

from codemem.download import DownloadError, Expected, download, git_blob_sha1
from codemem.errors import DiskFullError

DATA = os.urandom(3 << 20) + b"tail"  # 3 MB: several 1 MB chunks, so a cut lands mid-file
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def server():
    with Server() as s:
        s.files["/d/java-small.tar.gz"] = DATA
        yield s


def fetch(server, tmp_path, expected=None, **kw):
    expected = expected or Expected(sha256=SHA)
    kw = {"retries": 3, "timeout": 5, "backoff": 0.01} | kw
    return download(f"{server.url}/d/java-small.tar.gz", tmp_path / "java-small.tar.gz", expected, **kw)


def test_whole_download_is_verified_and_renamed(server, tmp_path):
    dest = fetch(server, tmp_path)
    assert dest.read_bytes() == DATA
    assert not (tmp_path / "java-small.tar.gz.part").exists()
    assert server.requests == [("/d/java-small.tar.gz", None)]


def test_cut_connection_resumes_with_range(server, tmp_path):
    server.cut["/d/java-small.tar.gz"] = 1_500_000
    dest = fetch(server, tmp_path)
    assert dest.read_bytes() == DATA
    first, second = server.requests
    assert first[1] is None and second[1] == "bytes=1500000-"  # the second request resumed, not restarted


def test_killed_process_leaves_a_part_that_is_resumed(server, tmp_path):
    (tmp_path / "java-small.tar.gz.part").write_bytes(DATA[:1_000_000])  # what a killed run leaves
    assert not (tmp_path / "java-small.tar.gz").exists()  # a partial file never has the final name
    dest = fetch(server, tmp_path)
    assert dest.read_bytes() == DATA and server.requests == [("/d/java-small.tar.gz", "bytes=1000000-")]


def test_server_ignoring_range_starts_over(server, tmp_path):
    server.ignore_range = True
    (tmp_path / "java-small.tar.gz.part").write_bytes(b"garbage that must not stay in front")
    assert fetch(server, tmp_path).read_bytes() == DATA


def test_complete_part_gets_416_and_is_verified(server, tmp_path):
    (tmp_path / "java-small.tar.gz.part").write_bytes(DATA)
    assert fetch(server, tmp_path).read_bytes() == DATA


def test_transient_errors_are_retried(server, tmp_path):
    server.fail["/d/java-small.tar.gz"] = [503, 500]
    assert fetch(server, tmp_path).read_bytes() == DATA
    assert len(server.requests) == 3


def test_wrong_checksum_is_never_used(server, tmp_path):
    with pytest.raises(DownloadError) as e:
        fetch(server, tmp_path, Expected(sha256="0" * 64))
    message = str(e.value)
    assert "sha256" in message and "fetch.url" in message and "\n" not in message
    assert not (tmp_path / "java-small.tar.gz").exists() and not (tmp_path / "java-small.tar.gz.part").exists()
    assert (tmp_path / "java-small.tar.gz.corrupt").read_bytes() == DATA  # kept aside for inspection


def test_git_blob_sha1_is_what_git_computes(tmp_path):
    (tmp_path / "f").write_bytes(b"hello\n")
    assert git_blob_sha1(tmp_path / "f") == "ce013625030ba8dba906f756967f9e9ca394464a"  # `git hash-object`


@pytest.mark.parametrize("code", [404, 403])
def test_missing_or_forbidden_is_one_clear_line(server, tmp_path, code):
    server.fail["/d/java-small.tar.gz"] = [code]
    with pytest.raises(DownloadError) as e:
        fetch(server, tmp_path)
    message = str(e.value)
    assert f"{server.url}/d/java-small.tar.gz" in message and f"HTTP {code}" in message
    assert "fetch.url" in message and "fetch.source" in message and "\n" not in message
    assert len(server.requests) == 1  # not retried: it will not get better


def test_timeout_gives_up_with_the_url(server, tmp_path):
    server.stall = 1.0
    with pytest.raises(DownloadError) as e:
        fetch(server, tmp_path, retries=1, timeout=0.2)
    assert "failed 2 times" in str(e.value) and server.url in str(e.value) and "fetch.url" in str(e.value)


def test_a_line_that_drops_every_200_kb_is_followed_to_the_end(server, tmp_path):
    """Each attempt brings new bytes, so none counts against the retries: 16 attempts with retries=2."""
    server.cut_every["/d/java-small.tar.gz"] = 200_000
    stats = {}
    dest = fetch(server, tmp_path, retries=2, stats=stats)
    assert dest.read_bytes() == DATA
    attempts = -(-len(DATA) // 200_000)
    assert stats == {"attempts": attempts, "resumed": attempts - 1} and len(server.requests) == attempts
    assert [r for _, r in server.requests[1:3]] == ["bytes=200000-", "bytes=400000-"]


def test_failures_without_progress_use_up_the_retries(server, tmp_path):
    server.cut["/d/java-small.tar.gz"] = 1_000_000  # progress once, then nothing but errors
    server.fail["/d/java-small.tar.gz"] = [None, 503, 503, 503]
    with pytest.raises(DownloadError, match="failed 3 times in a row without a new byte"):
        fetch(server, tmp_path, retries=2)
    assert (tmp_path / "java-small.tar.gz.part").stat().st_size == 1_000_000  # kept, to be resumed


def test_a_download_that_takes_too_long_stops_at_the_time_limit(server, tmp_path):
    server.cut_every["/d/java-small.tar.gz"] = 100_000
    with pytest.raises(DownloadError, match="fetch.time_limit"):
        fetch(server, tmp_path, retries=100, backoff=0.05, time_limit=0.1)
    assert 0 < (tmp_path / "java-small.tar.gz.part").stat().st_size < len(DATA)


def test_too_little_free_space_is_refused_before_a_byte_is_written(server, tmp_path, monkeypatch):
    monkeypatch.setenv("CODEMEM_FREE_BYTES", str(1 << 20))
    with pytest.raises(DiskFullError) as e:
        fetch(server, tmp_path)
    message = str(e.value)
    assert "needs about 3 MiB" in message and "1 MiB free" in message and "dvc gc" in message and "\n" not in message
    assert not (tmp_path / "java-small.tar.gz.part").exists()


def test_a_full_disk_is_one_line_not_a_retry(server, tmp_path):
    """/dev/full answers every write with ENOSPC: the `.part` is made a link to it."""
    (tmp_path / "java-small.tar.gz.part").symlink_to("/dev/full")
    with pytest.raises(DiskFullError) as e:
        fetch(server, tmp_path)
    assert "no space left on the device while writing the download of" in str(e.value) and "\n" not in str(e.value)
    assert len(server.requests) == 1  # not retried: the disk will not empty itself


def test_refused_connection_is_retried_then_reported(tmp_path):
    with Server() as s:
        url = s.url  # a port that nothing listens on once the server is gone
    with pytest.raises(DownloadError, match="cannot connect"):
        download(f"{url}/x", tmp_path / "x", retries=1, backoff=0.01, timeout=1)
