"""VarMisuse's data side: samples encoded once into flat files on disk, and the training batches.

The data pipeline follows ICLR20-Great's `data/data_loader.py`:
- each token becomes its (at most 10) sub-token ids under the original vocabulary
  (`great_format.GreatVocabulary`); a token whose pieces are all unknown is padding to the model, as the
  original's `token_mask = clip(sum(tokens), 0, 1)` makes it;
- edges through the original mapping (`great_format.loader_edges`: relation i forward as type 2i, reversed
  as 2i+1); only integer `repair_candidates` are kept; samples longer than `max_length` (512) are
  skipped and counted;
- training batches within a token budget (`max_batch_tokens`, 12,500 padded tokens): upstream's
  `make_batch` picks a random pivot length in a buffer of about 50 batches and fills a batch with the
  samples closest to it (`token_budget_batches`, `train.measure: clean`); the study's copy of the
  loader has that pivot sort commented out, so its batches take the samples in stream order
  (`stream_batches`, `train.measure: study`).

Which samples a step trains on and which are measured (`step_samples`, `subset`) is here too: like
the batches, a function of (seed, step). codemem.varmisuse.bug_training trains on what this makes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import weakref
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from codemem import storage
from codemem.varmisuse import great_format, pointer_model

BUFFER_BATCHES = 50  # the original's `max_buffer_size`: batches' worth of tokens per batching buffer


# ---- data ----------------------------------------------------------------------------------------
# Py150-Great's training split is 1.8M samples, tens of GB as JSON and more as arrays: it cannot be
# held in memory. A split is encoded once, streamed sample by sample (as the original's loader reads
# its shards), into flat binary files; batches read their samples back with pread. In memory stay
# only per-sample offsets and labels (~60 bytes a sample: ~110 MB for 1.8M).
ENCODED = ("tokens", "edges", "targets", "candidates")  # one file each, int16 (ids < 14,281, positions < 512)
STORE_VERSION = 1  # part of the cache key: change it when the encoding changes


class Sample(NamedTuple):
    tokens: np.ndarray  # (T, S<=max_subtokens) int64 sub-token ids, 0 = PAD
    edges: np.ndarray  # (E, 3) int64 [type slot, from, to], reverses included
    targets: np.ndarray  # repair target positions
    candidates: np.ndarray  # integer repair candidate positions


@dataclass
class Split:
    """One split as the original loader's `to_sample` encodes it (samples over max_length left out),
    its samples on disk in `folder` (`sample(i)` reads one back)."""

    folder: Path
    offsets: dict[str, np.ndarray]  # per encoded file: (n + 1,) element offsets of the samples
    widths: np.ndarray  # (n,) sub-token columns of each sample's token table
    lengths: np.ndarray  # (n,) tokens per sample
    error_location: np.ndarray  # (n,) 0 = no bug
    line: np.ndarray  # (n,) each sample's line in the .jsonl file
    skipped_too_long: int

    def __post_init__(self):
        self._fds = {k: os.open(self.folder / f"{k}.bin", os.O_RDONLY) for k in ENCODED}
        weakref.finalize(self, lambda fds: [os.close(fd) for fd in fds], list(self._fds.values()))

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def has_bug(self) -> np.ndarray:
        return self.error_location > 0  # what the original's loss uses (clip(error_loc, 0, 1))

    def _read(self, key: str, i: int) -> np.ndarray:
        start, stop = int(self.offsets[key][i]), int(self.offsets[key][i + 1])
        return np.frombuffer(os.pread(self._fds[key], 2 * (stop - start), 2 * start), dtype=np.int16).astype(np.int64)

    def sample(self, i: int) -> Sample:
        return Sample(self._read("tokens", i).reshape(int(self.lengths[i]), int(self.widths[i])),
                      self._read("edges", i).reshape(-1, 3), self._read("targets", i), self._read("candidates", i))  # fmt: skip

    @classmethod
    def open(cls, folder: Path) -> Split:
        with np.load(folder / "index.npz") as index:
            arrays = {k: index[k] for k in index.files}
        offsets = {k: arrays.pop(f"offsets_{k}") for k in ENCODED}
        return cls(folder, offsets, skipped_too_long=int(arrays.pop("skipped_too_long")), **arrays)


def encode_samples(samples, vocab: great_format.GreatVocabulary, max_subtokens: int, max_length: int,
                   folder: Path | None = None) -> Split:  # fmt: skip
    """Encode an iterable of samples (read once) into a Split in `folder` (default: a temporary
    folder, removed with the Split)."""
    if vocab.size >= 2**15 or max_length >= 2**15:
        raise ValueError("sub-token ids and token positions must fit int16")
    owned = folder is None
    folder = Path(tempfile.mkdtemp(prefix="codemem-split-")) if owned else Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ids: dict[str, list[int]] = {}  # token -> sub-token ids; code repeats its tokens a lot
    sizes = {k: array("q") for k in ENCODED}
    widths, lengths, locations, lines = array("q"), array("q"), array("q"), array("q")
    skipped = 0
    files = {k: open(folder / f"{k}.bin", "wb") for k in ENCODED}  # noqa: SIM115 (closed below)
    try:
        for line, sample in enumerate(samples):
            tokens = sample["source_tokens"]
            if len(tokens) > max_length:
                skipped += 1
                continue
            if len(ids) > 1_000_000:  # bounded memory over millions of samples
                ids.clear()
            pieces = [ids.get(t) or ids.setdefault(t, vocab.encode(t, max_subtokens)) for t in tokens]
            table = np.zeros((len(tokens), max(map(len, pieces))), dtype=np.int16)
            for i, p in enumerate(pieces):
                table[i, : len(p)] = p
            parts = {"tokens": table, "edges": np.array(great_format.loader_edges(sample["edges"]), dtype=np.int16),
                     "targets": np.array(sample["repair_targets"], dtype=np.int16),
                     "candidates": np.array(great_format.candidate_positions(sample), dtype=np.int16)}  # fmt: skip
            for k, a in parts.items():
                files[k].write(a.tobytes())
                sizes[k].append(a.size)
            widths.append(table.shape[1])
            lengths.append(len(tokens))
            locations.append(sample["error_location"])
            lines.append(line)
    finally:
        for f in files.values():
            f.close()
    arrays = {"widths": widths, "lengths": lengths, "error_location": locations, "line": lines}
    arrays = {k: np.frombuffer(v, dtype=np.int64).copy() if len(v) else np.zeros(0, np.int64) for k, v in arrays.items()}
    offsets = {f"offsets_{k}": np.concatenate([[0], np.cumsum(np.frombuffer(sizes[k], dtype=np.int64) if len(sizes[k])
                                                               else np.zeros(0, np.int64))]).astype(np.int64)
               for k in ENCODED}  # fmt: skip
    np.savez(folder / "index.npz", **arrays, **offsets, skipped_too_long=skipped)
    split = Split.open(folder)
    if owned:
        weakref.finalize(split, shutil.rmtree, folder, True)
    return split


def load_split(path: Path, vocab: great_format.GreatVocabulary, config: pointer_model.VarMisuseConfig, stage: str,
               cache: Path) -> Split:  # fmt: skip
    """One split's samples as the model reads them; `stage` is the one that writes `path`. The
    encoded split is kept in `cache` under a key of the file (path, size, mtime) and the encoding
    settings, so a resumed run (or another process of a data-parallel one) reads it without
    encoding again; one process encodes while the others wait on a lock."""
    storage.require(path, stage)
    st = path.stat()
    key = json.dumps([str(path.resolve()), st.st_size, st.st_mtime_ns, config.max_subtokens, config.max_length,
                      vocab.size, STORE_VERSION])  # fmt: skip
    name = f"{path.stem}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f"{path.stem}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cache / name / "index.npz").exists():
            for old in cache.glob(f"{path.stem}-*"):  # earlier inputs' encodings, a killed run's half
                shutil.rmtree(old, ignore_errors=True)
            with storage.atomic_dir(cache / name) as tmp:
                encode_samples(great_format.read_shards(path, validate=False), vocab, config.max_subtokens,
                               config.max_length, folder=tmp)  # fmt: skip
        return Split.open(cache / name)


@dataclass
class Batch:
    subtokens: torch.Tensor  # (B, T, S)
    token_mask: torch.Tensor  # (B, T) bool
    edges: torch.Tensor  # (E, 4) [batch, type, from, to], the models' layout
    error_location: torch.Tensor  # (B,)
    has_bug: torch.Tensor  # (B,) bool
    targets: torch.Tensor  # (B, T) bool
    candidates: torch.Tensor  # (B, T) bool


def collate(split: Split, idx, device) -> Batch:
    """Samples `idx` of `split` padded into one batch."""
    idx = list(idx)
    samples = [split.sample(i) for i in idx]
    T = max(len(s.tokens) for s in samples)
    S = max(s.tokens.shape[1] for s in samples)
    subtokens = np.zeros((len(idx), T, S), dtype=np.int64)
    targets = np.zeros((len(idx), T), dtype=bool)
    candidates = np.zeros((len(idx), T), dtype=bool)
    edges = []
    for b, s in enumerate(samples):
        subtokens[b, : s.tokens.shape[0], : s.tokens.shape[1]] = s.tokens
        targets[b, s.targets] = True
        candidates[b, s.candidates] = True
        edges.append(np.concatenate([np.full((len(s.edges), 1), b), s.edges], axis=1))
    subtokens_t = torch.from_numpy(subtokens)
    location = torch.from_numpy(split.error_location[idx])
    return Batch(
        subtokens=subtokens_t.to(device),
        token_mask=(subtokens_t.sum(-1) > 0).to(device),  # the original's mask: any known sub-token
        edges=torch.from_numpy(np.concatenate(edges).reshape(-1, 4)).to(device),
        error_location=location.to(device),
        has_bug=(location > 0).to(device),
        targets=torch.from_numpy(targets).to(device),
        candidates=torch.from_numpy(candidates).to(device),
    )


def token_budget_batches(lengths: np.ndarray, max_tokens: int, rng: np.random.Generator,
                         buffer_batches: int = BUFFER_BATCHES) -> list[list[int]]:  # fmt: skip
    """Positions into `lengths`, in the given order, grouped into batches of <= max_tokens padded tokens.

    The original's `to_batch`: fill a buffer until it holds more than `buffer_batches * max_tokens`
    tokens; then pick a random pivot sample, order the buffer by |length - pivot length| (stably) and
    take samples while (longest so far) x (count) stays within the budget; at the end drain the buffer.
    A sample longer than the whole budget still forms a batch of its own.
    """
    batches: list[list[int]] = []
    buffer: list[int] = []

    def make_batch():
        nonlocal buffer
        pivot = lengths[buffer[rng.integers(len(buffer))]]
        buffer = sorted(buffer, key=lambda i: abs(int(lengths[i]) - int(pivot)))
        longest, size = 0, 0
        for i in buffer:
            longest = max(longest, int(lengths[i]))
            if longest * (size + 1) > max_tokens:
                break
            size += 1
        size = max(size, 1)
        batches.append(buffer[:size])
        buffer = buffer[size:]

    held = 0
    for i in range(len(lengths)):
        buffer.append(i)
        held += int(lengths[i])
        if held > buffer_batches * max_tokens:
            make_batch()
            held = int(lengths[buffer].sum()) if buffer else 0
    while buffer:
        make_batch()
    return batches


def stream_batches(lengths: np.ndarray, max_tokens: int) -> list[list[int]]:
    """Positions into `lengths` in stream order, cut into batches of <= max_tokens padded tokens: the
    study's batches (`train.measure: study`).

    The study's copy of the loader (mdrafiqulrabin/CI-Memorization
    `code/model_prediction/Great/data_loader.py`, `DataLoader.to_batch.make_batch`) has upstream's
    two lines that pick a random pivot and sort the buffer by |length - pivot| commented out: a batch
    takes the buffer's samples from its front, in the order the stream delivered them, while (longest
    so far) x (count) stays within the budget. Its buffer never runs short of a batch (it is batched
    only once it holds over 50 budgets' worth of tokens, counted as its size x the newest sample's
    length, which is at most its longest), so the batches are the stream cut greedily, whatever the
    buffer's size; a sample longer than the budget still forms a batch of its own.
    """
    batches: list[list[int]] = []
    batch: list[int] = []
    longest = 0
    for i in range(len(lengths)):
        longest_with = max(longest, int(lengths[i]))
        if batch and longest_with * (len(batch) + 1) > max_tokens:
            batches.append(batch)
            batch, longest_with = [], int(lengths[i])
        batch.append(i)
        longest = longest_with
    return batches + ([batch] if batch else [])


def measure_batches(lengths: np.ndarray, max_tokens: int) -> list[list[int]]:
    """Deterministic batches for measurement: positions by length, packed greedily within the budget."""
    batches, batch, longest = [], [], 0
    for i in np.argsort(lengths, kind="stable").tolist():
        if batch and max(longest, lengths[i]) * (len(batch) + 1) > max_tokens:
            batches.append(batch)
            batch, longest = [], 0
        batch.append(i)
        longest = max(longest, int(lengths[i]))
    return batches + ([batch] if batch else [])


def step_samples(n: int, per_step: int, step: int, seed: int) -> np.ndarray:
    """Training-set positions of step `step` (0-based): a slice of an endless stream of seeded
    permutations of the training set (the original repeats its shuffled shards endlessly)."""
    start, stop = step * per_step, (step + 1) * per_step
    parts, p = [], start // n
    while p * n < stop:
        order = np.random.default_rng([seed, 2, p]).permutation(n)
        parts.append(order[max(start - p * n, 0) : min(stop - p * n, n)])
        p += 1
    return np.concatenate(parts)


def subset(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """A sorted random subset of k of n positions (all when k is 0 or >= n)."""
    return np.arange(n) if k == 0 or k >= n else np.sort(rng.choice(n, k, replace=False))
