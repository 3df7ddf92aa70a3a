"""MethodName's training (codemem.task.Training) for code2vec and code2seq.

The training turns the extracted samples (codemem.storage) and the noisy training labels into the model's
tensors, builds vocabularies from the noisy training set only (as the originals do), trains on
batches of training-set positions, and after each epoch measures every training sample (loss, score,
prediction against the label it trained on) and every test sample and its renaming variants with
dropout off: F1, the Gini of the training losses, the mean scores and the critical sample ratio, the
same way for both models.

- `Code2VecTraining`: `.c2v` contexts; the name is one class; code2vec's F1.
- `Code2SeqTraining`: `.c2s` contexts; the name is a sequence of sub-tokens decoded greedily; code2seq's
  F1; 200 of up to 1,000 stored contexts sampled afresh for every training step.
"""

from __future__ import annotations

from abc import abstractmethod
from collections import Counter
from dataclasses import asdict

import numpy as np
import torch

from codemem import distributed, metrics, storage
from codemem.params import Params
from codemem.storage import Layout
from codemem.task import Training


def _id_map(table_size: int, *used: np.ndarray, first_id: int = 1, cap: int | None = None,
            rows: np.ndarray | None = None) -> np.ndarray:
    """Extraction-table index -> training vocabulary id (first_id.., in table order) of the entries
    in the `used` arrays (only their `rows`, a bool mask, when given), at most `cap` of them: the most
    frequent there (ties: the earlier table entry); the extra last slot maps padding (-1) to 0; other
    entries map to 0 too (PAD/OOV). int32, and no copy of the (possibly multi-GB) `used` arrays."""
    counts = np.zeros(table_size + 1, dtype=np.int64)
    for part in used:
        for start in range(0, len(part), 8192):  # chunks: temporaries stay small
            chunk = part[start : start + 8192]
            entries, n = np.unique(chunk if rows is None else chunk[rows[start : start + 8192]], return_counts=True)
            counts[entries] += n
    counts[table_size] = 0  # padding (-1) landed on the extra last slot
    present = counts > 0
    if cap is not None and present.sum() > cap:
        present[:] = False
        present[np.argsort(-counts, kind="stable")[:cap]] = True
    ids = np.zeros(table_size + 1, dtype=np.int32)
    ids[present] = np.arange(first_id, first_id + int(present.sum()), dtype=np.int32)
    return ids


class MethodNameTraining(Training):
    """What code2vec and code2seq share: labels, splits, renaming variants, batching, the epoch's
    measurements. A subclass builds `model`, `optimizer`, `scheduler`, `inputs` (the encoded splits),
    `train_kept`, `train_names` and `vocab`, and implements `train_losses`, `measure_split` and `f1`."""

    fmt: str  # the context format the model reads (storage.ContextSet): c2v or c2s
    train_names: list[str]  # the noisy labels of the training samples kept (those with a context)
    train_kept: np.ndarray  # their positions in the training split
    vocab: dict[str, int]
    group: distributed.Group = distributed.SINGLE  # data-parallel training sets it (codemem.train)

    def __init__(self, samples: storage.SampleSet, noisy_train_labels: list[str], max_contexts: int, device,
                 batch_size: int = 128, eval_batch_size: int = 256, csr: bool = True, measure: str = "study",
                 own_samples: bool = False, implementation: str = "fast", seed: int = 0):  # fmt: skip
        self.device = device
        self.seed = seed  # params.seed: what the data draws outside torch's generator start from
        self.implementation = implementation  # TrainParams.implementation: fast | reference model code
        self.own_samples = own_samples  # the runner may overwrite `samples`' arrays (from_params: nobody else has them)
        self.max_contexts = max_contexts
        self.batch_size, self.eval_batch_size, self.csr = batch_size, eval_batch_size, csr
        self.study = measure == "study"  # see TrainParams.measure
        self.test_dropped = 0
        self.dropped = 0  # training samples dropped as flagged (drop_train)
        self._in_step_loss = np.zeros(0, dtype=np.float32)
        self._in_step_pred = np.zeros(0, dtype=np.int32)  # the training step's own prediction (ids), see `loss`
        cs = samples.formats[self.fmt]
        self.contexts = {"train": cs.contexts["train"], "test": cs.contexts["test"][:, :max_contexts]}
        self.true_test_names = [str(samples.labels[i]) for i in samples.split_labels["test"]]
        self.true_train_names = [str(samples.labels[i]) for i in samples.split_labels["train"]]
        self.noisy_train_names = list(noisy_train_labels)
        self.code_line = samples.code_line  # split -> (n,) int8: has a code line (code2vec's extractor)
        # CSR counts every test sample with a renamable variable. `study`: the study's variants
        # (codemem.methodname.renaming: each renamed method extracted again, a fresh sample of its
        # contexts), every one measured. `clean`: ours (storage.Variants: the variable renamed in
        # the sample's own contexts); a renaming that changes none of the contexts the model sees
        # cannot change its prediction and is not measured.
        v = self._variants = cs.variants["test"]
        self._renamed = cs.renamings.get("test") if self.study else None
        if self.study and self._renamed is None and len(v.owner):
            from codemem.progress import log

            log("CSR: the samples have no re-extracted renamings (extracted before them): ours are measured")
        if self._renamed is not None:
            self.variant_owner = self._renamed.owner
            self.variant_measured = np.ones(len(self._renamed.owner), dtype=bool)
        else:
            in_view = v.occ_ctx < self.contexts["test"].shape[1]
            self.variant_owner = v.owner
            self.variant_measured = np.bincount(v.occ_var[in_view], minlength=len(v.owner)) > 0
        self.tables = cs

    @classmethod
    def from_params(cls, params: Params, layout: Layout, device) -> MethodNameTraining:
        training = cls(storage.load_samples(layout.samples, formats=(cls.fmt,)), storage.load_noisy_labels(layout.noisy),
                     params.extract.max_contexts, device, params.model_config(), batch_size=params.train.batch_size,
                     eval_batch_size=params.train.eval_batch_size, csr=params.train.csr,
                     measure=params.train.measure, own_samples=True,
                     implementation=params.train.implementation, seed=params.seed)  # fmt: skip
        training.input_files = [layout.samples / "contexts.npz", layout.noisy / "labels.tsv"]
        return training

    def keep_test(self, kept: np.ndarray) -> None:
        """Evaluate only test samples `kept` (and their renaming variants)."""
        self.test_dropped = len(self.true_test_names) - len(kept)
        if not self.test_dropped:
            return
        new_position = np.full(len(self.true_test_names), -1)
        new_position[kept] = np.arange(len(kept))
        variant_kept = new_position[self.variant_owner] >= 0
        self.true_test_names = [self.true_test_names[i] for i in kept]
        self.inputs["test"] = self.inputs["test"][kept]
        self.inputs["variants"] = self.inputs["variants"][variant_kept[self.variant_measured]]
        self.variant_owner = new_position[self.variant_owner[variant_kept]]
        self.variant_measured = self.variant_measured[variant_kept]

    def variant_contexts(self) -> np.ndarray:
        """The measured renaming variants of the test samples as extraction-table context rows."""
        if self._renamed is not None:  # the study's: whole samples already
            return self._renamed.contexts[:, : self.contexts["test"].shape[1]]
        v, measured = self._variants, self.variant_measured
        rows = self.contexts["test"][v.owner[measured]].copy()
        row_of = np.cumsum(measured) - 1
        keep = (v.occ_ctx < rows.shape[1]) & measured[v.occ_var]
        rows[row_of[v.occ_var[keep]], v.occ_ctx[keep], v.occ_side[keep] * 2] = v.token[v.occ_var[keep]]
        return rows

    # ---- what a model implements -----------------------------------------------------------------
    @abstractmethod
    def train_losses(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """On training positions `idx`, dropout on: (the loss to minimise, the per-sample losses (B,)
        as the study's logging patch recorded them, the step's own prediction of each sample as
        target ids: code2vec (B,) the raw top-1, code2seq (B, steps) the teacher-forced argmax)."""

    @abstractmethod
    def in_step_names(self, ids: np.ndarray) -> list[str | None]:
        """The in-step predictions (`train_losses`' third value, one row a sample) as names."""

    def prediction_shape(self) -> tuple[int, ...]:
        """The shape of one sample's in-step prediction (code2seq: its decoder steps)."""
        return ()

    @abstractmethod
    def measure_split(self, split: str, batch_size: int, rows: np.ndarray | None = None,
                      margins_out: np.ndarray | None = None):
        """Per-sample (loss or None, score, predicted name or None) on `split` (its `rows` only, in
        that order, if given), dropout off. The score is the study's (`self.study`: the top-1 of a
        softmax over the top-10 logits) or the paper's formula (the predicted name's probability
        under a softmax over the whole vocabulary)."""

    def measure_shared(self, split: str, batch_size: int, margins: bool = False):
        """`measure_split` on the whole split; under data-parallel training each rank measures every
        world-th batch of `batch_size` (batch i on rank i % world: the batches are those of one
        process, which code2seq's predictions depend on) and every rank gets the whole split back.
        With `margins`, a fourth value: each sample's label margin (NaN where the model has none)."""
        group, n = self.group, len(self.inputs[split])
        if not group.active:
            margin = np.full(n, np.nan, dtype=np.float32) if margins else None
            return (*self.measure_split(split, batch_size, margins_out=margin), margin)
        from codemem.distributed import all_gather_objects

        mine = distributed.batch_share(n, batch_size, group)
        margin = np.full(len(mine), np.nan, dtype=np.float32) if margins else None
        parts = all_gather_objects((mine, *self.measure_split(split, batch_size, rows=mine, margins_out=margin), margin),
                                   group)  # fmt: skip
        losses = np.zeros(n, dtype=np.float32) if split in self.labels else None
        scores, predictions = np.zeros(n, dtype=np.float32), [None] * n
        all_margins = np.full(n, np.nan, dtype=np.float32) if margins else None
        for rows, loss, score, predicted, part_margin in parts:
            if losses is not None and len(rows):
                losses[rows] = loss
            scores[rows] = score
            if all_margins is not None:
                all_margins[rows] = part_margin
            for row, name in zip(rows.tolist(), predicted):
                predictions[row] = name
        return losses, scores, predictions, all_margins

    @staticmethod
    @abstractmethod
    def f1(true, predicted) -> metrics.F1: ...

    def drop_train(self, positions: np.ndarray) -> None:
        """Train and measure without the kept training samples at `positions` (the vocabularies stay
        those of the whole noisy training set: the model keeps its shape)."""
        keep = np.setdiff1d(np.arange(len(self.train_names)), positions)
        rows = torch.from_numpy(keep)
        self.train_kept = self.train_kept[keep]
        self.train_names = [self.train_names[i] for i in keep.tolist()]
        self.inputs["train"], self.labels["train"] = self.inputs["train"][rows], self.labels["train"][rows]
        self.dropped = len(positions)

    # ---- codemem.task.Training ---------------------------------------------------------------------
    @property
    def samples_per_epoch(self) -> int:
        return len(self.train_names)

    def describe(self) -> str:
        return f"{len(self.train_names)} training / {len(self.true_test_names)} test samples, vocab {self.vocab}"

    def batches(self, epoch: int) -> list[torch.Tensor]:
        """The epoch's batches of training positions. `clean`: a full permutation. `study`: the order
        the originals' readers gave, a 10,000-sample shuffle buffer over the training file in its
        (project-grouped) order, refilled afresh each epoch (`shuffle_buffer_order`)."""
        n = len(self.train_names)
        self._in_step_loss = np.zeros(n, dtype=np.float32)
        self._in_step_pred = np.zeros((n, *self.prediction_shape()), dtype=np.int32)
        if self.study:
            order = torch.from_numpy(shuffle_buffer_order(n, SHUFFLE_BUFFER_SIZE, torch.rand(n, dtype=torch.float64)))
        else:
            order = torch.randperm(n)
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def loss(self, idx: torch.Tensor) -> tuple[torch.Tensor, int]:
        loss, per_sample, predicted = self.train_losses(idx)
        rows = idx.numpy()
        self._in_step_loss[rows] = per_sample.detach().float().cpu().numpy()
        self._in_step_pred[rows] = predicted.detach().cpu().numpy()
        return loss, len(idx)

    def step_state(self) -> dict:
        return {"in_step_loss": self._in_step_loss.copy(), "in_step_pred": self._in_step_pred.copy()}

    def load_step_state(self, state: dict) -> None:
        self._in_step_loss = state["in_step_loss"].copy()
        self._in_step_pred = state["in_step_pred"].copy()

    def gather_in_step(self, group) -> None:
        if group.active:  # each rank filled its own positions; the others are 0
            from codemem.distributed import all_gather_objects

            self._in_step_loss = np.sum(all_gather_objects(self._in_step_loss, group), axis=0, dtype=np.float32)
            self._in_step_pred = np.sum(all_gather_objects(self._in_step_pred, group), axis=0, dtype=np.int32)

    def measure(self, epoch: int) -> tuple[dict, dict[str, np.ndarray]]:
        """The epoch's F1, Gini, CSR and scores. Gini and train F1: `study` over the per-sample losses
        and predictions of this epoch's training steps (dropout on, the weights moving within the
        epoch, as the authors' patches logged them: CI-Memorization's code2vec
        `tensorflow_model.py` `train`, code2seq `model.py` `train` / `update_correct_predictions`);
        `clean` over a pass after the epoch (dropout off, one model)."""
        bs = self.eval_batch_size
        after_epoch_loss, train_score, train_pred, train_margin = self.measure_shared("train", bs, margins=True)
        train_loss = self._in_step_loss if self.study else after_epoch_loss
        _, test_score, test_pred, _ = self.measure_shared("test", bs)
        train_f1 = self.f1(self.train_names, self.in_step_names(self._in_step_pred) if self.study else train_pred)
        test_f1 = self.f1(self.true_test_names, test_pred)
        csr, changed = (float("nan"), 0, 0), (float("nan"), 0, 0)
        if self.csr and len(self.variant_owner):
            variant_pred = [test_pred[i] for i in self.variant_owner]  # unmeasured: unchanged contexts
            _, _, measured, _ = self.measure_shared("variants", bs)
            for i, prediction in zip(np.flatnonzero(self.variant_measured).tolist(), measured):
                variant_pred[i] = prediction
            csr = metrics.critical_sample_ratio(test_pred, variant_pred, self.variant_owner, len(test_pred))
            changed = metrics.changed_variant_ratio(test_pred, variant_pred, self.variant_owner)
        row = {
            "train_f1": train_f1.f1, "train_precision": train_f1.precision, "train_recall": train_f1.recall,
            "test_f1": test_f1.f1, "test_precision": test_f1.precision, "test_recall": test_f1.recall,
            "gini": metrics.gini(train_loss),
            # `csr`: study, over variants as the study's CSVs count it; clean, over samples (any
            # variant changes the prediction), the definition of Arpit et al.; both are logged.
            "csr": changed[0] if self.study else csr[0], "csr_samples": csr[0], "csr_critical": csr[1],
            "csr_transformable": csr[2], "csr_variants": changed[0], "csr_changed": changed[1],
            "csr_variant_count": changed[2],
            "test_score": float(test_score.mean()) if len(test_score) else 0.0,
            "train_score": float(train_score.mean()) if len(train_score) else 0.0,
        }  # fmt: skip
        # Training dynamics for mislabel detection (codemem.detection), given label = the noisy one:
        # its loss after the epoch (dropout off; the probability is exp(-loss)), margin, and whether
        # the prediction is it; and the in-step losses.
        correct = np.fromiter((p == n for p, n in zip(train_pred, self.train_names)), dtype=np.int8,
                              count=len(self.train_names))  # fmt: skip
        dynamics = {"dyn_loss": after_epoch_loss, "dyn_margin": train_margin, "dyn_correct": correct,
                    "in_step_loss": self._in_step_loss.copy()}  # fmt: skip
        return row, {"train_loss": train_loss, "train_score": train_score, "test_score": test_score, **dynamics}

    def summary(self, row: dict) -> str:
        return (f"train F1 {row['train_f1']:.3f}  test F1 {row['test_f1']:.3f}  gini {row['gini']:.3f}  "
                f"CSR {row['csr']:.3f}  score {row['test_score']:.3f}")  # fmt: skip

    def outputs(self) -> tuple[dict, dict[str, np.ndarray], dict]:
        counts = {"train_samples": len(self.train_names), "test_samples": len(self.true_test_names),
                  "train_dropped_no_context": len(self.noisy_train_names) - len(self.train_names) - self.dropped,
                  "test_dropped_no_context": self.test_dropped, "train_dropped_flagged": self.dropped,
                  "vocab": self.vocab,
                  "measure": "study" if self.study else "clean"}  # fmt: skip
        flipped = np.fromiter((self.noisy_train_names[i] != self.true_train_names[i] for i in self.train_kept),
                              dtype=np.int8, count=len(self.train_kept))  # fmt: skip
        arrays = {"train_kept": self.train_kept, "flipped": flipped}
        return {"config": self.config_dict(), "vocab": self.vocab}, arrays, counts

    def config_dict(self) -> dict:
        return asdict(self.model.config)


# Both originals' training readers: code2vec `path_context_reader.py` (`_create_dataset_pipeline`) and
# code2seq `reader.py` (`compute_output`) shuffle with `SHUFFLE_BUFFER_SIZE = 10000` (config.py).
SHUFFLE_BUFFER_SIZE = 10_000


def shuffle_buffer_order(n: int, buffer_size: int, uniforms) -> np.ndarray:
    """The order in which `tf.data.Dataset.shuffle(buffer_size)` yields the elements 0..n-1 of its
    input (one pass, one input slice: tf.data's `ShuffleDatasetOp`): the buffer is filled with the
    first `buffer_size` elements; each output is an element of the buffer chosen uniformly (offset
    `floor(u * size)` from the ring's oldest slot, for the next of `uniforms`, n floats in [0, 1)),
    which swaps places with the oldest, and the oldest slot is refilled with the next input element.
    TF draws its offsets from Philox (unseeded in the originals); these come from the caller.

    Where the originals repeat: code2seq re-initialises its reader every epoch (`SAVE_EVERY_EPOCHS =
    1`: no repeat; each epoch a fresh pass, reshuffled), which this is. code2vec's reader repeats
    *before* shuffling (`repeat(NUM_TRAIN_EPOCHS).shuffle(...)`), so its buffer runs on across epoch
    boundaries; here each epoch is its own pass (see docs/fidelity.md)."""
    u = np.asarray(uniforms, dtype=np.float64)
    if len(u) < n:
        raise ValueError(f"shuffle_buffer_order needs {n} uniforms, got {len(u)}")
    cap = min(buffer_size, n)
    buf, out = list(range(cap)), [0] * n
    next_in = cap  # the next input element
    for k, draw in enumerate(u[:n].tolist()):  # output k: the ring's oldest slot is k (mod cap)
        size = min(cap, n - k)  # elements in the buffer
        first = k % cap
        index = (k + int(draw * size)) % cap
        out[k] = buf[index]
        buf[index] = buf[first]
        if next_in < n:  # the freed (oldest) slot takes the next input element
            buf[first] = next_in
            next_in += 1
    return np.asarray(out, dtype=np.int64)


def _vocabulary(uses: Counter, max_size: int) -> list[str]:
    """The original's capped vocabularies (`Common.load_vocab_from_dict`): the `max_size` most frequent
    entries of the training set, ties by name; in name order, the ids' order not mattering."""
    if len(uses) > max_size:
        return sorted(sorted(uses, key=lambda w: (-uses[w], w))[:max_size])
    return sorted(uses)


def _rows(table: torch.Tensor | None, rows: np.ndarray | None) -> torch.Tensor | None:
    return table if table is None or rows is None else table[torch.from_numpy(rows).long()]


def _keep_rows(table: torch.Tensor, kept: np.ndarray, chunk: int = 8192) -> torch.Tensor:
    """`table[kept]` for increasing `kept`, moved forward in place (no second copy of the table)."""
    if len(kept) == len(table):
        return table
    for start in range(0, len(kept), chunk):
        part = torch.from_numpy(kept[start : start + chunk])
        table[start : start + len(part)] = table[part]
    return table[: len(kept)]
