"""VarMisuse's training (codemem.task.Training) for Transformer, GREAT and GGNN: data pipeline and steps.

The data pipeline follows ICLR20-Great's `data/data_loader.py`:
- each token becomes its (at most 10) sub-token ids under the original vocabulary
  (`great.GreatVocabulary`); a token whose pieces are all unknown is padding to the model, as the
  original's `token_mask = clip(sum(tokens), 0, 1)` makes it;
- edges through the original mapping (`great.loader_edges`: relation i forward as type 2i, reversed
  as 2i+1); only integer `repair_candidates` are kept; samples longer than `max_length` (512) are
  skipped and counted;
- training batches hold similarly long samples within a token budget (`max_batch_tokens`, 12,500
  padded tokens): the original's `make_batch` picks a random pivot length in a buffer of about 50
  batches and fills a batch with the samples closest to it.

Training follows `running/run_model.py`: Adam (lr 1e-4, TF's epsilon 1e-7), global-norm clipping
0.25, loss = mean location loss + mean repair loss over buggy samples (`reduce_losses`). An "epoch"
is a *step*: `train.samples_per_step` training samples (the original: 250,000), drawn from an
endless stream of seeded permutations of the training set, then a measurement pass with dropout
off on a fixed seeded subset of the (noisy) training samples and of the held-out `eval` samples
(`train.measure_samples` each): the original's four accuracies, per-sample location and repair
losses (their Gini coefficients: location over all samples, repair over buggy ones), and per-sample
scores (the probability of the predicted location, the pointer mass on the repair targets).
Everything random is a function of (seed, step), so a run resumed from its checkpoint ends with the
same metrics as an uninterrupted one. The loop itself is codemem.train's, shared with MethodName.
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from codemem import io, metrics, models
from codemem.errors import InputError
from codemem.extract import great
from codemem.io import Layout
from codemem.models import varmisuse as vm
from codemem.params import Params
from codemem.task import Training

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


def encode_samples(samples, vocab: great.GreatVocabulary, max_subtokens: int, max_length: int,
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
            parts = {"tokens": table, "edges": np.array(great.loader_edges(sample["edges"]), dtype=np.int16),
                     "targets": np.array(sample["repair_targets"], dtype=np.int16),
                     "candidates": np.array(great.candidate_positions(sample), dtype=np.int16)}  # fmt: skip
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


def load_split(path: Path, vocab: great.GreatVocabulary, config: vm.VarMisuseConfig, stage: str,
               cache: Path) -> Split:  # fmt: skip
    """One split's samples as the model reads them; `stage` is the one that writes `path`. The
    encoded split is kept in `cache` under a key of the file (path, size, mtime) and the encoding
    settings, so a resumed run (or another process of a data-parallel one) reads it without
    encoding again; one process encodes while the others wait on a lock."""
    io.require(path, stage)
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
            with io.atomic_dir(cache / name) as tmp:
                encode_samples(great.read_shards(path, validate=False), vocab, config.max_subtokens,
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


# ---- model ---------------------------------------------------------------------------------------
def forward(model, batch: Batch):
    logits = model(batch.subtokens, batch.token_mask, batch.edges)
    args = (logits, batch.token_mask, batch.has_bug, batch.error_location, batch.targets, batch.candidates)
    return args, vm.varmisuse_losses(*args)


def logged_losses(loss: torch.Tensor | np.ndarray) -> np.ndarray:
    """Per-sample losses as logged for the Gini: a loss is >= 0, but float32 rounding leaves -1.2e-7
    where the repair pointer's mass on the targets sums to just above 1 (every candidate a target, as
    noise makes of a sample with <= 3 candidates; which CPUs round so depends on their kernels)."""
    values = loss.detach().float().cpu().numpy() if isinstance(loss, torch.Tensor) else np.asarray(loss)
    return np.maximum(values, 0)


@torch.no_grad()
def measure(model, split: Split, idx: np.ndarray, config: vm.VarMisuseConfig, device) -> dict[str, np.ndarray]:
    """Per-sample outcomes of samples `idx` with dropout off: losses, correctness, scores."""
    model.eval()
    keys = ("loc_loss", "repair_loss", "loc_correct", "repair_correct", "joint_correct", "no_bug_correct",
            "loc_prob", "repair_mass")  # fmt: skip
    out = {k: np.zeros(len(idx), dtype=np.float64) for k in keys}
    for positions in measure_batches(split.lengths[idx], config.max_batch_tokens):
        args, (loc_loss, rep_loss) = forward(model, collate(split, idx[positions], device))
        outcome = vm.varmisuse_predictions(*args) | {"loc_loss": loc_loss, "repair_loss": rep_loss}
        for k in keys:
            out[k][positions] = outcome[k].double().cpu().numpy()
    out["loc_loss"], out["repair_loss"] = logged_losses(out["loc_loss"]), logged_losses(out["repair_loss"])
    out["has_bug"] = split.has_bug[idx]
    return out


def summarize(m: dict[str, np.ndarray], repair_gini_over_all: bool = False) -> dict[str, float]:
    """Split-level metrics from per-sample outcomes: the original's accuracies (localization, repair
    and joint over buggy samples, no-bug over clean ones), mean losses, Gini of each loss (repair: over
    buggy samples, or over all as the study's patch logged it, clean ones at 0), scores."""
    buggy = m["has_bug"].astype(bool)
    acc = vm.batch_accuracies({k: torch.from_numpy(m[k].astype(bool)) for k in
                               ("loc_correct", "repair_correct", "joint_correct", "no_bug_correct")},
                              torch.from_numpy(buggy))  # fmt: skip
    return {
        "loc_acc": acc["localization"], "repair_acc": acc["repair"], "joint_acc": acc["joint"],
        "no_bug_acc": acc["no_bug"],
        "loc_loss": float(m["loc_loss"].mean()) if len(buggy) else float("nan"),
        "repair_loss": float(m["repair_loss"][buggy].mean()) if buggy.any() else float("nan"),
        "gini_loc": metrics.gini(m["loc_loss"]),
        "gini_repair": metrics.gini(m["repair_loss"] if repair_gini_over_all else m["repair_loss"][buggy]),
        "score": float(m["loc_prob"].mean()) if len(buggy) else float("nan"),
        "repair_mass": float(m["repair_mass"][buggy].mean()) if buggy.any() else float("nan"),
    }  # fmt: skip


def subset(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """A sorted random subset of k of n positions (all when k is 0 or >= n)."""
    return np.arange(n) if k == 0 or k >= n else np.sort(rng.choice(n, k, replace=False))


# ---- codemem.task.Training ------------------------------------------------------------------------
class VarMisuseTraining(Training):
    """Steps of `train.samples_per_step` samples in token-budget batches; after each, a measurement
    pass over fixed seeded subsets of the (noisy) training and the held-out eval samples."""

    unit = "step"

    def __init__(self, params: Params, layout: Layout, device):
        self.config = config = params.model_config()
        self.device, self.seed = device, params.seed
        self.vocab = great.GreatVocabulary()
        # The study measured the held-out `dev` split (at most 25,000 samples a step), not `eval`.
        train_file, test_file = layout.noisy / "train.jsonl", layout.samples / f"{params.train.heldout}.jsonl"
        self.train = load_split(train_file, self.vocab, config, "corrupt", layout.encoded)
        self.test = load_split(test_file, self.vocab, config, "extract", layout.encoded)
        if not len(self.train) or not len(self.test):
            raise InputError(f"no training or held-out samples within max_length {config.max_length} in "
                             f"{train_file} / {test_file}: raise {params.model}.max_length or use more files")  # fmt: skip
        rng = np.random.default_rng([params.seed, 3])  # stream 3: the measured subsets
        self.train_measured = subset(len(self.train), params.train.measure_samples, rng)
        self.test_measured = subset(len(self.test), params.train.measure_samples, rng)
        self.model = models.get(params.model).model_class(config).to(device)
        # tf.optimizers.Adam defaults, as the original: beta 0.9 / 0.999, epsilon 1e-7.
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate, eps=1e-7)
        self.clip_norm = config.clip_norm
        self.input_files = [train_file, test_file]
        self.samples_per_epoch, self.steps = params.train.samples_per_step, params.epochs
        self.study, self.heldout = params.train.measure == "study", params.train.heldout
        self._in_step: dict[str, list[np.ndarray]] = {"loc": [], "repair": []}

    def describe(self) -> str:
        return (f"{len(self.train)} training / {len(self.test)} eval samples ({self.train.skipped_too_long} / "
                f"{self.test.skipped_too_long} over {self.config.max_length} tokens skipped), steps of "
                f"{self.samples_per_epoch} samples")  # fmt: skip

    def batches(self, epoch: int) -> list[np.ndarray]:
        self._in_step = {"loc": [], "repair": []}
        chosen = step_samples(len(self.train), self.samples_per_epoch, epoch, self.seed)
        rng = np.random.default_rng([self.seed, 4, epoch])
        batches = [chosen[p] for p in token_budget_batches(self.train.lengths[chosen], self.config.max_batch_tokens, rng)]
        self._batch_sizes = [len(b) for b in batches]
        return batches

    def step_state(self) -> dict:
        return {key: list(pieces) for key, pieces in self._in_step.items()}

    def load_step_state(self, state: dict) -> None:
        self._in_step = {key: list(pieces) for key, pieces in state.items()}

    def gather_in_step(self, group) -> None:
        """Each rank logged its shares `batch[rank::world]` (none where a batch had fewer samples than
        its rank): put them back in the batches' order, as one process logs them."""
        if not group.active:
            return
        from codemem.distributed import all_gather_objects, interleave

        for key in ("loc", "repair"):
            ranks = [iter(pieces) for pieces in all_gather_objects(self._in_step[key], group)]
            empty = np.zeros(0, np.float32)
            self._in_step[key] = [interleave([next(ranks[r]) if size > r else empty for r in range(group.world)])
                                  for size in self._batch_sizes]  # fmt: skip

    def _step_losses(self, positions: np.ndarray):
        batch = collate(self.train, positions, self.device)
        _, (loc_loss, rep_loss) = forward(self.model, batch)
        # What the study's patch logs inside the step (LOC_LOSS_SAMP, TGT_LOSS_SAMP), dropout on.
        self._in_step["loc"].append(logged_losses(loc_loss))
        self._in_step["repair"].append(logged_losses(rep_loss))
        return batch, loc_loss, rep_loss

    def loss(self, positions: np.ndarray) -> tuple[torch.Tensor, int]:
        batch, loc_loss, rep_loss = self._step_losses(positions)
        return vm.reduce_losses(loc_loss, rep_loss, batch.has_bug), len(positions)

    def shard_loss(self, part: np.ndarray, positions: np.ndarray) -> torch.Tensor:
        """reduce_losses' two means over the whole batch `positions` (the repair one over its buggy
        samples), of which this rank sums its share `part`: the ranks' terms add up to loss(positions)."""
        _, loc_loss, rep_loss = self._step_losses(part)
        buggy = torch.tensor(float(self.train.has_bug[positions].sum()), device=rep_loss.device)
        return loc_loss.sum() / len(positions) + rep_loss.sum() / (buggy + 1e-9)

    def measure(self, epoch: int) -> tuple[dict, dict[str, np.ndarray]]:
        tr, te = self._measure(self.train, self.train_measured), self._measure(self.test, self.test_measured)
        s_tr, s_te = summarize(tr, repair_gini_over_all=self.study), summarize(te, repair_gini_over_all=self.study)
        in_step = {k: np.concatenate(v) if v else np.zeros(0, np.float32) for k, v in self._in_step.items()}
        if self.study:  # Gini over the step's own training losses, as logged inside the step
            s_tr["gini_loc"], s_tr["gini_repair"] = metrics.gini(in_step["loc"]), metrics.gini(in_step["repair"])
        row = {
            "samples_seen": (epoch + 1) * self.samples_per_epoch,
            "train_loc_loss": s_tr["loc_loss"], "train_repair_loss": s_tr["repair_loss"],
            **{f"train_{k}": s_tr[k] for k in ("loc_acc", "repair_acc", "joint_acc", "no_bug_acc")},
            **{f"test_{k}": s_te[k] for k in ("loc_acc", "repair_acc", "joint_acc", "no_bug_acc")},
            "test_loc_loss": s_te["loc_loss"], "test_repair_loss": s_te["repair_loss"],
            "gini_loc": s_tr["gini_loc"], "gini_repair": s_tr["gini_repair"],
            "test_score": s_te["score"], "train_score": s_tr["score"], "test_repair_mass": s_te["repair_mass"],
        }  # fmt: skip
        logged = {"train_loc_loss": tr["loc_loss"], "train_repair_loss": tr["repair_loss"],
                  "train_score": tr["loc_prob"], "test_score": te["loc_prob"], "test_repair_mass": te["repair_mass"],
                  "test_loc_correct": te["loc_correct"], "test_repair_correct": te["repair_correct"],
                  "in_step_loc_loss": in_step["loc"], "in_step_repair_loss": in_step["repair"]}  # fmt: skip
        return row, {k: v.astype(np.float32) for k, v in logged.items()}

    def _measure(self, split: Split, idx: np.ndarray) -> dict[str, np.ndarray]:
        """`measure`; under data-parallel training (`group`, set by codemem.train) each rank measures
        its share idx[rank::world] and every rank gets the whole set back, in order."""
        group = getattr(self, "group", None)
        if group is None or not group.active:
            return measure(self.model, split, idx, self.config, self.device)
        from codemem.distributed import all_gather_objects, interleave

        parts = all_gather_objects(measure(self.model, split, idx[group.rank :: group.world], self.config, self.device),
                                   group)  # fmt: skip
        return {k: interleave([part[k] for part in parts]) for k in parts[0]}

    def summary(self, row: dict) -> str:
        return (f"train loss {row['train_loss']:.3f}  loc/repair acc train {row['train_loc_acc']:.3f}/"
                f"{row['train_repair_acc']:.3f} test {row['test_loc_acc']:.3f}/{row['test_repair_acc']:.3f}  "
                f"no-bug test {row['test_no_bug_acc']:.3f}  gini loc {row['gini_loc']:.3f} repair "
                f"{row['gini_repair']:.3f}")  # fmt: skip

    def outputs(self) -> tuple[dict, dict[str, np.ndarray], dict]:
        train, test, tm, em = self.train, self.test, self.train_measured, self.test_measured
        arrays = {"train_line": train.line[tm], "test_line": test.line[em], "train_has_bug": train.has_bug[tm],
                  "test_has_bug": test.has_bug[em]}  # fmt: skip
        counts = {
            "train_samples": len(train), "test_samples": len(test), "train_measured": len(tm),
            "test_measured": len(em), "train_skipped_too_long": train.skipped_too_long,
            "test_skipped_too_long": test.skipped_too_long, "samples_per_step": self.samples_per_epoch,
            "steps": self.steps, "vocab": self.vocab.size, "heldout": self.heldout,
            "measure": "study" if self.study else "clean",
        }  # fmt: skip
        return {"config": asdict(self.config)}, arrays, counts
