"""Safe streaming of tar.gz archives downloaded from the internet.

An archive is untrusted input: its member names, link targets, types and sizes are whatever its
author wrote. We never unpack one to disk. Members are read one at a time out of the compressed
stream (`tarfile` stream mode, so memory stays bounded by one member) and every header is checked
*before* its bytes are read, with a message that names the archive, the member and the rule:

- names must be relative and stay inside the tree: no leading `/`, no drive letter, no `..` part;
- symbolic and hard links are skipped when they point inside the tree and refused when they point
  out of it (absolute target or one that climbs out with `..`);
- device files, FIFOs and sparse members are refused (a source archive holds none);
- a member larger than `Limits.member_bytes`, more than `Limits.members` members, or an archive whose
  decompressed stream exceeds `Limits.total_bytes` (a "zip bomb") is refused.

`tarfile`'s own `filter='data'` covers much of this for extraction to disk, but we stream rather than
extract, and want errors that say which rule a member broke; so the checks are written out here.
"""

from __future__ import annotations

import posixpath
import re
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from codemem.errors import UserError


class ArchiveError(UserError):
    """An archive that is malformed or hostile; the message names the archive and the member."""


@dataclass(frozen=True)
class Limits:
    member_bytes: int = 64 << 20  # no source file comes near this; a bigger member is a bomb or not source
    total_bytes: int = 64 << 30  # decompressed stream, headers included
    members: int = 20_000_000


_DRIVE = re.compile(r"^[A-Za-z]:")


def check_name(name: str) -> str | None:
    """Why a member name is unsafe, or None."""
    if not name:
        return "has an empty name"
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return "has an absolute path"
    if ".." in re.split(r"[/\\]", name):
        return "has a `..` path component"
    if "\0" in name:
        return "has a NUL byte in its name"
    return None


def check_link(member: tarfile.TarInfo) -> str | None:
    """Why a link member points out of the tree, or None when its target stays inside."""
    target = member.linkname
    if not target or target.startswith(("/", "\\")) or _DRIVE.match(target):
        return f"is a {'hard' if member.islnk() else 'symbolic'} link to the absolute path {target!r}"
    # A symlink's target is relative to the link's folder, a hardlink's to the archive's root.
    base = posixpath.dirname(member.name) if member.issym() else ""
    resolved = posixpath.normpath(posixpath.join(base, target))
    if resolved == ".." or resolved.startswith(("../", "/")):
        return f"is a {'hard' if member.islnk() else 'symbolic'} link out of the tree (to {target!r})"
    return None


def check_member(member: tarfile.TarInfo, limits: Limits) -> str | None:
    """Why a member is refused, or None. Links inside the tree are not refused (the caller skips them)."""
    why = check_name(member.name)
    if why:
        return why
    if member.issym() or member.islnk():
        return check_link(member)
    if member.ischr() or member.isblk():
        return "is a device file"
    if member.isfifo():
        return "is a FIFO"
    if member.issparse():
        return "is a sparse file"
    if not (member.isfile() or member.isdir()):
        return f"has an unsupported type {member.type!r}"
    if member.size > limits.member_bytes:
        return f"expands to {member.size:,} bytes, over the {limits.member_bytes:,}-byte limit per member"
    return None


class _Counting:
    """A file object that counts the decompressed bytes tarfile reads, to stop an archive bomb early."""

    def __init__(self, raw, limit: int, where: str):
        self.raw, self.limit, self.where, self.count = raw, limit, where, 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        if self.count > self.limit:
            raise ArchiveError(f"{self.where}: expands past the {self.limit:,}-byte limit for a whole archive "
                               "(a decompression bomb, or the wrong file): refusing it")
        return data

    def close(self) -> None:
        self.raw.close()


def stream(path: Path, select: Callable[[str], bool] = lambda name: True,
           limits: Limits = Limits()) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every regular member whose name passes `select`, in archive order. Every
    member's header is checked whether or not it is selected; the first unsafe one raises
    ArchiveError. Nothing is written to disk."""
    import gzip

    path = Path(path)
    try:
        raw = gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")  # noqa: SIM115 (closed below)
    except OSError as e:
        raise ArchiveError(f"{path}: cannot open ({e})") from e
    counted = _Counting(raw, limits.total_bytes, str(path))
    n = 0
    try:
        with tarfile.open(fileobj=counted, mode="r|") as tar:
            while (member := tar.next()) is not None:
                # tarfile keeps every header it has read (~640 bytes each) for getmembers(): 1.9 GB of
                # them by the end of a Java-Large-sized stream. A stream needs none of them.
                tar.members = []
                n += 1
                if n > limits.members:
                    raise ArchiveError(f"{path}: more than {limits.members:,} members: refusing it")
                why = check_member(member, limits)
                if why:
                    raise ArchiveError(f"{path}: member {member.name!r} {why}: refusing the archive "
                                       "(it is not a source archive, or it was tampered with)")
                if not member.isfile() or not select(member.name):
                    continue
                f = tar.extractfile(member)
                data = f.read() if f is not None else b""
                if len(data) != member.size:
                    raise ArchiveError(f"{path}: member {member.name!r} is truncated "
                                       f"({len(data):,} of {member.size:,} bytes): the archive is incomplete")
                yield member.name, data
    except (tarfile.TarError, EOFError, OSError) as e:  # gzip's BadGzipFile is an OSError
        raise ArchiveError(f"{path}: not a readable tar.gz ({type(e).__name__}: {e}): delete it and download "
                           "it again") from e
    finally:
        counted.close()


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"
