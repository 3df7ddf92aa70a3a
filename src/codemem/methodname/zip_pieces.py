"""A zip64 archive (an .npz) whose members are deflated piece by piece, the pieces made in parallel.

`zipfile` deflates every member in the writing process, one core: for Java-Small's contexts.npz that
is ~9.5 GB of padded rows, about a quarter of the time it takes to assemble the file. A deflate
stream may be cut into pieces that each end on a byte boundary (a sync flush, as pigz does), so
worker processes deflate the pieces (`piece`) and this process only appends them, in order, to the
member (`Member.add`); the member's CRC-32 is combined from the pieces' (`combine`). `np.load` and
`unzip` read the result like any other zip; every timestamp is 1980-01-01, so the same arrays give
the same bytes.

Format: PKWARE's APPNOTE.TXT (4.3.7 local header, 4.3.12 central directory, 4.3.14-16 zip64 end
records, 4.5.3 the zip64 extra field). Every member carries the zip64 sizes, as zipfile's
`force_zip64=True` does, since a member's size is known only at its end.
"""

from __future__ import annotations

import functools
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Self

_UNKNOWN = 0xFFFFFFFF  # a 32-bit field whose value is in the zip64 extra field
_VERSION = 45  # 4.5: zip64
_MADE_BY = (3 << 8) | _VERSION  # on Unix: the external attributes are a file mode
_DATE_1980 = (1 << 5) | 1  # DOS date 1980-01-01, time 00:00:00
_FINAL_BLOCK = b"\x03\x00"  # an empty final fixed-Huffman block: ends a stream of sync-flushed pieces


@dataclass(frozen=True)
class Piece:
    """A deflated slice of a member: raw deflate ending on a byte boundary, never final."""

    data: bytes
    crc: int  # CRC-32 of the slice alone
    size: int  # bytes before deflating


def piece(data, level: int = 1) -> Piece:
    """Deflate one slice (bytes or a contiguous array); runs in a worker process."""
    deflate = zlib.compressobj(level, zlib.DEFLATED, -15)
    view = memoryview(data).cast("B")
    return Piece(deflate.compress(view) + deflate.flush(zlib.Z_SYNC_FLUSH), zlib.crc32(view), len(view))


def _times(matrix, vector: int) -> int:
    """matrix (32 columns as ints) x vector over GF(2)."""
    total, column = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[column]
        vector >>= 1
        column += 1
    return total


@functools.cache
def _zero_bytes_operators() -> tuple[tuple[int, ...], ...]:
    """k -> the map of a CRC register over 2**k zero bytes, squared up from one zero bit (the
    reflected polynomial 0xEDB88320), as zlib's crc32_combine builds them."""
    operator = [0xEDB88320] + [1 << k for k in range(31)]  # one zero bit
    for _ in range(3):  # one zero byte
        operator = [_times(operator, c) for c in operator]
    operators = []
    for _ in range(64):
        operators.append(tuple(operator))
        operator = [_times(operator, c) for c in operator]
    return tuple(operators)


def combine(crc_a: int, crc_b: int, size_b: int) -> int:
    """crc32(A + B) from crc32(A), crc32(B) and len(B): CRC-32 is affine, so crc32(A + B) is crc_a
    carried over len(B) zero bytes, xor crc_b."""
    for operator in _zero_bytes_operators():
        if not size_b:
            break
        if size_b & 1:
            crc_a = _times(operator, crc_a)
        size_b >>= 1
    return crc_a ^ crc_b


class Member:
    """One member being written: a local header now, pieces in order, sizes patched in at `close`."""

    def __init__(self, archive: ZipPieces, name: str):
        self.archive, self.name = archive, name.encode("ascii")
        self.offset, self.crc, self.size, self.compressed = archive.file.tell(), 0, 0, 0
        extra = struct.pack("<HHQQ", 1, 16, 0, 0)
        archive.file.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, _VERSION, 0, 8, 0, _DATE_1980, 0, _UNKNOWN, _UNKNOWN,
                                       len(self.name), len(extra)) + self.name + extra)  # fmt: skip

    def add(self, p: Piece) -> None:
        self.archive.file.write(p.data)
        self.crc = combine(self.crc, p.crc, p.size)
        self.size += p.size
        self.compressed += len(p.data)

    def write(self, data) -> int:
        """Deflate here (small data: .npy headers, short arrays); file-like, for np.lib.format."""
        self.add(piece(data))
        return len(memoryview(data).cast("B"))

    def close(self) -> None:
        f = self.archive.file
        f.write(_FINAL_BLOCK)
        self.compressed += len(_FINAL_BLOCK)
        end = f.tell()
        f.seek(self.offset + 14)
        f.write(struct.pack("<I", self.crc))
        f.seek(self.offset + 30 + len(self.name) + 4)
        f.write(struct.pack("<QQ", self.size, self.compressed))
        f.seek(end)
        self.archive.members.append(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind, *_) -> None:
        if kind is None:
            self.close()


class ZipPieces:
    """A zip64 file written member by member; the central directory and end records at `close`."""

    def __init__(self, path: Path):
        self.file = open(path, "wb")  # noqa: SIM115 (closed in close / __exit__)
        self.members: list[Member] = []

    def open(self, name: str) -> Member:
        return Member(self, name)

    def close(self) -> None:
        f, start = self.file, self.file.tell()
        for m in self.members:
            extra = struct.pack("<HHQQQ", 1, 24, m.size, m.compressed, m.offset)
            f.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, _MADE_BY, _VERSION, 0, 8, 0, _DATE_1980, m.crc,
                                _UNKNOWN, _UNKNOWN, len(m.name), len(extra), 0, 0, 0, 0o644 << 16, _UNKNOWN)
                    + m.name + extra)  # fmt: skip
        end64, n = f.tell(), len(self.members)
        f.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, _VERSION, _VERSION, 0, 0, n, n, end64 - start, start))
        f.write(struct.pack("<IIQI", 0x07064B50, 0, end64, 1))
        f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, min(n, 0xFFFF), min(n, 0xFFFF),
                            min(end64 - start, _UNKNOWN), _UNKNOWN, 0))  # fmt: skip
        f.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind, *_) -> None:
        if kind is None:
            self.close()
        else:
            self.file.close()
