"""code2vec's training (codemem.task.Training): `.c2v` contexts; the name is one class of the
training set's names; code2vec's F1 (the first possible name of the top 10)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from codemem import detection, metrics
from codemem.methodname import code2vec, code2vec_fast
from codemem.methodname.name_training import MethodNameTraining, _id_map, _keep_rows, _rows, _vocabulary
from codemem.metrics import OOV


class Code2VecTraining(MethodNameTraining):
    fmt = "c2v"

    def __init__(self, samples, noisy_train_labels, max_contexts, device, config: code2vec.Code2VecConfig, **kw):
        super().__init__(samples, noisy_train_labels, max_contexts, device, **kw)
        # The vocabularies: `clean` from the training contexts the model sees (the first max_contexts
        # stored); `study` from every stored training context, as code2vec's preprocess.sh counts its
        # histograms over all extracted ones, and then preprocess.py's choice of the contexts seen.
        # Under `study` the methods without a code line are not counted either: code2vec's extractor
        # never writes them (`_has_code`).
        stored = self.contexts["train"]
        counted = stored if self.study else stored[:, :max_contexts]
        written = self._has_code("train")
        rows = written if isinstance(written, np.ndarray) else None
        self.token_map = _id_map(len(self.tables.tokens), counted[..., 0], counted[..., 2], cap=config.max_token_vocab,
                                 rows=rows)  # fmt: skip
        self.path_map = _id_map(len(self.tables.paths), counted[..., 1], cap=config.max_path_vocab, rows=rows)
        if self.study and stored.shape[1] > max_contexts:
            train = preprocess_contexts(stored, self.token_map, self.path_map, max_contexts,
                                        np.random.default_rng([self.seed, 3]))  # fmt: skip
        else:  # the first max_contexts stored: a uniform sample (the extractor shuffles a method's contexts)
            train = stored[:, :max_contexts]
        del counted, stored
        labels = noisy_train_labels if rows is None else [n for n, w in zip(noisy_train_labels, rows) if w]
        self.names = [OOV] + _vocabulary(Counter(labels), config.max_target_vocab)
        self.name_id = name_id = {n: i for i, n in enumerate(self.names)}
        # A Java-Small-sized training set is 1.7 GB of int32 rows: encoded in place when nobody else holds them.
        owned = self.own_samples and train.flags.c_contiguous and train.flags.writeable and train.dtype == np.int32
        encoded_train = self.encode(train, out=train if owned else None)
        # As the original reader: training drops samples without a valid context or with an OOV name.
        known_name = np.fromiter((n in name_id for n in noisy_train_labels), dtype=bool, count=len(noisy_train_labels))
        # Under `study` also without the methods code2vec's extractor never writes: no code line in the
        # body (JavaExtractor FunctionVisitor, MinCodeLength = 1); code2seq's extractor keeps them.
        self.train_kept = np.flatnonzero(encoded_train.any(-1).any(-1).numpy() & known_name & written)
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
        self.keep_test(np.flatnonzero((self.inputs["test"] != 0).any(-1).any(-1).numpy() & self._has_code("test")))
        self.train_names = [noisy_train_labels[i] for i in self.train_kept]
        self.labels = {
            "train": torch.tensor([name_id[n] for n in self.train_names]),
            "test": torch.tensor([name_id.get(n, 0) for n in self.true_test_names], dtype=torch.long),
        }
        model_code = {"fast": code2vec_fast, "reference": code2vec}[self.implementation]
        self.model = model_code.Code2Vec(int(self.token_map.max()) + 1, int(self.path_map.max()) + 1,
                                         len(self.names), config).to(device)  # fmt: skip
        self.optimizer = model_code.make_optimizer(self.model)
        self.scheduler = None
        self.vocab = {"tokens": int(self.token_map.max()) + 1, "paths": int(self.path_map.max()) + 1,
                      "targets": len(self.names)}  # fmt: skip

    def _has_code(self, split: str) -> np.ndarray | bool:
        """(n,) bool: the split's methods with a code line under `study`; True (all) under `clean` or
        for samples extracted before the flag was recorded."""
        flags = self.code_line.get(split)
        return True if not self.study or flags is None else np.asarray(flags, dtype=bool)

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

    def train_losses(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # Through `self.model(...)`, not `.loss`: under data-parallel training that call is DDP's.
        logits = self.model(self.inputs["train"][idx].to(self.device))
        per_sample = F.cross_entropy(logits, self.labels["train"][idx].to(self.device), reduction="none")
        # The step's own prediction: the raw top-1 of these logits (dropout on, no filter), what the
        # study's patch logs as `top_words[0]` (CI-Memorization code2vec `tensorflow_model.py`, `train`).
        return per_sample.mean(), per_sample, logits.detach().argmax(-1)

    def in_step_names(self, ids: np.ndarray) -> list[str | None]:
        """The raw top-1 names, OOV included (the study's training log does not filter them)."""
        return [self.names[i] for i in ids.tolist()]

    @torch.no_grad()
    def measure_split(self, split: str, batch_size: int, rows: np.ndarray | None = None,
                      margins_out: np.ndarray | None = None):
        """Per-sample (loss or None, score, predicted name or None); dropout off. The prediction is
        the first possible name among the top-k (code2vec). `margins_out`, if given, gets each
        sample's label margin (codemem.detection.label_margins)."""
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
            if isinstance(self.model, code2vec_fast.Code2Vec):
                logits = self.model(batch, out=logits_buffer[: len(batch)])
            else:  # the reference computes its logits afresh
                logits = self.model(batch)
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
                if margins_out is not None:
                    margins_out[start:end] = detection.label_margins(logits, y).cpu().numpy()
        return losses, scores, predictions

    @staticmethod
    def f1(true, predicted) -> metrics.F1:
        return metrics.subtoken_f1(true, predicted)


def preprocess_contexts(ctx: np.ndarray, token_map: np.ndarray, path_map: np.ndarray, max_contexts: int,
                        rng: np.random.Generator, chunk: int = 8192) -> np.ndarray:
    """code2vec's `preprocess.py` (`process_file`) choice of a method's contexts, on extraction-table
    rows (n, W, 3) whose valid contexts come first (padding -1): a method with at most
    `max_contexts` contexts keeps them all, in order; one with more keeps the contexts whose three
    parts are all in the training vocabularies ("full found") first, then those with some part in
    them ("partial found"), and drops those with none: more than `max_contexts` full ones -> a random
    sample of them (`random.sample`); else all full ones and a random sample of the partial ones to
    fill `max_contexts`; else all full and partial ones (the method gets fewer than `max_contexts`).
    Known = a nonzero id in `token_map` / `path_map` (extraction-table index -> id; 0 = OOV/PAD).
    Returns (n, max_contexts, 3), padding -1. The sampled ones come in random order (the model does
    not depend on the order of the contexts)."""
    n, width, _ = ctx.shape
    out = np.full((n, max_contexts, 3), -1, dtype=ctx.dtype)
    for start in range(0, n, chunk):
        part = ctx[start : start + chunk]
        valid = part[..., 1] >= 0
        known = np.stack([token_map[part[..., 0]] != 0, path_map[part[..., 1]] != 0, token_map[part[..., 2]] != 0], -1)
        # 0 full, 1 partial, 2 none, 3 padding
        rank = np.where(known.all(-1), 0, np.where(known.any(-1), 1, 2)).astype(np.float64)
        rank[~valid] = 3
        over = valid.sum(1) > max_contexts
        # Over the limit: by rank, randomly within a rank; otherwise in stored order.
        key = np.where(over[:, None], rank + rng.random(rank.shape), np.arange(width, dtype=np.float64))
        order = np.argsort(key, axis=1, kind="stable")[:, :max_contexts]
        chosen = np.take_along_axis(part, order[..., None], axis=1)
        dropped = over[:, None] & (np.take_along_axis(rank, order, axis=1) >= 2)  # none found: dropped
        chosen[dropped] = -1
        out[start : start + len(part)] = chosen
    return out

