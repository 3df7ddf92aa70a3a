"""codemem.methodname.zip_pieces: an .npz deflated in pieces must read back like np.savez_compressed's."""

import os
import random
import zipfile
import zlib

import numpy as np
import pytest

from codemem.methodname import zip_pieces


def test_combine_gives_the_crc_of_the_concatenation():
    rng = random.Random(0)
    for size_a, size_b in [(0, 0), (0, 7), (7, 0), (1, 1), (1000, 4096), (3, 1 << 20)]:
        a, b = rng.randbytes(size_a), rng.randbytes(size_b)
        assert zip_pieces.combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


def test_pieces_deflated_apart_make_one_stream():
    data = os.urandom(5000) + bytes(100_000) + b"abc" * 3000
    pieces = [zip_pieces.piece(data[i : i + 7777]) for i in range(0, len(data), 7777)]
    stream = b"".join(p.data for p in pieces) + zip_pieces._FINAL_BLOCK
    assert zlib.decompress(stream, -15) == data


@pytest.mark.parametrize("split_rows", [1, 3, 1000])
def test_an_npz_written_in_pieces_loads_as_written(tmp_path, split_rows):
    rows = np.arange(5 * 4 * 3, dtype="<i4").reshape(5, 4, 3) - 7
    names = np.array(["a", "bb|c", "dé"])
    out = tmp_path / "x.npz"
    with zip_pieces.ZipPieces(out) as z:
        with z.open("rows.npy") as f:
            header = {"descr": "<i4", "fortran_order": False, "shape": rows.shape}
            np.lib.format.write_array_header_2_0(f, header)
            for start in range(0, len(rows), split_rows):
                f.add(zip_pieces.piece(rows[start : start + split_rows]))
        with z.open("names.npy") as f:
            np.lib.format.write_array(f, names)
        with z.open("empty.npy") as f:
            np.lib.format.write_array(f, np.zeros(0, dtype=np.int32))
    with zipfile.ZipFile(out) as z:
        assert z.testzip() is None  # every member's CRC-32 and size as recorded
        assert [i.compress_type for i in z.infolist()] == [zipfile.ZIP_DEFLATED] * 3
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    with np.load(out) as z:
        assert z["rows"].tolist() == rows.tolist() and z["names"].tolist() == names.tolist()
        assert z["empty"].shape == (0,)


def test_the_same_arrays_give_the_same_bytes(tmp_path):
    # Fixed timestamps: a rerun of extract gives a file DVC sees as unchanged.
    for name in ("a.npz", "b.npz"):
        with zip_pieces.ZipPieces(tmp_path / name) as z, z.open("x.npy") as f:
            np.lib.format.write_array(f, np.arange(1000))
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_a_failed_write_leaves_no_central_directory(tmp_path):
    # A half-written file must not look like a whole .npz (the caller writes into a temporary folder).
    out = tmp_path / "x.npz"
    with pytest.raises(RuntimeError), zip_pieces.ZipPieces(out) as z, z.open("a.npy") as f:
        np.lib.format.write_array(f, np.arange(3))
        raise RuntimeError("cut")
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(out)
