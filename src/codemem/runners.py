"""MethodName's training (codemem.task.Training) for code2vec and code2seq.

A runner turns the extracted samples (codemem.io) and the noisy training labels into the model's
tensors, builds vocabularies from the noisy training set only (as the originals do), trains on
batches of training-set positions, and after each epoch measures every training sample (loss, score,
prediction against the label it trained on) and every test sample and its renaming variants with
dropout off: F1, the Gini of the training losses, the mean scores and the critical sample ratio, the
same way for both models.

- `Code2VecRunner`: `.c2v` contexts; the name is one class; code2vec's F1.
- `Code2SeqRunner`: `.c2s` contexts; the name is a sequence of sub-tokens decoded greedily; code2seq's
  F1; 200 of up to 1,000 stored contexts sampled afresh for every training step.
"""

from __future__ import annotations

from abc import abstractmethod
from collections import Counter
from dataclasses import asdict, replace

import numpy as np
import torch

from codemem import distributed, io, metrics
from codemem.io import Layout
from codemem.metrics import OOV
from codemem.models import code2seq, code2vec
from codemem.params import Params
from codemem.task import Training


def _id_map(table_size: int, *used: np.ndarray, first_id: int = 1, cap: int | None = None) -> np.ndarray:
    """Extraction-table index -> training vocabulary id (first_id.., in table order) of the entries
    in the `used` arrays, at most `cap` of them: the most frequent there (ties: the earlier table
    entry); the extra last slot maps padding (-1) to 0; other entries map to 0 too (PAD/OOV). int32,
    and no copy of the (possibly multi-GB) `used` arrays."""
    counts = np.zeros(table_size + 1, dtype=np.int64)
    for part in used:
        for start in range(0, len(part), 8192):  # chunks: temporaries stay small
            entries, n = np.unique(part[start : start + 8192], return_counts=True)
            counts[entries] += n
    counts[table_size] = 0  # padding (-1) landed on the extra last slot
    present = counts > 0
    if cap is not None and present.sum() > cap:
        present[:] = False
        present[np.argsort(-counts, kind="stable")[:cap]] = True
    ids = np.zeros(table_size + 1, dtype=np.int32)
    ids[present] = np.arange(first_id, first_id + int(present.sum()), dtype=np.int32)
    return ids


class MethodNameRunner(Training):
    """What code2vec and code2seq share: labels, splits, renaming variants, batching, the epoch's
    measurements. A subclass builds `model`, `optimizer`, `scheduler`, `inputs` (the encoded splits),
    `train_kept`, `train_names` and `vocab`, and implements `train_losses`, `measure_split` and `f1`."""

    fmt: str  # the context format the model reads (io.ContextSet): c2v or c2s
    train_names: list[str]  # the noisy labels of the training samples kept (those with a context)
    train_kept: np.ndarray  # their positions in the training split
    vocab: dict[str, int]
    group: distributed.Group = distributed.SINGLE  # data-parallel training sets it (codemem.train)

    def __init__(self, samples: io.SampleSet, noisy_train_labels: list[str], max_contexts: int, device,
                 batch_size: int = 128, eval_batch_size: int = 256, csr: bool = True, measure: str = "study",
                 own_samples: bool = False):  # fmt: skip
        self.device = device
        self.own_samples = own_samples  # the runner may overwrite `samples`' arrays (from_params: nobody else has them)
        self.max_contexts = max_contexts
        self.batch_size, self.eval_batch_size, self.csr = batch_size, eval_batch_size, csr
        self.study = measure == "study"  # see TrainParams.measure
        self.test_dropped = 0
        self._in_step_loss = np.zeros(0, dtype=np.float32)
        cs = samples.formats[self.fmt]
        self.contexts = {"train": cs.contexts["train"], "test": cs.contexts["test"][:, :max_contexts]}
        self.true_test_names = [str(samples.labels[i]) for i in samples.split_labels["test"]]
        self.noisy_train_names = list(noisy_train_labels)
        # CSR counts every test sample with a renamable variable; a renaming that changes none of the
        # contexts the model sees cannot change its prediction and is not measured.
        v = self._variants = cs.variants["test"]
        in_view = v.occ_ctx < self.contexts["test"].shape[1]
        self.variant_owner = v.owner
        self.variant_measured = np.bincount(v.occ_var[in_view], minlength=len(v.owner)) > 0
        self.tables = cs

    @classmethod
    def from_params(cls, params: Params, layout: Layout, device) -> MethodNameRunner:
        runner = cls(io.load_samples(layout.samples, formats=(cls.fmt,)), io.load_noisy_labels(layout.noisy),
                     params.extract.max_contexts, device, params.model_config(), batch_size=params.train.batch_size,
                     eval_batch_size=params.train.eval_batch_size, csr=params.train.csr,
                     measure=params.train.measure, own_samples=True)  # fmt: skip
        runner.input_files = [layout.samples / "contexts.npz", layout.noisy / "labels.tsv"]
        return runner

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
        v, measured = self._variants, self.variant_measured
        rows = self.contexts["test"][v.owner[measured]].copy()
        row_of = np.cumsum(measured) - 1
        keep = (v.occ_ctx < rows.shape[1]) & measured[v.occ_var]
        rows[row_of[v.occ_var[keep]], v.occ_ctx[keep], v.occ_side[keep] * 2] = v.token[v.occ_var[keep]]
        return rows

    # ---- what a model implements -----------------------------------------------------------------
    @abstractmethod
    def train_losses(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """On training positions `idx`, dropout on: (the loss to minimise, the per-sample losses (B,)
        as the study's logging patch recorded them)."""

    @abstractmethod
    def measure_split(self, split: str, batch_size: int, rows: np.ndarray | None = None):
        """Per-sample (loss or None, score, predicted name or None) on `split` (its `rows` only, in
        that order, if given), dropout off. The score is the study's (`self.study`: the top-1 of a
        softmax over the top-10 logits) or the paper's formula (the predicted name's probability
        under a softmax over the whole vocabulary)."""

    def measure_shared(self, split: str, batch_size: int):
        """`measure_split` on the whole split; under data-parallel training each rank measures every
        world-th batch of `batch_size` (batch i on rank i % world: the batches are those of one
        process, which code2seq's predictions depend on) and every rank gets the whole split back."""
        group = self.group
        if not group.active:
            return self.measure_split(split, batch_size)
        from codemem.distributed import all_gather_objects

        n = len(self.inputs[split])
        mine = distributed.batch_share(n, batch_size, group)
        parts = all_gather_objects((mine, *self.measure_split(split, batch_size, rows=mine)), group)
        losses = np.zeros(n, dtype=np.float32) if split in self.labels else None
        scores, predictions = np.zeros(n, dtype=np.float32), [None] * n
        for rows, loss, score, predicted in parts:
            if losses is not None and len(rows):
                losses[rows] = loss
            scores[rows] = score
            for row, name in zip(rows.tolist(), predicted):
                predictions[row] = name
        return losses, scores, predictions

    @staticmethod
    @abstractmethod
    def f1(true, predicted) -> metrics.F1: ...

    # ---- codemem.task.Training ---------------------------------------------------------------------
    @property
    def samples_per_epoch(self) -> int:
        return len(self.train_names)

    def describe(self) -> str:
        return f"{len(self.train_names)} training / {len(self.true_test_names)} test samples, vocab {self.vocab}"

    def batches(self, epoch: int) -> list[torch.Tensor]:
        self._in_step_loss = np.zeros(len(self.train_names), dtype=np.float32)
        order = torch.randperm(len(self.train_names))
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def loss(self, idx: torch.Tensor) -> tuple[torch.Tensor, int]:
        loss, per_sample = self.train_losses(idx)
        self._in_step_loss[idx.numpy()] = per_sample.detach().float().cpu().numpy()
        return loss, len(idx)

    def step_state(self) -> dict:
        return {"in_step_loss": self._in_step_loss.copy()}

    def load_step_state(self, state: dict) -> None:
        self._in_step_loss = state["in_step_loss"].copy()

    def gather_in_step(self, group) -> None:
        if group.active:  # each rank filled its own positions; the others are 0
            from codemem.distributed import all_gather_objects

            self._in_step_loss = np.sum(all_gather_objects(self._in_step_loss, group), axis=0, dtype=np.float32)

    def measure(self, epoch: int) -> tuple[dict, dict[str, np.ndarray]]:
        """The epoch's F1, Gini, CSR and scores. Gini: `study` over the per-sample losses of this
        epoch's training steps (dropout on, the weights moving within the epoch, as the authors'
        patch logged them); `clean` over a pass after the epoch (dropout off, one model)."""
        bs = self.eval_batch_size
        after_epoch_loss, train_score, train_pred = self.measure_shared("train", bs)
        train_loss = self._in_step_loss if self.study else after_epoch_loss
        _, test_score, test_pred = self.measure_shared("test", bs)
        train_f1 = self.f1(self.train_names, train_pred)
        test_f1 = self.f1(self.true_test_names, test_pred)
        csr = (float("nan"), 0, 0)
        if self.csr and len(self.variant_owner):
            variant_pred = [test_pred[i] for i in self.variant_owner]  # unmeasured: unchanged contexts
            _, _, measured = self.measure_shared("variants", bs)
            for i, prediction in zip(np.flatnonzero(self.variant_measured).tolist(), measured):
                variant_pred[i] = prediction
            csr = metrics.critical_sample_ratio(test_pred, variant_pred, self.variant_owner, len(test_pred))
        row = {
            "train_f1": train_f1.f1, "train_precision": train_f1.precision, "train_recall": train_f1.recall,
            "test_f1": test_f1.f1, "test_precision": test_f1.precision, "test_recall": test_f1.recall,
            "gini": metrics.gini(train_loss),
            "csr": csr[0], "csr_critical": csr[1], "csr_transformable": csr[2],
            "test_score": float(test_score.mean()) if len(test_score) else 0.0,
            "train_score": float(train_score.mean()) if len(train_score) else 0.0,
        }  # fmt: skip
        return row, {"train_loss": train_loss, "train_score": train_score, "test_score": test_score}

    def summary(self, row: dict) -> str:
        return (f"train F1 {row['train_f1']:.3f}  test F1 {row['test_f1']:.3f}  gini {row['gini']:.3f}  "
                f"CSR {row['csr']:.3f}  score {row['test_score']:.3f}")  # fmt: skip

    def outputs(self) -> tuple[dict, dict[str, np.ndarray], dict]:
        counts = {"train_samples": len(self.train_names), "test_samples": len(self.true_test_names),
                  "train_dropped_no_context": len(self.noisy_train_names) - len(self.train_names),
                  "test_dropped_no_context": self.test_dropped, "vocab": self.vocab,
                  "measure": "study" if self.study else "clean"}  # fmt: skip
        return {"config": self.config_dict(), "vocab": self.vocab}, {"train_kept": self.train_kept}, counts

    def config_dict(self) -> dict:
        return asdict(self.model.config)


class Code2VecRunner(MethodNameRunner):
    fmt = "c2v"

    def __init__(self, samples, noisy_train_labels, max_contexts, device, config: code2vec.Code2VecConfig, **kw):
        super().__init__(samples, noisy_train_labels, max_contexts, device, **kw)
        train = self.contexts["train"][:, :max_contexts]
        self.token_map = _id_map(len(self.tables.tokens), train[..., 0], train[..., 2], cap=config.max_token_vocab)
        self.path_map = _id_map(len(self.tables.paths), train[..., 1], cap=config.max_path_vocab)
        self.names = [OOV] + _vocabulary(Counter(noisy_train_labels), config.max_target_vocab)
        self.name_id = name_id = {n: i for i, n in enumerate(self.names)}
        # A Java-Small-sized training set is 1.7 GB of int32 rows: encoded in place when nobody else holds them.
        owned = self.own_samples and train.flags.c_contiguous and train.flags.writeable and train.dtype == np.int32
        encoded_train = self.encode(train, out=train if owned else None)
        # As the original reader: training drops samples without a valid context or with an OOV name.
        known_name = np.fromiter((n in name_id for n in noisy_train_labels), dtype=bool, count=len(noisy_train_labels))
        self.train_kept = np.flatnonzero(encoded_train.any(-1).any(-1).numpy() & known_name)
        # Encoded, the raw rows can go once the caller drops the SampleSet (a Java-Small-sized one: 1.7 GB).
        del train
        self.contexts["train"] = None
        self.tables = replace(self.tables, contexts={k: v for k, v in self.tables.contexts.items() if k != "train"})
        self.inputs = {
            "train": _keep_rows(encoded_train, self.train_kept),
            "test": self.encode(self.contexts["test"]),
            "variants": self.encode(self.variant_contexts()),
        }
        # As the original's evaluation reader: a test sample none of whose contexts has a known token
        # or path (PAD and OOV share id 0) is not evaluated.
        self.keep_test(np.flatnonzero((self.inputs["test"] != 0).any(-1).any(-1).numpy()))
        self.train_names = [noisy_train_labels[i] for i in self.train_kept]
        self.labels = {
            "train": torch.tensor([name_id[n] for n in self.train_names]),
            "test": torch.tensor([name_id.get(n, 0) for n in self.true_test_names], dtype=torch.long),
        }
        self.model = code2vec.Code2Vec(int(self.token_map.max()) + 1, int(self.path_map.max()) + 1,
                                       len(self.names), config).to(device)  # fmt: skip
        self.optimizer = code2vec.make_optimizer(self.model)
        self.scheduler = None
        self.vocab = {"tokens": int(self.token_map.max()) + 1, "paths": int(self.path_map.max()) + 1,
                      "targets": len(self.names)}  # fmt: skip

    def encode(self, ctx: np.ndarray, chunk: int = 8192, out: np.ndarray | None = None) -> torch.Tensor:
        """Extraction-table rows (n, C, 3) -> vocabulary ids, int32 (n, C, 3), filled chunk by chunk
        into `out` (may be `ctx` itself: each chunk is read before it is written): a Java-Small-sized
        training set (700k x 200 contexts) is 1.7 GB as int32 and must not be copied whole on the way."""
        out = np.empty(ctx.shape, dtype=np.int32) if out is None else out
        for start in range(0, len(ctx), chunk):
            part = ctx[start : start + chunk]
            ids = (self.token_map[part[..., 0]], self.path_map[part[..., 1]], self.token_map[part[..., 2]])
            for k, column in enumerate(ids):
                out[start : start + chunk, ..., k] = column
        return torch.from_numpy(out)

    def train_losses(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        per_sample = self.model.loss(self.inputs["train"][idx].to(self.device), self.labels["train"][idx].to(self.device))
        return per_sample.mean(), per_sample

    @torch.no_grad()
    def measure_split(self, split: str, batch_size: int, rows: np.ndarray | None = None):
        """Per-sample (loss or None, score, predicted name or None); dropout off. The prediction is
        the first possible name among the top-k (code2vec)."""
        self.model.eval()
        inputs, labels = _rows(self.inputs[split], rows), _rows(self.labels.get(split), rows)
        # Written into arrays made once: a small tensor kept from every batch pins glibc's heap
        # between the batches' large transient blocks, and the heap then grows with the split.
        losses = np.zeros(len(inputs), dtype=np.float32) if labels is not None else None
        scores, predictions = np.zeros(len(inputs), dtype=np.float32), []
        # The logits and their log-softmax go into two buffers made once a split: at Java-Small's
        # size each is 256 x 174,600 floats (179 MB), and fresh pages for them every batch cost more
        # system time than the product itself. The same numbers: cross_entropy is nll_loss(log_softmax).
        logits_buffer = torch.empty(min(batch_size, len(inputs)), len(self.names), device=self.device)
        log_softmax_buffer = torch.empty_like(logits_buffer) if labels is not None else None
        for start in range(0, len(inputs), batch_size):
            batch = inputs[start : start + batch_size].to(self.device)
            logits = self.model(batch, out=logits_buffer[: len(batch)])
            end = start + len(logits)
            top = logits.topk(min(self.model.config.top_k, logits.shape[-1]), dim=-1)
            first = [metrics.first_possible_name(self.names[i] for i in row) for row in top.indices.tolist()]
            if self.study:  # the patch logs top_scores[0]: the top-1 of a softmax over the top-10 logits
                scores[start:end] = torch.softmax(top.values, -1)[:, 0].cpu().numpy()
            else:
                ids = torch.tensor([self.name_id[n] if n else 0 for n in first], device=logits.device)
                scores[start:end] = torch.softmax(logits, -1).gather(1, ids[:, None]).squeeze(1).cpu().numpy()
            predictions += first
            if labels is not None:
                y = labels[start:end].to(self.device)
                log_probabilities = torch.log_softmax(logits, -1, out=log_softmax_buffer[: len(batch)])
                losses[start:end] = torch.nn.functional.nll_loss(log_probabilities, y, reduction="none").cpu().numpy()
        return losses, scores, predictions

    @staticmethod
    def f1(true, predicted) -> metrics.F1:
        return metrics.subtoken_f1(true, predicted)


class Code2SeqRunner(MethodNameRunner):
    fmt = "c2s"

    def __init__(self, samples, noisy_train_labels, max_contexts, device, config: code2seq.Code2SeqConfig, **kw):
        super().__init__(samples, noisy_train_labels, max_contexts, device, **kw)
        self.config = config
        tokens, paths = self.tables.tokens, self.tables.paths
        train = self.contexts["train"]
        used_tokens, token_uses = np.unique(np.concatenate([train[..., 0].ravel(), train[..., 2].ravel()]),
                                            return_counts=True)  # fmt: skip
        used_paths = np.unique(train[..., 1].ravel())
        subtoken_uses: Counter = Counter()
        for t, uses in zip(tokens[used_tokens[used_tokens >= 0]], token_uses[used_tokens >= 0]):
            for p in t.split("|"):
                subtoken_uses[p] += int(uses)
        subtokens = _vocabulary(subtoken_uses, config.subtoken_vocab_max_size)
        nodes = sorted({p for t in paths[used_paths[used_paths >= 0]] for p in t.split("|")})
        sub_id = {s: i + len(code2seq.SUBTOKEN_SPECIALS) for i, s in enumerate(subtokens)}
        node_id = {s: i + len(code2seq.NODE_SPECIALS) for i, s in enumerate(nodes)}
        target_uses = Counter(p for n in noisy_train_labels for p in n.split("|"))
        self.targets = list(code2seq.TARGET_SPECIALS) + _vocabulary(target_uses, config.target_vocab_max_size)
        target_id = {s: i for i, s in enumerate(self.targets)}
        unk = code2seq.UNK_ID
        # Lookup tables indexed by extraction-table index (last row: padding -1 -> all PAD).
        self.token_parts = self._table([[sub_id.get(p, unk) for p in t.split("|")] for t in tokens], config.max_name_parts)
        self.path_nodes = self._table([[node_id.get(p, unk) for p in t.split("|")] for t in paths], config.max_path_nodes)
        self.path_lengths = (self.path_nodes != 0).sum(-1)

        def target_row(name: str) -> list[int]:  # sub-tokens then the end token (PAD id), MAX_TARGET_PARTS cut
            return [target_id.get(p, unk) for p in name.split("|")][: config.max_target_parts]

        self.train_kept = np.flatnonzero((train[..., 1] >= 0).any(-1))
        self.inputs = {
            "train": torch.from_numpy(train[self.train_kept]).long(),
            "test": torch.from_numpy(self.contexts["test"]).long(),
            "variants": torch.from_numpy(self.variant_contexts()).long(),
        }
        self.train_names = [noisy_train_labels[i] for i in self.train_kept]
        self.labels = {
            "train": self._table([target_row(n) for n in self.train_names], config.max_target_parts + 1)[:-1],
            "test": self._table([target_row(n) for n in self.true_test_names], config.max_target_parts + 1)[:-1],
        }
        # The attention counts every sample's padding up to max_contexts slots (MAX_CONTEXTS).
        self.model = code2seq.Code2Seq(len(sub_id) + 2, len(node_id) + 2, len(self.targets), config,
                                       max_contexts=max_contexts).to(device)  # fmt: skip
        self.optimizer = code2seq.make_optimizer(self.model, config)
        self.scheduler = code2seq.make_scheduler(self.optimizer, config)
        self.vocab = {"subtokens": len(sub_id) + 2, "nodes": len(node_id) + 2, "targets": len(self.targets)}

    @staticmethod
    def _table(rows: list[list[int]], width: int) -> torch.Tensor:
        out = torch.zeros(len(rows) + 1, width, dtype=torch.long)
        for i, row in enumerate(rows):
            out[i, : min(len(row), width)] = torch.tensor(row[:width], dtype=torch.long)
        return out

    def _batch(self, ctx: torch.Tensor):
        """Context rows (B, C, 3) of extraction-table indices -> the model's input tensors."""
        mask = ctx[..., 1] >= 0
        path = self.path_nodes[ctx[..., 1]]
        tensors = (self.token_parts[ctx[..., 0]], path, self.path_lengths[ctx[..., 1]], self.token_parts[ctx[..., 2]], mask)
        return [t.to(self.device) for t in tensors]

    def _sample_contexts(self, ctx: torch.Tensor) -> torch.Tensor:
        """code2seq's RANDOM_CONTEXTS: a fresh uniform subset of max_contexts stored contexts per step."""
        keys = torch.rand(ctx.shape[:2]).masked_fill(ctx[..., 1] < 0, float("inf"))
        order = keys.argsort(dim=1)[:, : self.max_contexts]
        return ctx.gather(1, order[..., None].expand(-1, -1, 3))

    def train_losses(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ctx = self._sample_contexts(self.inputs["train"][idx])
        target = self.labels["train"][idx].to(self.device)
        # The original minimises the per-sample SUM of step losses averaged over the batch; the
        # study's patch logs each sample's loss averaged over its steps.
        total = self.model(*self._batch(ctx), target, reduction="sum")
        return total.mean(), total / code2seq.target_step_mask(target).sum(1)

    @torch.no_grad()
    def measure_split(self, split: str, batch_size: int, rows: np.ndarray | None = None):
        """Per-sample (loss or None, score, predicted name or None). Training samples are measured
        on their first max_contexts stored contexts (a fixed uniform subset). Loss = mean per-step
        cross-entropy. Score: `study` as the authors' patch (`code2seq.study_scores`: over the first
        len(prediction) steps, the top-1 probability of a softmax over the top-10 logits, averaged);
        `clean` the mean top-1 probability of the full softmax over the sample's own steps.

        Predictions are what the original's evaluation gives with `batch_size` samples a batch in
        order: every decoded step's sub-token (after the end token too) until the batch's last
        sequence has ended, less <UNK>/<PAD>/</S>. Computed faster, exactly: samples of similar
        width are decoded together to the full length, each batch cut after its widest sample's
        last valid context (the model counts the cut slots as padding, as the original's 200
        slots), then `cut_like_dynamic_decode` applies the original's batches (58 % of the slots
        on jdk-top10 are padding; up to floating-point summation order).
        """
        self.model.eval()
        inputs = _rows(self.inputs[split], rows)[:, : self.max_contexts]
        labels = _rows(self.labels.get(split), rows)
        slots = torch.arange(1, inputs.shape[1] + 1)
        span = ((inputs[..., 1] >= 0) * slots).amax(1) if len(inputs) else slots[:0]
        order = torch.argsort(span, stable=True)
        steps = self.config.max_target_parts + 1
        top_k = code2seq.STUDY_SCORE_TOP_K if self.study else 0
        losses = torch.zeros(len(inputs))
        scores = torch.zeros((len(inputs), steps) if top_k else len(inputs))
        ids = torch.zeros(len(inputs), steps, dtype=torch.long)
        for start in range(0, len(inputs), batch_size):
            idx = order[start : start + batch_size]
            batch = self._batch(inputs[idx, : max(int(span[idx].max()), 1)])
            if labels is not None:
                decoded, score, loss = self.model.greedy_and_loss(
                    *batch, labels[idx].to(self.device), full=True, top_k=top_k)
                losses[idx] = loss.float().cpu()
            else:
                decoded, score = self.model.greedy(*batch, full=True, top_k=top_k)
            ids[idx], scores[idx] = decoded.cpu(), score.float().cpu()
        ids = code2seq.cut_like_dynamic_decode(ids, batch_size)
        subtokens = [code2seq.predicted_subtokens(row, self.targets) for row in ids.tolist()]
        predictions = ["|".join(s) or None for s in subtokens]
        if top_k:
            scores = code2seq.study_scores(scores, torch.tensor([len(s) for s in subtokens], dtype=torch.long))
        return (losses.numpy() if labels is not None else None), scores.numpy(), predictions

    @staticmethod
    def f1(true, predicted) -> metrics.F1:
        return metrics.subtoken_f1_code2seq(true, predicted, ignore=code2seq.FILTERED_TARGETS)


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


RUNNERS = {"code2vec": Code2VecRunner, "code2seq": Code2SeqRunner}
