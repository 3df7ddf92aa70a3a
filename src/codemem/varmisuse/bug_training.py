"""VarMisuse's training (codemem.task.Training) for Transformer, GREAT and GGNN: steps and measurements.

The samples and their token-budget batches (ICLR20-Great's `data/data_loader.py`) are
codemem.varmisuse.bug_batches'.

Training follows `running/run_model.py`: Adam (lr 1e-4, TF's epsilon 1e-7), global-norm clipping
0.25, loss = mean location loss + mean repair loss over buggy samples (`reduce_losses`). An "epoch"
is a *step*: `train.samples_per_step` training samples (the original: 250,000), drawn from an
endless stream of seeded permutations of the training set, then a measurement pass with dropout
off on a fixed seeded subset of the (noisy) training samples and of the held-out `eval` samples
(`train.measure_samples` each): the original's four accuracies, per-sample location and repair
losses (their Gini coefficients: location over all samples, repair over buggy ones), and per-sample
scores (the probability of the predicted location, the pointer mass on the repair targets); and, for
mislabel detection (codemem.detection), each measured training sample's location loss, margin,
probability of and correctness on its given location, and whether the corrupt stage flipped its label
(`flipped`, from build/noisy/flips.tsv).
Everything random is a function of (seed, step), so a run resumed from its checkpoint ends with the
same metrics as an uninterrupted one. The loop itself is codemem.train's, shared with MethodName.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from codemem import metrics, storage, task
from codemem.errors import InputError
from codemem.params import Params
from codemem.storage import Layout
from codemem.task import Training
from codemem.varmisuse import great_format, pointer_model
from codemem.varmisuse.bug_batches import (
    Batch,
    Split,
    collate,
    load_split,
    measure_batches,
    step_samples,
    subset,
    token_budget_batches,
)


# ---- model ---------------------------------------------------------------------------------------
def forward(model, batch: Batch):
    logits = model(batch.subtokens, batch.token_mask, batch.edges)
    args = (logits, batch.token_mask, batch.has_bug, batch.error_location, batch.targets, batch.candidates)
    return args, pointer_model.varmisuse_losses(*args)


def logged_losses(loss: torch.Tensor | np.ndarray) -> np.ndarray:
    """Per-sample losses as logged for the Gini: a loss is >= 0, but float32 rounding leaves -1.2e-7
    where the repair pointer's mass on the targets sums to just above 1 (every candidate a target, as
    noise makes of a sample with <= 3 candidates; which CPUs round so depends on their kernels)."""
    values = loss.detach().float().cpu().numpy() if isinstance(loss, torch.Tensor) else np.asarray(loss)
    return np.maximum(values, 0)


@torch.no_grad()
def measure(model, split: Split, idx: np.ndarray, config: pointer_model.VarMisuseConfig, device) -> dict[str, np.ndarray]:
    """Per-sample outcomes of samples `idx` with dropout off: losses, correctness, scores, and the
    given labels' margins and probability (`pointer_model.varmisuse_dynamics`)."""
    model.eval()
    keys = ("loc_loss", "repair_loss", "loc_correct", "repair_correct", "joint_correct", "no_bug_correct",
            "loc_prob", "repair_mass", "loc_margin", "loc_given_prob")  # fmt: skip
    out = {k: np.zeros(len(idx), dtype=np.float64) for k in keys}
    for positions in measure_batches(split.lengths[idx], config.max_batch_tokens):
        args, (loc_loss, rep_loss) = forward(model, collate(split, idx[positions], device))
        outcome = (pointer_model.varmisuse_predictions(*args) | pointer_model.varmisuse_dynamics(*args)
                   | {"loc_loss": loc_loss, "repair_loss": rep_loss})  # fmt: skip
        for k in keys:
            out[k][positions] = outcome[k].double().cpu().numpy()
    out["loc_loss"], out["repair_loss"] = logged_losses(out["loc_loss"]), logged_losses(out["repair_loss"])
    out["has_bug"] = split.has_bug[idx]
    return out


def read_flips(path) -> np.ndarray:
    """The `sample` column of the corrupt stage's flips.tsv: the flipped samples' indices in
    build/noisy/train.jsonl."""
    header, *rows = Path(path).read_text(encoding="utf-8").splitlines()
    if header.split("\t", 1)[0] != "sample":
        raise InputError(f"{path}: expected a `sample` column first, got {header!r}: rerun the corrupt stage")
    return np.array([row.split("\t", 1)[0] for row in rows if row.strip()], dtype=np.int64)


def summarize(m: dict[str, np.ndarray], repair_gini_over_all: bool = False) -> dict[str, float]:
    """Split-level metrics from per-sample outcomes: the original's accuracies (localization, repair
    and joint over buggy samples, no-bug over clean ones), mean losses, Gini of each loss (repair: over
    buggy samples, or over all as the study's patch logged it, clean ones at 0), scores."""
    buggy = m["has_bug"].astype(bool)
    acc = pointer_model.batch_accuracies({k: torch.from_numpy(m[k].astype(bool)) for k in
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


# ---- codemem.task.Training ------------------------------------------------------------------------
class VarMisuseTraining(Training):
    """Steps of `train.samples_per_step` samples in token-budget batches; after each, a measurement
    pass over fixed seeded subsets of the (noisy) training and the held-out eval samples."""

    unit = "step"

    def __init__(self, params: Params, layout: Layout, device):
        self.config = config = params.model_config()
        self.device, self.seed = device, params.seed
        self.vocab = great_format.GreatVocabulary()
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
        self.model = task.model(params.model).model_class(config).to(device)
        # tf.optimizers.Adam defaults, as the original: beta 0.9 / 0.999, epsilon 1e-7.
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate, eps=1e-7)
        self.clip_norm = config.clip_norm
        self.input_files = [train_file, test_file]
        self.samples_per_epoch, self.steps = params.train.samples_per_step, params.epochs
        self.study, self.heldout = params.train.measure == "study", params.train.heldout
        self._in_step: dict[str, list[np.ndarray]] = {"loc": [], "repair": []}
        # Which measured training samples the corrupt stage flipped: flips.tsv's `sample` is the index
        # in train.jsonl, `Split.line` each kept sample's (samples over max_length are not in the Split).
        self.flipped_lines = read_flips(storage.require(layout.noisy / "flips.tsv", "corrupt"))

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
        return pointer_model.reduce_losses(loc_loss, rep_loss, batch.has_bug), len(positions)

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
        return row, {k: v.astype(np.float32) for k, v in logged.items()} | self.dynamics(tr)

    @staticmethod
    def dynamics(tr: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Training dynamics for mislabel detection (codemem.detection) of the measured training
        samples, given label = the noisy one, from this step's measurement pass (dropout off), all of
        the location pointer (`pointer_model.varmisuse_dynamics`): its loss (`train_loc_loss` again),
        the given location's margin and probability, and whether the predicted location is the given
        one (for a sample labelled clean: slot 0, "no bug"). The repair pointer's margin is NaN for a
        sample labelled clean, and a NaN in the logs would make equal runs' logs compare unequal
        (np.array_equal): it is not logged."""
        return {
            "dyn_loss": tr["loc_loss"].astype(np.float32), "dyn_margin": tr["loc_margin"].astype(np.float32),
            "dyn_prob": tr["loc_given_prob"].astype(np.float32), "dyn_correct": tr["loc_correct"].astype(np.int8),
        }  # fmt: skip

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
                  "test_has_bug": test.has_bug[em],
                  "flipped": np.isin(train.line[tm], self.flipped_lines).astype(np.int8)}  # fmt: skip
        counts = {
            "train_samples": len(train), "test_samples": len(test), "train_measured": len(tm),
            "test_measured": len(em), "train_skipped_too_long": train.skipped_too_long,
            "test_skipped_too_long": test.skipped_too_long, "samples_per_step": self.samples_per_epoch,
            "steps": self.steps, "vocab": self.vocab.size, "heldout": self.heldout,
            "measure": "study" if self.study else "clean",
        }  # fmt: skip
        return {"config": asdict(self.config)}, arrays, counts
