"""What train.py needs from a MethodName model: its data, one optimisation step, and measurement.

A runner turns the extracted samples (codemem.io) and the noisy training labels into the model's
tensors, builds vocabularies from the noisy training set only (as the originals do), and answers
`measure(split)` with per-sample loss, predicted score and predicted name, after which train.py
computes the study's metrics the same way for every model.

- `Code2VecRunner`: `.c2v` contexts; the name is one class; code2vec's F1.
- `Code2SeqRunner`: `.c2s` contexts; the name is a sequence of sub-tokens decoded greedily; code2seq's
  F1; 200 of up to 1,000 stored contexts sampled afresh for every training step.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from codemem import io, metrics
from codemem.metrics import OOV
from codemem.models import code2seq, code2vec


def _id_map(table_size: int, used: np.ndarray, first_id: int = 1) -> np.ndarray:
    """Extraction-table index -> training vocabulary id (first_id..); the extra last slot maps
    padding (-1) to 0; entries not seen in training map to 0 too (PAD/OOV)."""
    ids = np.zeros(table_size + 1, dtype=np.int64)
    present = np.unique(used[used >= 0])
    ids[present] = np.arange(first_id, first_id + len(present))
    return ids


class MethodNameRunner:
    """Shared bookkeeping: labels, splits, renaming variants."""

    fmt: str

    def __init__(self, samples: io.SampleSet, noisy_train_labels: list[str], max_contexts: int, device):
        self.device = device
        self.max_contexts = max_contexts
        cs = samples.formats[self.fmt]
        self.contexts = {"train": cs.contexts["train"], "test": cs.contexts["test"][:, :max_contexts]}
        self.true_test_names = [str(samples.labels[i]) for i in samples.split_labels["test"]]
        self.noisy_train_names = list(noisy_train_labels)
        self.variant_owner = cs.variants["test"].owner
        self._variants = cs.variants["test"]
        self.tables = cs

    def variant_contexts(self) -> np.ndarray:
        """The test samples' renaming variants as extraction-table context rows."""
        v = self._variants
        rows = self.contexts["test"][v.owner].copy()
        keep = v.occ_ctx < rows.shape[1]
        rows[v.occ_var[keep], v.occ_ctx[keep], v.occ_side[keep] * 2] = v.token[v.occ_var[keep]]
        return rows


class Code2VecRunner(MethodNameRunner):
    fmt = "c2v"

    def __init__(self, samples, noisy_train_labels, max_contexts, device, config: code2vec.Code2VecConfig):
        super().__init__(samples, noisy_train_labels, max_contexts, device)
        train = self.contexts["train"][:, :max_contexts]
        self.token_map = _id_map(len(self.tables.tokens), np.concatenate([train[..., 0].ravel(), train[..., 2].ravel()]))
        self.path_map = _id_map(len(self.tables.paths), train[..., 1].ravel())
        self.names = [OOV] + sorted(set(noisy_train_labels))
        self.name_id = name_id = {n: i for i, n in enumerate(self.names)}
        encoded_train = self.encode(train)
        # As the original reader: training drops samples without a valid context.
        self.train_kept = np.flatnonzero((encoded_train != 0).any(-1).any(-1).numpy())
        self.inputs = {
            "train": encoded_train[self.train_kept],
            "test": self.encode(self.contexts["test"]),
            "variants": self.encode(self.variant_contexts()),
        }
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

    def encode(self, ctx: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.stack(
            [self.token_map[ctx[..., 0]], self.path_map[ctx[..., 1]], self.token_map[ctx[..., 2]]], axis=-1))  # fmt: skip

    def train_loss(self, idx: torch.Tensor) -> torch.Tensor:
        return self.model.loss(self.inputs["train"][idx].to(self.device), self.labels["train"][idx].to(self.device)).mean()

    @torch.no_grad()
    def measure(self, split: str, batch_size: int):
        """Per-sample (loss or None, score, predicted name or None); dropout off. The prediction is
        the first possible name among the top-k (code2vec); score = its softmax probability over
        the whole target vocabulary (the paper's formula)."""
        self.model.eval()
        inputs, labels = self.inputs[split], self.labels.get(split)
        losses, scores, predictions = [], [], []
        for start in range(0, len(inputs), batch_size):
            logits = self.model(inputs[start : start + batch_size].to(self.device))
            top = logits.topk(min(self.model.config.top_k, logits.shape[-1]), dim=-1).indices.cpu()
            first = [metrics.first_possible_name(self.names[i] for i in row) for row in top.tolist()]
            ids = torch.tensor([self.name_id[n] if n else 0 for n in first], device=logits.device)
            scores.append(torch.softmax(logits, -1).gather(1, ids[:, None]).squeeze(1).cpu())
            predictions += first
            if labels is not None:
                y = labels[start : start + batch_size].to(self.device)
                losses.append(torch.nn.functional.cross_entropy(logits, y, reduction="none").cpu())
        return (torch.cat(losses).numpy() if losses else None), _cat(scores), predictions

    @staticmethod
    def f1(true, predicted) -> metrics.F1:
        return metrics.subtoken_f1(true, predicted)


class Code2SeqRunner(MethodNameRunner):
    fmt = "c2s"

    def __init__(self, samples, noisy_train_labels, max_contexts, device, config: code2seq.Code2SeqConfig):
        super().__init__(samples, noisy_train_labels, max_contexts, device)
        # The attention counts every sample's padding up to config.max_contexts slots (MAX_CONTEXTS).
        self.config = config = dataclasses.replace(config, max_contexts=max_contexts)
        tokens, paths = self.tables.tokens, self.tables.paths
        train = self.contexts["train"]
        used_tokens = np.unique(np.concatenate([train[..., 0].ravel(), train[..., 2].ravel()]))
        used_paths = np.unique(train[..., 1].ravel())
        subtokens = sorted({p for t in tokens[used_tokens[used_tokens >= 0]] for p in t.split("|")})
        nodes = sorted({p for t in paths[used_paths[used_paths >= 0]] for p in t.split("|")})
        sub_id = {s: i + len(code2seq.SUBTOKEN_SPECIALS) for i, s in enumerate(subtokens)}
        node_id = {s: i + len(code2seq.NODE_SPECIALS) for i, s in enumerate(nodes)}
        self.targets = list(code2seq.TARGET_SPECIALS) + sorted({p for n in noisy_train_labels for p in n.split("|")})
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
        self.model = code2seq.Code2Seq(len(sub_id) + 2, len(node_id) + 2, len(self.targets), config).to(device)
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

    def train_loss(self, idx: torch.Tensor) -> torch.Tensor:
        ctx = self._sample_contexts(self.inputs["train"][idx])
        target = self.labels["train"][idx].to(self.device)
        # The original minimises the per-sample SUM of step losses averaged over the batch.
        return self.model(*self._batch(ctx), target, reduction="sum").mean()

    @torch.no_grad()
    def measure(self, split: str, batch_size: int):
        """Per-sample (loss or None, score, predicted name or None). Training samples are measured
        on their first max_contexts stored contexts (a fixed uniform subset). Loss = mean per-step
        cross-entropy; score = mean top-1 probability over the predicted steps (the study).

        Predictions are what the original's evaluation gives with `batch_size` samples a batch in
        order: every decoded step's sub-token (after the end token too) until the batch's last
        sequence has ended, less <UNK>/<PAD>/</S>. Computed faster, exactly: samples of similar
        width are decoded together to the full length, each batch cut after its widest sample's
        last valid context (the model counts the cut slots as padding, as the original's 200
        slots), then `cut_like_dynamic_decode` applies the original's batches (58 % of the slots
        on jdk-top10 are padding; up to floating-point summation order).
        """
        self.model.eval()
        inputs, labels = self.inputs[split][:, : self.max_contexts], self.labels.get(split)
        slots = torch.arange(1, inputs.shape[1] + 1)
        span = ((inputs[..., 1] >= 0) * slots).amax(1) if len(inputs) else slots[:0]
        order = torch.argsort(span, stable=True)
        losses, scores = torch.zeros(len(inputs)), torch.zeros(len(inputs))
        ids = torch.zeros(len(inputs), self.config.max_target_parts + 1, dtype=torch.long)
        for start in range(0, len(inputs), batch_size):
            idx = order[start : start + batch_size]
            batch = self._batch(inputs[idx, : max(int(span[idx].max()), 1)])
            if labels is not None:
                decoded, score, loss = self.model.greedy_and_loss(*batch, labels[idx].to(self.device), full=True)
                losses[idx] = loss.float().cpu()
            else:
                decoded, score = self.model.greedy(*batch, full=True)
            ids[idx], scores[idx] = decoded.cpu(), score.float().cpu()
        ids = code2seq.cut_like_dynamic_decode(ids, batch_size)
        predictions = [self._name(row) for row in ids.tolist()]
        return (losses.numpy() if labels is not None else None), scores.numpy(), predictions

    def _name(self, ids: list[int]) -> str | None:
        return "|".join(code2seq.predicted_subtokens(ids, self.targets)) or None

    @staticmethod
    def f1(true, predicted) -> metrics.F1:
        return metrics.subtoken_f1_code2seq(true, predicted, ignore=code2seq.FILTERED_TARGETS)


def _cat(xs: list[torch.Tensor]) -> np.ndarray:
    return torch.cat(xs).numpy() if xs else np.zeros(0)


RUNNERS = {"code2vec": Code2VecRunner, "code2seq": Code2SeqRunner}
