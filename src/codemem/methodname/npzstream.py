"""contexts.npz (the layout of `codemem.storage.save_samples`) written row by row from the per-split text files.

`np.savez_compressed` needs every array in memory at once: for Java-Small that is gigabytes of
(n, contexts, 3) int32 rows. An .npz is a zip of .npy files, so each array is written here as a zip
member -- the .npy header (its shape is known from the split's sample count), then the rows chunk by
chunk of text lines -- and `np.load` reads the result like any other. Only the string tables
(tokens, paths, labels), the test split's renaming variants and a few chunks are held in memory.

With a process pool a chunk's work is split around the one step that must be serial: a worker
parses its lines into ids of the chunk's own (`_encode_chunk`), this process maps those onto the
global tables in chunk order, and a worker pads and deflates the rows (`_pack_rows`, as pieces of
one deflate stream: `codemem.methodname.zip_pieces`); this process only appends the pieces. The
serial part is then ~50 of the ~380 CPU seconds of Java-Small's file, so more cores help.
"""

from __future__ import annotations

import collections
import ctypes
import functools
import json
import platform
from pathlib import Path

import numpy as np

from codemem import storage
from codemem.methodname.zip_pieces import Piece, ZipPieces, piece

_FIELDS = ("var_owner", "var_token", "occ_var", "occ_ctx", "occ_side")
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def keep_heap() -> None:
    """Pool initializer for the parsing workers: glibc serves large blocks from a heap it never trims.

    Parsing a 64 MB chunk allocates and frees ~400 MB, much of it in blocks glibc would map afresh
    (the chunk, its decoded text, the joined fields) and heap it would hand back to the kernel: ~100k
    page faults a chunk, and system time was a quarter of the assembly's CPU. Kept, the pages are
    reused (faults halved; what is left are Python's own small-object arenas). Elsewhere than glibc
    nothing changes."""
    if platform.libc_ver()[0] != "glibc":
        return
    mallopt = ctypes.CDLL(None).mallopt  # the C library this process already uses
    mallopt(_M_MMAP_THRESHOLD, 1 << 30)
    mallopt(_M_TRIM_THRESHOLD, 1 << 30)


def _string_pieces(task) -> Piece:
    """np.array(strings, dtype=f"<U{width}"), deflated; runs in a worker process."""
    strings, width = task
    return piece(np.array(strings, dtype=f"<U{width}"))


def _write_strings(z: ZipPieces, key: str, strings: list[str], pool=None, rows: int = 1 << 16) -> None:
    """np.array(strings, dtype=str) as a zip member, converted a slice at a time: Java-Small's c2s
    path table is ~2.4 GB as one fixed-width array, on top of the strings themselves."""
    width = max(1, max(map(len, strings), default=1))  # numpy's width for these strings
    header = {"descr": f"<U{width}", "fortran_order": False, "shape": (len(strings),)}
    tasks = ((strings[start : start + rows], width) for start in range(0, len(strings), rows))
    with z.open(f"{key}.npy") as f:
        np.lib.format.write_array_header_2_0(f, header)
        for p in _in_order(pool, _string_pieces, tasks, 4):
            f.add(p)


def _write_array(z: ZipPieces, key: str, arr: np.ndarray) -> None:
    with z.open(f"{key}.npy") as f:
        np.lib.format.write_array(f, np.ascontiguousarray(arr), allow_pickle=False)


class _Table(dict):
    """A string table: ids in order of first appearance, handed out as `table[string]` misses."""

    def __missing__(self, key: str) -> int:
        value = self[key] = len(self)
        return value


def _chunks(path: Path, chunk_bytes: int) -> list[tuple[int, int]]:
    """(start, end) byte ranges of whole lines, about chunk_bytes each."""
    size, ranges, start = path.stat().st_size, [], 0
    with open(path, "rb") as f:
        while start < size:
            f.seek(min(start + chunk_bytes, size))
            if f.tell() < size:
                f.readline()  # to the end of the line the cut fell in
            end = f.tell()
            ranges.append((start, end))
            start = end
    return ranges


def _encode_chunk(task) -> tuple[list[str], list[str], list[str], np.ndarray, np.ndarray, np.ndarray]:
    """The lines in one byte range of a .c2v/.c2s file, encoded with tables of the chunk's own:
    (labels, tokens, paths, contexts per line, end-token ids (left, right, left, ...), path ids).

    Runs in a worker process. The tables hand out ids in the order row-by-row reading would (left
    token, path, right token, context by context; tokens share one table), so merging the chunks'
    tables in chunk order gives exactly the ids of one serial pass. Only the contexts travel back,
    not the padded rows (Java-Small's train.c2s rows are mostly padding)."""
    path, start, end, width = task
    with open(path, "rb") as f:
        f.seek(start)
        text = f.read(end - start).decode("utf-8")
    lines = text.split("\n")
    if lines[-1] == "":  # the range ends at a line's end
        lines.pop()
    tokens, paths = _Table(), _Table()
    labels, parts = [], []
    counts = np.empty(len(lines), dtype=np.int64)
    for i, line in enumerate(lines):
        label, _, rest = line.rstrip(" ").partition(" ")  # the padding is trailing empty fields
        # Our lines split at spaces and commas at once, three parts a context: no string per context
        # in between (a quarter of the parse's allocations, and their fresh pages).
        items = rest.replace(",", " ").split(" ") if rest else []
        n = len(items) // 3
        if len(items) != 3 * n or n > width or "" in items or rest.count(",") != 2 * n:
            contexts = rest.split(" ") if rest else []
            if "" in contexts:  # an empty field inside the line: not ours, but read as upstream's reader would
                contexts = list(filter(None, contexts))
            contexts = contexts[:width]
            items, n = ",".join(contexts).split(",") if contexts else [], len(contexts)
            if len(items) != 3 * n:
                raise RuntimeError(f"{path}: a context without exactly two commas near byte {start}: the file is damaged")
        labels.append(label)
        counts[i] = n
        parts.extend(items)
    ends = [""] * (2 * (len(parts) // 3))
    ends[0::2], ends[1::2] = parts[0::3], parts[2::3]
    end_ids = np.fromiter(map(tokens.__getitem__, ends), dtype=np.int32, count=len(ends))
    path_ids = np.fromiter(map(paths.__getitem__, parts[1::3]), dtype=np.int32, count=len(parts) // 3)
    return labels, list(tokens), list(paths), counts, end_ids, path_ids


_ROWS = np.empty(0, dtype="<i4")  # a worker's buffer for padded rows, reused: ~50 MB of fresh pages a chunk otherwise


def _pack_rows(task) -> Piece:
    """(lines, width, 3) int32 rows, -1 where a line has no more contexts, deflated; runs in a worker."""
    global _ROWS
    counts, width, end_ids, path_ids = task
    if _ROWS.size < len(counts) * width * 3:
        _ROWS = np.empty(len(counts) * width * 3, dtype="<i4")
    rows = _ROWS[: len(counts) * width * 3].reshape(len(counts), width, 3)
    rows.fill(-1)
    row = np.repeat(np.arange(len(counts)), counts)
    column = np.arange(len(path_ids)) - np.repeat(np.cumsum(counts) - counts, counts)
    rows[row, column, 0], rows[row, column, 1], rows[row, column, 2] = end_ids[0::2], path_ids, end_ids[1::2]
    return piece(rows)


class _Now:
    """An already-computed result, shaped like a pool's AsyncResult (no pool: everything in-process)."""

    def __init__(self, value):
        self.value = value

    def get(self):
        return self.value

    def ready(self) -> bool:
        return True


def _submit(pool, fn, task):
    return pool.apply_async(fn, (task,)) if pool else _Now(fn(task))


def _in_order(pool, fn, tasks, in_flight: int):
    """fn over tasks in order; with a pool, at most in_flight tasks out at once (bounded memory)."""
    pending: collections.deque = collections.deque()
    for task in tasks:
        pending.append(_submit(pool, fn, task))
        if len(pending) >= in_flight:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def _to_global(table: _Table, local: list[str]) -> np.ndarray:
    """The global id of each entry of a chunk's table (new strings join the global table)."""
    return np.fromiter(map(table.__getitem__, local), dtype=np.int32, count=len(local))


def assemble(work: Path, out: Path, max_contexts: int, stored: int, pool=None, chunk_bytes: int = 64 << 20) -> dict:
    """Write `out` from work/<split>/<split>.{c2v,c2s} and work/test/variants.jsonl; return counts.

    With a process pool the lines are parsed chunk by chunk in its workers, each chunk with tables
    of its own; this process maps the chunks' tables onto the global ones in chunk order (the same
    ids as one serial pass); the workers pad and deflate the rows, and this process writes them."""
    counts = {}
    n = {s: json.loads((work / s / "done.json").read_text())["samples"] for s in storage.METHODNAME_SPLITS}
    labels = _Table()
    split_labels: dict[str, list[int]] = {s: [] for s in storage.METHODNAME_SPLITS}
    in_flight = 4  # chunks out at once: two per worker on the 2-core machine; bounds memory
    with ZipPieces(out) as z:
        for k, fmt in enumerate(("c2v", "c2s")):
            tokens, paths = _Table(), _Table()
            for split in storage.METHODNAME_SPLITS:
                width = stored if fmt == "c2s" and split == "train" else max_contexts
                header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<i4")), "fortran_order": False,
                          "shape": (n[split], width, 3)}  # fmt: skip
                rows = 0
                text = work / split / f"{split}.{fmt}"
                tasks = [(text, start, end, width) for start, end in _chunks(text, chunk_bytes)]
                with z.open(f"{fmt}_{split}_ctx.npy") as f:
                    np.lib.format.write_array_header_2_0(f, header)
                    packed: collections.deque = collections.deque()
                    for chunk in _in_order(pool, _encode_chunk, tasks, in_flight):
                        names, local_tokens, local_paths, per_line, end_ids, path_ids = chunk
                        if k == 0:
                            split_labels[split] += map(labels.__getitem__, names)
                        end_ids = _to_global(tokens, local_tokens)[end_ids]
                        path_ids = _to_global(paths, local_paths)[path_ids]
                        packed.append(_submit(pool, _pack_rows, (per_line, width, end_ids, path_ids)))
                        while packed and (len(packed) > in_flight or packed[0].ready()):
                            f.add(packed.popleft().get())
                        rows += len(per_line)
                    while packed:
                        f.add(packed.popleft().get())
                if rows != n[split]:
                    raise RuntimeError(f"{work / split}: {rows} lines in {split}.{fmt} but done.json says {n[split]}")
                variants = _variants(work / split / "variants.jsonl", k, tokens)
                for name, values in zip(_FIELDS, variants):
                    _write_array(z, f"{fmt}_{split}_{name}", np.array(values, dtype=np.int32))
                counts[("" if fmt == "c2v" else "c2s_") + f"variants_{split}"] = len(variants[0])
            for split in storage.METHODNAME_SPLITS:  # the study's variants: their new strings last
                owner, rows = _renamings(work / split / "renamings.jsonl", k, max_contexts, tokens.__getitem__,
                                         paths.__getitem__)  # fmt: skip
                _write_array(z, f"{fmt}_{split}_ren_owner", owner)
                _write_array(z, f"{fmt}_{split}_ren_ctx", rows)
                counts[("" if fmt == "c2v" else "c2s_") + f"renamings_{split}"] = len(owner)
            _write_strings(z, f"{fmt}_tokens", list(tokens), pool)
            del tokens
            _write_strings(z, f"{fmt}_paths", list(paths), pool)
            del paths
        _write_strings(z, "labels", list(labels), pool)
        for split in storage.METHODNAME_SPLITS:
            _write_array(z, f"{split}_label", np.array(split_labels[split], dtype=np.int32))
        for split in storage.METHODNAME_SPLITS:
            flags = _code_lines(work / split / "code_lines.txt", n[split])
            if flags is not None:
                _write_array(z, f"{split}_code_line", flags)
    return counts


def _renamings(path: Path, k: int, width: int, token, path_id) -> tuple[np.ndarray, np.ndarray]:
    """(owner (R,), contexts (R, width, 3)) of format k's re-extracted renaming variants (storage.Renamings);
    `token` / `path_id` give a string's table id."""
    owner, rows = [], []
    if path.exists():
        with open(path) as f:
            for i, line in enumerate(f):
                for contexts in json.loads(line)[k]:
                    row = np.full((width, 3), -1, dtype=np.int32)
                    for c, context in enumerate(contexts[:width]):
                        a, p, b = context.split(",")
                        row[c] = (token(a), path_id(p), token(b))
                    owner.append(i)
                    rows.append(row)
    ctx = np.stack(rows) if rows else np.zeros((0, width, 3), dtype=np.int32)
    return np.array(owner, dtype=np.int32), ctx


def _code_lines(path: Path, n: int) -> np.ndarray | None:
    """(n,) int8: 1 where code2vec's extractor sees a code line (`renaming.has_code_line`); None
    without the file (work written before it)."""
    if not path.exists():
        return None
    flags = np.frombuffer(path.read_bytes(), dtype=np.uint8)[0::2]
    if len(flags) != n:
        raise RuntimeError(f"{path}: {len(flags)} flags for {n} samples: the extraction is damaged")
    return (flags == ord("1")).astype(np.int8)


def _variants(path: Path, k: int, tokens: dict) -> tuple[list, ...]:
    """owner, token, occ_var, occ_ctx, occ_side of format k's variants (see codemem.storage.Variants)."""
    owner, token, occ_var, occ_ctx, occ_side = [], [], [], [], []
    if path.exists():
        with open(path) as f:
            for i, line in enumerate(f):
                for new_token, changed in json.loads(line)[k]:
                    v = len(owner)
                    owner.append(i)
                    token.append(tokens.setdefault(new_token, len(tokens)))
                    for ctx, side in changed:
                        occ_var.append(v), occ_ctx.append(ctx), occ_side.append(side)
    return owner, token, occ_var, occ_ctx, occ_side


def assemble_in_memory(work: Path, out: Path, max_contexts: int, stored: int) -> dict:
    """`out` as numpy's savez_compressed writes it (`storage.save_samples`), from the same text files,
    every array in memory: recipe npz "savez" (jdk-top10: tens of thousands of samples), whose
    contexts.npz keeps the bytes it has always had. Ids are handed out row by row as in `assemble`,
    except that a row's renaming variants take their token ids right after the row's contexts (not
    after the split's), and the members are in save_samples' order."""
    labels: dict[str, int] = {}
    idx = lambda table, key: table.setdefault(key, len(table))
    split_labels, counts, formats = {}, {}, {}
    for k, fmt in enumerate(("c2v", "c2s")):
        tokens: dict[str, int] = {}
        paths: dict[str, int] = {}
        contexts, variants = {}, {}
        for split in storage.METHODNAME_SPLITS:
            width = stored if fmt == "c2s" and split == "train" else max_contexts
            rows = (work / split / f"{split}.{fmt}").read_text().split("\n")[:-1]
            path = work / split / "variants.jsonl"
            renamings = [json.loads(line)[k] for line in path.read_text().split("\n")[:-1]] if path.exists() else []
            arr = np.full((len(rows), width, 3), -1, dtype=np.int32)
            owner, var_token, occ_var, occ_ctx, occ_side = [], [], [], [], []
            row_labels = []
            for i, line in enumerate(rows):
                label, *fields = line.split(" ")
                row_labels.append(label)
                for c, context in enumerate(f for f in fields if f):
                    a, p, b = context.split(",")
                    arr[i, c] = (idx(tokens, a), idx(paths, p), idx(tokens, b))
                for new_token, changed in renamings[i] if i < len(renamings) else []:
                    v = len(owner)
                    owner.append(i)
                    var_token.append(idx(tokens, new_token))
                    for ctx, side in changed:
                        occ_var.append(v), occ_ctx.append(ctx), occ_side.append(side)
            if k == 0:
                split_labels[split] = np.array([idx(labels, label) for label in row_labels], dtype=np.int32)
                counts[f"samples_{split}"] = len(rows)
            as32 = lambda xs: np.array(xs, dtype=np.int32)
            contexts[split] = arr
            variants[split] = storage.Variants(as32(owner), as32(var_token), as32(occ_var), as32(occ_ctx), as32(occ_side))
            counts[("" if fmt == "c2v" else "c2s_") + f"variants_{split}"] = len(owner)
        renamed = {}
        for split in storage.METHODNAME_SPLITS:  # the study's variants: their new strings last
            renamed[split] = storage.Renamings(*_renamings(work / split / "renamings.jsonl", k, max_contexts,
                                                           functools.partial(idx, tokens), functools.partial(idx, paths)))
            counts[("" if fmt == "c2v" else "c2s_") + f"renamings_{split}"] = len(renamed[split].owner)
        table = lambda t: np.array(list(t), dtype=str)
        formats[fmt] = storage.ContextSet(table(tokens), table(paths), contexts, variants, renamed)
    code_line = {s: _code_lines(work / s / "code_lines.txt", counts[f"samples_{s}"]) for s in storage.METHODNAME_SPLITS}
    code_line = {s: flags for s, flags in code_line.items() if flags is not None}
    storage.save_samples(out, storage.SampleSet(np.array(list(labels), dtype=str), split_labels, formats, code_line))
    return counts
