"""VarMisuse's training (codemem.task.Training) for Transformer, GREAT and GGNN: steps and measurements.

The samples and their token-budget batches (ICLR20-Great's `data/data_loader.py`) are
codemem.varmisuse.bug_batches'.

Training follows `running/run_model.py`: Adam (lr 1e-4, TF's epsilon 1e-7), global-norm clipping
0.25, loss = mean location loss + mean repair loss over buggy samples (`reduce_losses`). An "epoch"
is a *step*: `train.samples_per_step` training samples (the original: 250,000), drawn from an
endless stream of seeded permutations of the training set, then a measurement pass with dropout
off on a fixed seeded subset of the (noisy) training samples and of the held-out samples
(`train.measure_samples` each): the original's four accuracies, per-sample location and repair
losses (their Gini coefficients: location over all samples, repair over buggy ones), and per-sample
scores (the probability of the predicted location, the pointer mass on the repair targets); and, for
mislabel detection (codemem.detection), each measured training sample's location loss, margin,
probability of and correctness on its given location, and whether the corrupt stage flipped its label
(`flipped`, from build/noisy/flips.tsv). Clean and retrain (`train.drop_flagged`, codemem.train `flag`)
can flag only those measured samples; `drop_train` leaves the flagged ones out of the stream.

`train.measure: study` measures the training side as the authors' patch logged it, from inside the
step's own forward passes (dropout on, the weights moving): the train accuracies over every sample
of the step and the two Gini coefficients over its per-sample losses (repair: buggy samples only);
its batches take the samples in stream order (`stream_batches`). `clean` takes the train accuracies
and Ginis from the measurement pass and batches as upstream (`token_budget_batches`).
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
    stream_batches,
    subset,
    token_budget_batches,
)

# What a step logs per sample, in the batches' order (`VarMisuseTraining._in_step`), and its dtype:
# the two losses, and the outcomes of the step's own forward pass (dropout on).
IN_STEP = {"loc": np.float32, "repair": np.float32, "has_bug": np.int8, "loc_correct": np.int8,
           "repair_correct": np.int8, "joint_correct": np.int8, "no_bug_correct": np.int8}  # fmt: skip
OUTCOMES = ("loc_correct", "repair_correct", "joint_correct", "no_bug_correct")


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
    keys = ("loc_loss", "repair_loss", *OUTCOMES, "loc_prob", "repair_mass", "loc_margin", "loc_given_prob",
            "repair_margin")  # fmt: skip
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


def accuracies(m: dict[str, np.ndarray]) -> dict[str, float]:
    """The original's four accuracies from per-sample outcomes: localization, repair and joint over
    buggy samples, no-bug over clean ones (NaN where there is no sample of the kind)."""
    acc = pointer_model.batch_accuracies({k: torch.from_numpy(m[k].astype(bool)) for k in OUTCOMES},
                                         torch.from_numpy(m["has_bug"].astype(bool)))  # fmt: skip
    return {"loc_acc": acc["localization"], "repair_acc": acc["repair"], "joint_acc": acc["joint"],
            "no_bug_acc": acc["no_bug"]}  # fmt: skip


def summarize(m: dict[str, np.ndarray]) -> dict[str, float]:
    """Split-level metrics from per-sample outcomes: the original's accuracies (`accuracies`), mean
    losses, Gini of each loss (location over all samples; repair over buggy samples, as the study's
    repair CSVs hold only those, e.g. `GGNN_Py150_Repair_held.csv` 12,619 rows of 25,000), scores."""
    buggy = m["has_bug"].astype(bool)
    acc = accuracies(m)
    return {
        **acc,
        "loc_loss": float(m["loc_loss"].mean()) if len(buggy) else float("nan"),
        "repair_loss": float(m["repair_loss"][buggy].mean()) if buggy.any() else float("nan"),
        "gini_loc": metrics.gini(m["loc_loss"]),
        "gini_repair": metrics.gini(m["repair_loss"][buggy]),
        "score": float(m["loc_prob"].mean()) if len(buggy) else float("nan"),
        "repair_mass": float(m["repair_mass"][buggy].mean()) if buggy.any() else float("nan"),
    }  # fmt: skip


def study_train(in_step: dict[str, np.ndarray]) -> dict[str, float]:
    """The training side of a step as the study's patch logged it, from the step's own per-sample
    records (`IN_STEP`: dropout on, the weights moving within the step): the four accuracies over
    every sample of the step, the location-loss Gini over all of them and the repair-loss Gini over
    the buggy ones.

    Accuracies: CI-Memorization `code/model_prediction/Great/run_model.py`, `train`, feeds each
    training batch's accuracies (`meta_model.py`, `get_loss`) to running means weighted by the batch's
    buggy (localization, repair, joint) and clean (no-bug) counts and prints them once a step
    ("Training result"); the study's train CSVs are per-step values taken back out of those running
    means (which the patch never resets), so a step's figure is its own samples' accuracy. Repair
    Gini: `get_loss` logs -log(1e-9) for clean samples (`target_loss_samples`), but the published
    repair CSVs hold only about the buggy half (`GGNN_Py150_Repair_held.csv`: 12,619 of 25,000 rows)."""
    buggy = in_step["has_bug"].astype(bool)
    return accuracies(in_step) | {"gini_loc": metrics.gini(in_step["loc"]),
                                  "gini_repair": metrics.gini(in_step["repair"][buggy])}  # fmt: skip


# ---- codemem.task.Training ------------------------------------------------------------------------
class VarMisuseTraining(Training):
    """Steps of `train.samples_per_step` samples in token-budget batches; after each, a measurement
    pass over fixed seeded subsets of the (noisy) training and the held-out eval samples."""

    unit = "step"
    # The training samples (rows of `train`) the stream draws from; None: all of them. Clean and
    # retrain (`drop_train`) leaves the flagged ones out.
    train_kept: np.ndarray | None = None
    dropped = 0  # training samples dropped as flagged (drop_train)

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
        self._in_step: dict[str, list[np.ndarray]] = {key: [] for key in IN_STEP}
        # Which measured training samples the corrupt stage flipped: flips.tsv's `sample` is the index
        # in train.jsonl, `Split.line` each kept sample's (samples over max_length are not in the Split).
        self.flipped_lines = read_flips(storage.require(layout.noisy / "flips.tsv", "corrupt"))

    def describe(self) -> str:
        flagged = f", {self.dropped} dropped as flagged" if self.dropped else ""
        return (f"{len(self.train)} training / {len(self.test)} eval samples ({self.train.skipped_too_long} / "
                f"{self.test.skipped_too_long} over {self.config.max_length} tokens skipped{flagged}), steps of "
                f"{self.samples_per_epoch} samples")  # fmt: skip

    def batches(self, epoch: int) -> list[np.ndarray]:
        """The step's samples (`step_samples`) in token-budget batches: `study` in stream order, as the
        study's loader cut them (`stream_batches`); `clean` as upstream's, similar lengths together
        around random pivots (`token_budget_batches`)."""
        self._in_step = {key: [] for key in IN_STEP}
        if self.train_kept is None:
            chosen = step_samples(len(self.train), self.samples_per_epoch, epoch, self.seed)
        else:  # the same endless stream of seeded permutations, of the kept samples only
            chosen = self.train_kept[step_samples(len(self.train_kept), self.samples_per_epoch, epoch, self.seed)]
        lengths, budget = self.train.lengths[chosen], self.config.max_batch_tokens
        if self.study:
            positions = stream_batches(lengths, budget)
        else:
            positions = token_budget_batches(lengths, budget, np.random.default_rng([self.seed, 4, epoch]))
        batches = [chosen[p] for p in positions]
        self._batch_sizes = [len(b) for b in batches]
        return batches

    def drop_train(self, positions: np.ndarray) -> None:
        """Clean and retrain (train.drop_flagged): train without the measured training samples at
        `positions`, positions into the per-sample logs, i.e. into `train_measured`: only the measured
        samples have dynamics, so only they can be flagged; the rest of the training set stays. The
        step's stream becomes the seeded permutations of the kept samples (each step still of
        `samples_per_step` samples) and the dropped ones leave the measured subset too, as MethodName
        measures its training set without them."""
        rows = self.train_measured[positions]
        self.train_kept = np.setdiff1d(np.arange(len(self.train)), rows)
        self.train_measured = np.setdiff1d(self.train_measured, rows)  # sorted, as `subset` draws it
        self.dropped = len(rows)

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

        for key, dtype in IN_STEP.items():
            ranks = [iter(pieces) for pieces in all_gather_objects(self._in_step[key], group)]
            empty = np.zeros(0, dtype)
            self._in_step[key] = [interleave([next(ranks[r]) if size > r else empty for r in range(group.world)])
                                  for size in self._batch_sizes]  # fmt: skip

    def _step_losses(self, positions: np.ndarray):
        batch = collate(self.train, positions, self.device)
        args, (loc_loss, rep_loss) = forward(self.model, batch)
        # What the study's patch logs inside the step, dropout on: the per-sample losses
        # (CI-Memorization `code/model_prediction/Great/run_model.py`, `train` -> `write_losses`:
        # LOC_LOSS_SAMP, TGT_LOSS_SAMP) and the outcomes behind its running train accuracies
        # (`update_metrics` of `meta_model.py` `get_loss`'s batch accuracies, weighted by the batch's
        # buggy / clean counts: per-sample outcomes averaged over the step's samples).
        outcomes = pointer_model.varmisuse_predictions(*args)
        record = {k: outcomes[k].cpu().numpy() for k in OUTCOMES}
        record |= {"loc": logged_losses(loc_loss), "repair": logged_losses(rep_loss),
                   "has_bug": batch.has_bug.cpu().numpy()}  # fmt: skip
        for key, dtype in IN_STEP.items():
            self._in_step[key].append(record[key].astype(dtype))
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

    def in_step(self) -> dict[str, np.ndarray]:
        """The step's per-sample records (`IN_STEP`), in the batches' order."""
        return {k: np.concatenate(v or [np.zeros(0)]).astype(IN_STEP[k]) for k, v in self._in_step.items()}

    def measure(self, epoch: int) -> tuple[dict, dict[str, np.ndarray]]:
        """The step's row and per-sample logs. `study`: the train accuracies and both Ginis from the
        step itself (`study_train`); `clean`: from the measurement pass (dropout off, one model)."""
        tr, te = self._measure(self.train, self.train_measured), self._measure(self.test, self.test_measured)
        s_tr, s_te = summarize(tr), summarize(te)
        in_step = self.in_step()
        if self.study:
            s_tr |= study_train(in_step)
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
        outcomes = {f"in_step_{k}": in_step[k] for k in ("has_bug", *OUTCOMES)}
        return row, {k: v.astype(np.float32) for k, v in logged.items()} | outcomes | self.dynamics(tr)

    @staticmethod
    def dynamics(tr: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Training dynamics for mislabel detection (codemem.detection) of the measured training
        samples, given label = the noisy one, from this step's measurement pass (dropout off), of the
        location pointer (`pointer_model.varmisuse_dynamics`): its loss (`train_loc_loss` again),
        the given location's margin and probability, and whether the predicted location is the given
        one (for a sample labelled clean: slot 0, "no bug"); and the repair pointer's margin
        (`dyn_repair_margin`), of which a sample labelled clean has none: logged as 0 there (a NaN
        would make equal runs' logs compare unequal under np.array_equal), to be read with
        `train_has_bug`."""
        # A buggy sample whose repair candidates are all targets or none has an infinite margin, and one
        # without any candidate among its valid tokens (-inf - -inf) a NaN: 0 too.
        repair_margin = np.nan_to_num(np.where(tr["has_bug"].astype(bool), tr["repair_margin"], 0.0), nan=0.0,
                                      posinf=np.inf, neginf=-np.inf)  # fmt: skip
        return {
            "dyn_loss": tr["loc_loss"].astype(np.float32), "dyn_margin": tr["loc_margin"].astype(np.float32),
            "dyn_prob": tr["loc_given_prob"].astype(np.float32), "dyn_correct": tr["loc_correct"].astype(np.int8),
            "dyn_repair_margin": repair_margin.astype(np.float32),
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
        trained = len(train) if self.train_kept is None else len(self.train_kept)
        counts = {
            "train_samples": trained, "train_dropped_flagged": self.dropped, "test_samples": len(test),
            "train_measured": len(tm),
            "test_measured": len(em), "train_skipped_too_long": train.skipped_too_long,
            "test_skipped_too_long": test.skipped_too_long, "samples_per_step": self.samples_per_epoch,
            "steps": self.steps, "vocab": self.vocab.size, "heldout": self.heldout,
            "measure": "study" if self.study else "clean",
        }  # fmt: skip
        return {"config": asdict(self.config)}, arrays, counts
