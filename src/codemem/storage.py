"""What stages hand each other: where (`Layout`), in which format, written atomically.

`Layout` is the one place that names the inter-stage paths (dvc.yaml declares the same ones; a test
checks they agree). Every stage writes its outputs into a temporary sibling and renames it into place at the end, so a
failed or interrupted stage leaves either the previous outputs or nothing, never half a file.

MethodName samples (`build/samples/contexts.npz`) are stored compactly for training: the `labels`
table and `{split}_label` indices, and per context format `fmt` (c2v, c2s) string tables
(`{fmt}_tokens`, `{fmt}_paths`) and per split `{fmt}_{split}_ctx` int32 (n, C, 3) rows of
(source token, path, target token) indices into those tables with -1 as padding. For the critical
sample ratio each split also holds its renaming variants: variant v belongs to sample
`{fmt}_{split}_var_owner[v]` and renames the terminals at (`..._occ_ctx`, `..._occ_side`) for the
occurrences o with `..._occ_var[o] == v` to token `..._var_token[v]`. The study's variants
(`codemem.methodname.renaming`: the method renamed and extracted again) are whole samples: variant r
of sample `{fmt}_{split}_ren_owner[r]` has the context rows `{fmt}_{split}_ren_ctx[r]` ((R, C, 3)
int32, the split's width C, -1 padding; their new strings come last in the tables). `{split}_code_line`
(n,) int8: 1 if the method has a code line by code2vec's extractor (`MinCodeLength`), which drops the
others. Both are absent from files extracted before them (empty / missing when loaded).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from codemem.errors import DiskFullError, MissingInputError

METHODNAME_SPLITS = ("train", "val", "test")  # the code2vec / code2seq file names
VARMISUSE_SPLITS = ("train", "dev", "eval")  # the published Py150-Great folders


@dataclass(frozen=True)
class Layout:
    """Where each stage reads and writes, under a project root (the folder with dvc.yaml)."""

    root: Path = Path(".")

    @property
    def raw(self) -> Path:  # fetch -> extract: corpus.zip, manifest.json
        return self.root / "build" / "raw"

    @property
    def corpus(self) -> Path:
        return self.raw / "corpus.zip"

    @property
    def manifest(self) -> Path:
        return self.raw / "manifest.json"

    @property
    def samples(self) -> Path:  # extract -> corrupt, train
        return self.root / "build" / "samples"

    @property
    def extract_work(self) -> Path:  # extract's spills and resume points (deleted when a split is done)
        return self.root / "build" / "extract-work"

    @property
    def noisy(self) -> Path:  # corrupt -> train
        return self.root / "build" / "noisy"

    @property
    def model(self) -> Path:  # train: the final weights
        return self.root / "build" / "model"

    @property
    def logs(self) -> Path:  # train -> evaluate: per-sample arrays, counts
        return self.root / "build" / "logs"

    @property
    def encoded(self) -> Path:  # VarMisuse's splits encoded for reading by batch: a cache, not a DVC output
        return self.root / "build" / "cache" / "varmisuse"

    @property
    def checkpoints(self) -> Path:  # train's resume point (persists across `dvc repro`)
        return self.root / "build" / "checkpoints"

    @property
    def checkpoint(self) -> Path:
        return self.checkpoints / "train.pt"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def epochs_csv(self) -> Path:  # train -> evaluate, dvc plots
        return self.plots / "epochs.csv"

    @property
    def metrics_json(self) -> Path:  # evaluate -> dvc metrics
        return self.root / "metrics" / "metrics.json"


PROJECT = Layout()  # the current folder: where `dvc repro` runs the stages


def require(path: Path, stage: str) -> Path:
    """`path` if it exists, else a user error naming the stage that makes it."""
    if not Path(path).exists():
        raise MissingInputError(f"{path} is missing: run the {stage} stage first (`dvc repro {stage}`)")
    return Path(path)


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
        with writing(target, f"{target.name}/"):
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


FREE_SPACE_HINT = ("free space there (`dvc gc --workspace` drops DVC cache entries no commit or experiment uses; "
                   "build/extract-work holds unfinished extractions' resumable scratch) or move the work to a larger disk "
                   "(`dvc cache dir PATH` for DVC's cache; a clone elsewhere for build/)")


def _mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def free_bytes(path: Path) -> tuple[int, Path]:
    """Free bytes on the file system that holds `path` (or its nearest existing parent), and that parent."""
    where = Path(path).absolute()
    while not where.exists() and where != where.parent:
        where = where.parent
    return shutil.disk_usage(where).free, where


def require_space(path: Path, need: int, what: str) -> None:
    """Refuse early, with the figures, when `need` bytes for `what` will not fit where `path` goes.
    `CODEMEM_FREE_BYTES` (tests) pretends the disk has that much free."""
    free, where = free_bytes(path)
    free = int(os.environ.get("CODEMEM_FREE_BYTES", free))
    if need > free:
        raise DiskFullError(f"{what} needs about {_mib(need)} at {path}, but {where} has {_mib(free)} free: "
                            f"{FREE_SPACE_HINT}")


@contextlib.contextmanager
def writing(path: Path, what: str):
    """Turn a full disk (ENOSPC, EDQUOT) while writing `what` to `path` into one clear line."""
    try:
        yield
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        free, where = free_bytes(path)
        raise DiskFullError(f"no space left on the device while writing {what} to {path} ({_mib(free)} free at "
                            f"{where}): {FREE_SPACE_HINT}. Nothing half-written was kept") from None


def atomic_write(path: Path, data: bytes | str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with writing(path, path.name), os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_epochs_csv(history: list[dict], path: Path, columns: list[str]) -> None:
    """plots/epochs.csv: one row per epoch (or step), floats with 6 decimals, written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in history:
            writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})
    os.replace(tmp, path)


@dataclass
class Variants:
    owner: np.ndarray  # (V,) sample index within the split
    token: np.ndarray  # (V,) index into the tokens table of the renamed terminal
    occ_var: np.ndarray  # (O,) variant index
    occ_ctx: np.ndarray  # (O,) context row
    occ_side: np.ndarray  # (O,) 0 = source terminal, 1 = target terminal


@dataclass
class Renamings:
    """The study's renaming variants, re-extracted: whole samples."""

    owner: np.ndarray  # (R,) sample index within the split
    contexts: np.ndarray  # (R, C, 3) int32, -1 = padding


@dataclass
class ContextSet:
    """One context format: `c2v` (code2vec: normalised terminals, hashed paths) or `c2s` (code2seq:
    `|`-joined terminal sub-tokens and path nodes)."""

    tokens: np.ndarray
    paths: np.ndarray
    contexts: dict[str, np.ndarray]  # split -> (n, C, 3) int32, -1 = padding
    variants: dict[str, Variants]
    renamings: dict[str, Renamings] = field(default_factory=dict)  # split -> the study's variants


@dataclass
class SampleSet:
    labels: np.ndarray
    split_labels: dict[str, np.ndarray]  # split -> (n,) indices into labels
    formats: dict[str, ContextSet]
    code_line: dict[str, np.ndarray] = field(default_factory=dict)  # split -> (n,) int8, 1 = has a code line


FORMATS = ("c2v", "c2s")


def save_samples(path: Path, samples: SampleSet) -> None:
    arrays = {"labels": samples.labels} | {f"{s}_label": samples.split_labels[s] for s in METHODNAME_SPLITS}
    for fmt, cs in samples.formats.items():
        arrays |= {f"{fmt}_tokens": cs.tokens, f"{fmt}_paths": cs.paths}
        for split in METHODNAME_SPLITS:
            v = cs.variants[split]
            arrays |= {
                f"{fmt}_{split}_ctx": cs.contexts[split],
                f"{fmt}_{split}_var_owner": v.owner,
                f"{fmt}_{split}_var_token": v.token,
                f"{fmt}_{split}_occ_var": v.occ_var,
                f"{fmt}_{split}_occ_ctx": v.occ_ctx,
                f"{fmt}_{split}_occ_side": v.occ_side,
            }
    for fmt, cs in samples.formats.items():  # after the arrays above: their members keep their bytes
        for split, r in cs.renamings.items():
            arrays |= {f"{fmt}_{split}_ren_owner": r.owner, f"{fmt}_{split}_ren_ctx": r.contexts}
    arrays |= {f"{split}_code_line": flags for split, flags in samples.code_line.items()}
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def load_samples(samples_dir: Path = PROJECT.samples, formats=FORMATS) -> SampleSet:
    path = require(Path(samples_dir) / "contexts.npz", "extract")
    fields = ("var_owner", "var_token", "occ_var", "occ_ctx", "occ_side")
    with np.load(path, allow_pickle=False) as z:
        names = set(z.zip.namelist())
        return SampleSet(
            labels=z["labels"],
            split_labels={s: z[f"{s}_label"] for s in METHODNAME_SPLITS},
            formats={
                fmt: ContextSet(
                    tokens=z[f"{fmt}_tokens"],
                    paths=z[f"{fmt}_paths"],
                    contexts={s: z[f"{fmt}_{s}_ctx"] for s in METHODNAME_SPLITS},
                    variants={s: Variants(*(z[f"{fmt}_{s}_{k}"] for k in fields)) for s in METHODNAME_SPLITS},
                    renamings={s: Renamings(z[f"{fmt}_{s}_ren_owner"], z[f"{fmt}_{s}_ren_ctx"])
                               for s in METHODNAME_SPLITS if f"{fmt}_{s}_ren_owner.npy" in names},
                )
                for fmt in formats
            },
            code_line={s: z[f"{s}_code_line"] for s in METHODNAME_SPLITS if f"{s}_code_line.npy" in names},
        )


def load_noisy_labels(noisy_dir: Path = PROJECT.noisy) -> list[str]:
    """MethodName: the training labels after noise, in training-split order (corrupt's labels.tsv)."""
    lines = require(Path(noisy_dir) / "labels.tsv", "corrupt").read_text().splitlines()[1:]
    return [line.split("\t")[2] for line in lines]
