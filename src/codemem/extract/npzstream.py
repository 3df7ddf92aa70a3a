"""contexts.npz (the layout of `codemem.io.save_samples`) written row by row from the per-split text files.

`np.savez_compressed` needs every array in memory at once: for Java-Small that is gigabytes of
(n, contexts, 3) int32 rows. An .npz is a zip of .npy files, so each array is written here as a zip
member -- the .npy header (its shape is known from the split's sample count), then the rows as each
text line is read -- and `np.load` reads the result like any other. Only the string tables (tokens,
paths, labels) and the test split's renaming variants are held in memory.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from codemem import io

_FIELDS = ("var_owner", "var_token", "occ_var", "occ_ctx", "occ_side")


def _write_array(z: zipfile.ZipFile, key: str, arr: np.ndarray) -> None:
    with z.open(f"{key}.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array(f, np.ascontiguousarray(arr), allow_pickle=False)


def _lines(path: Path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split(" ")
            yield fields[0], [c for c in fields[1:] if c]


def assemble(work: Path, out: Path, max_contexts: int, stored: int) -> dict:
    """Write `out` from work/<split>/<split>.{c2v,c2s} and work/test/variants.jsonl; return counts."""
    counts = {}
    n = {s: json.loads((work / s / "done.json").read_text())["samples"] for s in io.METHODNAME_SPLITS}
    labels: dict[str, int] = {}
    split_labels: dict[str, list[int]] = {s: [] for s in io.METHODNAME_SPLITS}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1, allowZip64=True) as z:
        for k, fmt in enumerate(("c2v", "c2s")):
            tokens: dict[str, int] = {}
            paths: dict[str, int] = {}
            for split in io.METHODNAME_SPLITS:
                width = stored if fmt == "c2s" and split == "train" else max_contexts
                header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<i4")), "fortran_order": False,
                          "shape": (n[split], width, 3)}  # fmt: skip
                rows = 0
                with z.open(f"{fmt}_{split}_ctx.npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array_header_2_0(f, header)
                    for label, contexts in _lines(work / split / f"{split}.{fmt}"):
                        if k == 0:
                            split_labels[split].append(labels.setdefault(label, len(labels)))
                        row = np.full((width, 3), -1, dtype="<i4")
                        for i, context in enumerate(contexts[:width]):
                            a, p, b = context.split(",")
                            row[i, 0] = tokens.setdefault(a, len(tokens))
                            row[i, 1] = paths.setdefault(p, len(paths))
                            row[i, 2] = tokens.setdefault(b, len(tokens))
                        f.write(row.tobytes())
                        rows += 1
                if rows != n[split]:
                    raise RuntimeError(f"{work / split}: {rows} lines in {split}.{fmt} but done.json says {n[split]}")
                variants = _variants(work / split / "variants.jsonl", k, tokens)
                for name, values in zip(_FIELDS, variants):
                    _write_array(z, f"{fmt}_{split}_{name}", np.array(values, dtype=np.int32))
                counts[("" if fmt == "c2v" else "c2s_") + f"variants_{split}"] = len(variants[0])
            _write_array(z, f"{fmt}_tokens", np.array(list(tokens), dtype=str))
            _write_array(z, f"{fmt}_paths", np.array(list(paths), dtype=str))
        _write_array(z, "labels", np.array(list(labels), dtype=str))
        for split in io.METHODNAME_SPLITS:
            _write_array(z, f"{split}_label", np.array(split_labels[split], dtype=np.int32))
    return counts


def _variants(path: Path, k: int, tokens: dict) -> tuple[list, ...]:
    """owner, token, occ_var, occ_ctx, occ_side of format k's variants (see codemem.io.Variants)."""
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
