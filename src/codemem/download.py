"""HTTP downloads a user can trust: resumable, retried, verified, never half-written.

The study's corpora live on hosts we do not control (an S3 bucket, raw.githubusercontent.com);
connections get cut, processes get killed and links rot. So:

- bytes go to `<dest>.part`; a later call resumes it with an HTTP Range request (a server that
  ignores Range sends the whole file again, and we start over);
- connection errors, timeouts, short reads, 429 and 5xx are retried with exponential backoff; the
  retry budget counts failures *without progress* (an attempt that brought new bytes resets it, as
  curl and wget keep going while bytes arrive), within a total time limit per file;
- the finished file is checked (size, sha256 and/or git blob SHA-1) and only then renamed to
  `dest`, so a partial or corrupt file never has the final name; a file that fails its check is
  moved to `<dest>.corrupt` (kept for inspection, never read);
- 401/403/404/410 are not worth retrying: one line names the URL and what to do (a mirror through
  `fetch.url`, or a local copy through `fetch.source`).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from codemem import storage
from codemem.errors import UserError
from codemem.progress import ByteProgress

CHUNK = 1 << 20
FIX = "set `fetch.url` to a mirror that serves the same files, or `fetch.source` to a local copy"


class DownloadError(UserError):
    """A download that cannot complete; the message names the URL and what the user can do."""


class _Retry(Exception):
    """A transient failure: try again (resuming) after a pause."""


@dataclass(frozen=True)
class Expected:
    """What a complete file must match; None = not known (then only recorded)."""

    sha256: str | None = None
    git_sha1: str | None = None  # `git hash-object FILE`: sha1 of b"blob <size>\\0" + content
    size: int | None = None


def git_blob_sha1(path: Path) -> str:
    h = hashlib.sha1(b"blob %d\0" % Path(path).stat().st_size)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def mismatch(path: Path, expected: Expected) -> str | None:
    """Why `path` does not match `expected`, or None."""
    size = Path(path).stat().st_size
    if expected.size is not None and size != expected.size:
        return f"{size:,} bytes where {expected.size:,} were expected"
    if expected.sha256 and (got := sha256_of(path)) != expected.sha256:
        return f"sha256 {got} where {expected.sha256} was expected"
    if expected.git_sha1 and (got := git_blob_sha1(path)) != expected.git_sha1:
        return f"git blob SHA-1 {got} where {expected.git_sha1} was expected"
    return None


def download(url: str, dest: Path, expected: Expected = Expected(), *, retries: int = 5, timeout: float = 60,
             backoff: float = 1.0, time_limit: float = 0, label: str | None = None, show: bool = True,
             stats: dict | None = None) -> Path:
    """Fetch `url` into `dest` (resuming `<dest>.part`), verify it, and rename it into place.

    Gives up after `retries` failures in a row that brought no new byte, or once `time_limit` seconds
    (0 = none) have passed. `stats`, if given, gets `attempts` and `resumed` (attempts that went on
    from bytes already there)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    stats = {} if stats is None else stats
    stats.update(attempts=0, resumed=0)
    began, failures = time.monotonic(), 0
    with ByteProgress(f"download {label or dest.name}", None, 0, show) as bar:
        while True:
            have = part.stat().st_size if part.exists() else 0
            stats["attempts"] += 1
            if have:
                stats["resumed"] += 1
                bar.describe(f"download {label or dest.name} (resumed {stats['resumed']}x)")
            try:
                _transfer(url, part, timeout, bar)
                break
            except _Retry as e:
                progressed = (part.stat().st_size if part.exists() else 0) > have
                failures = 0 if progressed else failures + 1
                spent = time.monotonic() - began
                if failures > retries or (time_limit and spent > time_limit):
                    why = (f"failed {failures} times in a row without a new byte" if failures > retries
                           else f"still incomplete after {spent:.0f} s (fetch.time_limit)")
                    raise DownloadError(f"{url}: {why}, last: {e}. Retry later (the partial file {part} is kept "
                                        f"and resumed), or {FIX}") from None
                time.sleep(min(backoff * 2 ** max(failures - 1, 0), 60))
    why = mismatch(part, expected)
    if why:
        bad = dest.with_name(dest.name + ".corrupt")
        os.replace(part, bad)
        raise DownloadError(f"{url}: the download has {why}; moved it to {bad}. The host or a proxy served "
                            f"other bytes: {FIX}")
    os.replace(part, dest)
    return dest


def _transfer(url: str, part: Path, timeout: float, bar: ByteProgress) -> None:
    """One attempt: append to `part` from where it stops, or start over when the server ignores Range."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "codemem (+https://github.com/; research reproduction)"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to send: the part may already be whole
            if _whole(e.headers, have):
                return
            part.unlink()
            raise _Retry(f"HTTP 416 for a range from byte {have:,}: starting over") from None
        if e.code in (401, 403, 404, 410):
            what = {401: "needs credentials", 403: "is forbidden", 404: "is not there", 410: "is gone"}[e.code]
            raise DownloadError(f"{url}: HTTP {e.code} (the file {what}); the host may have moved or removed it: "
                                f"{FIX}") from None
        if e.code == 429 or e.code >= 500:
            raise _Retry(f"HTTP {e.code}") from None
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}: {FIX}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", e)
        raise _Retry(f"cannot connect ({reason})") from None
    with response:
        if have and response.status == 206:
            start = _range_start(response.headers.get("Content-Range", ""))
            if start != have:
                part.unlink()
                raise _Retry(f"the server resumed at byte {start}, not {have:,}: starting over")
            mode = "ab"
        else:
            have, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        if total is not None:  # refuse now rather than after hours of transfer
            storage.require_space(part, total - have, f"the rest of {url}")
        got = have
        bar.restart(have, total)
        # A full disk is the user's to fix, not a lost connection to retry: only reads are retried.
        with storage.writing(part, f"the download of {url}"), open(part, mode) as f:
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as e:
                    raise _Retry(f"connection lost after {got:,} bytes ({type(e).__name__})") from None
                if not chunk:
                    break
                f.write(chunk)
                got += len(chunk)
                bar.advance(len(chunk))
        if total is not None and got < total:
            raise _Retry(f"connection closed after {got:,} of {total:,} bytes")


def _range_start(content_range: str) -> int | None:
    """The first byte of `bytes START-END/TOTAL`."""
    try:
        return int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _whole(headers, have: int) -> bool:
    """Whether a 416's `Content-Range: bytes */TOTAL` says the file is exactly `have` bytes."""
    value = (headers or {}).get("Content-Range", "")
    return value.startswith("bytes */") and value[8:].isdigit() and int(value[8:]) == have
