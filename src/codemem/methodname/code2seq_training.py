"""code2seq's training (codemem.task.Training): `.c2s` contexts; the name is a sequence of sub-tokens
decoded greedily; code2seq's F1; 200 of up to 1,000 stored contexts sampled afresh for every step."""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch

from codemem import metrics
from codemem.methodname import code2seq, code2seq_fast
from codemem.methodname.name_training import MethodNameTraining, _rows, _vocabulary


class Code2SeqTraining(MethodNameTraining):
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
        model_code = {"fast": code2seq_fast, "reference": code2seq}[self.implementation]
        self.model = model_code.Code2Seq(len(sub_id) + 2, len(node_id) + 2, len(self.targets), config,
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

    def train_losses(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ctx = self._sample_contexts(self.inputs["train"][idx])
        target = self.labels["train"][idx].to(self.device)
        # The original minimises the per-sample SUM of step losses averaged over the batch. Each step's
        # masked cross-entropy and the teacher-forced argmax (`outputs.sample_id`: dropout on, this
        # step's 200 sampled contexts) give the study's in-step records: its per-sample loss
        # (`code2seq.study_step_loss`, over the first k steps) and its training prediction. `clean`
        # logs the loss averaged over the target's own steps (its sub-tokens and the end token).
        step_losses, predicted = self.model(*self._batch(ctx), target, reduction="steps")
        total = step_losses.sum(1)
        if self.study:
            per_sample = code2seq.study_step_loss(step_losses.detach(), predicted)
        else:
            per_sample = total / code2seq.target_step_mask(target).sum(1)
        return total.mean(), per_sample, predicted

    def prediction_shape(self) -> tuple[int, ...]:
        return (self.config.max_target_parts + 1,)

    def in_step_names(self, ids: np.ndarray) -> list[str | None]:
        """Every step's argmax less <UNK>/<PAD>/</S> (`Common.filter_impossible_names`), as the
        patch's `update_correct_predictions` logs it; None when nothing is left."""
        return ["|".join(code2seq.predicted_subtokens(row, self.targets)) or None for row in ids.tolist()]

    @torch.no_grad()
    def measure_split(self, split: str, batch_size: int, rows: np.ndarray | None = None,
                      margins_out: np.ndarray | None = None):  # no margin of a sequence: left NaN
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
