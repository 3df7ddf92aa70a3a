"""Files shared between stages: atomic writes and the extracted-samples format.

Every stage writes its outputs into a temporary sibling and renames it into place at the end, so a
failed or interrupted stage leaves either the previous outputs or nothing, never half a file.

MethodName samples (`build/samples/contexts.npz`) are stored compactly for training: string tables
(`tokens`, `paths`, `labels`) and, per split, `{split}_ctx` int32 (n, max_contexts, 3) rows of
(source token, path, target token) indices into those tables with -1 as padding, and `{split}_label`.
For the critical sample ratio each split also holds its renaming variants: variant v belongs to
sample `{split}_var_owner[v]` and renames the terminals at (`{split}_occ_ctx`, `{split}_occ_side`)
for the occurrences o with `{split}_occ_var[o] == v` to token `{split}_var_token[v]`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_dir(target: Path):
    """Yield a temporary folder next to `target`; on success it replaces `target` whole."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


def atomic_write(path: Path, data: bytes | str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


@dataclass
class Variants:
    owner: np.ndarray  # (V,) sample index within the split
    token: np.ndarray  # (V,) index into the tokens table of the renamed terminal
    occ_var: np.ndarray  # (O,) variant index
    occ_ctx: np.ndarray  # (O,) context row
    occ_side: np.ndarray  # (O,) 0 = source terminal, 1 = target terminal


@dataclass
class SampleSet:
    tokens: np.ndarray
    paths: np.ndarray
    labels: np.ndarray
    contexts: dict[str, np.ndarray]  # split -> (n, C, 3) int32, -1 = padding
    split_labels: dict[str, np.ndarray]  # split -> (n,) indices into labels
    variants: dict[str, Variants]


def save_samples(path: Path, samples: SampleSet) -> None:
    arrays = {"tokens": samples.tokens, "paths": samples.paths, "labels": samples.labels}
    for split in SPLITS:
        arrays[f"{split}_ctx"] = samples.contexts[split]
        arrays[f"{split}_label"] = samples.split_labels[split]
        v = samples.variants[split]
        arrays |= {
            f"{split}_var_owner": v.owner,
            f"{split}_var_token": v.token,
            f"{split}_occ_var": v.occ_var,
            f"{split}_occ_ctx": v.occ_ctx,
            f"{split}_occ_side": v.occ_side,
        }
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def load_samples(samples_dir: Path = Path("build/samples")) -> SampleSet:
    path = Path(samples_dir) / "contexts.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the extract stage first (`dvc repro extract`)")
    with np.load(path, allow_pickle=False) as z:
        return SampleSet(
            tokens=z["tokens"],
            paths=z["paths"],
            labels=z["labels"],
            contexts={s: z[f"{s}_ctx"] for s in SPLITS},
            split_labels={s: z[f"{s}_label"] for s in SPLITS},
            variants={
                s: Variants(
                    z[f"{s}_var_owner"], z[f"{s}_var_token"], z[f"{s}_occ_var"], z[f"{s}_occ_ctx"], z[f"{s}_occ_side"]
                )
                for s in SPLITS
            },
        )
