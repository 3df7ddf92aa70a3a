"""code2vec, fast: the same model as code2vec.py (the readable reference), computed for less.

`train.implementation: fast` (the default) trains this one. The differences are of cost only, and
tests/test_reference_models.py holds it to the reference (values and gradients, dropout off):
- only the valid contexts are embedded and transformed (about half of a batch is padding) and the
  code vector is an index_add_ of their weighted rows, not a bmm over the whole (B, C) grid;
- dropout is ByteDropout (eight decisions from one 64-bit random number), not nn.Dropout: the same
  distribution, other draws;
- `forward(out=)` writes the logits into a buffer the measurement reuses;
- on CPU the optimizer is BlockwiseAdam, code2vec.TF1Adam bit for bit a block of rows at a time.

Parameters, their names and shapes, and the initialisation (the same draws) are the reference's, so a
state_dict loads into either.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from codemem.methodname import code2vec
from codemem.methodname.code2vec import _fan_out_uniform_, _glorot_uniform_
from codemem.methodname.dropout import ByteDropout
from codemem.model_configs import Code2VecConfig


class Code2Vec(nn.Module):
    def __init__(self, n_tokens: int, n_paths: int, n_targets: int, config: Code2VecConfig = Code2VecConfig()):
        super().__init__()
        self.config = config
        d = config.code_vector_size
        self.token_embedding = nn.Embedding(n_tokens, config.token_embedding_size)
        self.path_embedding = nn.Embedding(n_paths, config.path_embedding_size)
        self.target_embedding = nn.Embedding(n_targets, d)
        self.transform = nn.Parameter(torch.empty(d, d))  # TRANSFORM, no bias
        self.attention = nn.Parameter(torch.empty(d, 1))  # ATTENTION vector
        self.dropout = ByteDropout(1.0 - config.dropout_keep)
        for emb in (self.token_embedding, self.path_embedding, self.target_embedding):
            _fan_out_uniform_(emb.weight, emb.weight.shape[-1])  # TF: fan_out = last dim
        # TRANSFORM and ATTENTION get no initializer in the original, so glorot_uniform. For the square
        # TRANSFORM that is FAN_OUT's limit too; for ATTENTION (384 x 1) it is sqrt(6/385) ~ 0.125, not
        # FAN_OUT's sqrt(3) ~ 1.73, and that decides how fast code2vec memorizes noisy labels
        # (measured: train F1 0.92 against 0.38 after 7 epochs at noise 1.0 on jdk-top10).
        _glorot_uniform_(self.transform, d, d)
        _glorot_uniform_(self.attention, d, 1)

    def code_vectors(self, contexts: torch.Tensor) -> torch.Tensor:
        """contexts: (B, C, 3) long [source token, path, target token] -> code vectors (B, 384)."""
        source, path, target = contexts.unbind(-1)
        mask = (source != 0) | (path != 0) | (target != 0)
        # Only valid contexts are embedded and transformed: half of a batch is padding on average
        # and the 384x384 transform dominates the cost. Padding gets zero attention either way,
        # so this is the same function as transforming the full (B, C) grid.
        batch_index, _ = mask.nonzero(as_tuple=True)
        context = torch.cat(
            [self.token_embedding(source[mask]), self.path_embedding(path[mask]), self.token_embedding(target[mask])],
            dim=-1,
        )
        combined = torch.tanh(self.dropout(context) @ self.transform)  # (valid contexts, 384)
        scores = torch.full(mask.shape, float("-inf"), dtype=combined.dtype, device=combined.device)
        scores[mask] = (combined @ self.attention).squeeze(-1)
        # A method with no valid context would give NaNs; its weights become zeros instead.
        weights = torch.nan_to_num(torch.softmax(scores, dim=-1), nan=0.0)
        vectors = torch.zeros(mask.shape[0], combined.shape[-1], dtype=combined.dtype, device=combined.device)
        return vectors.index_add_(0, batch_index, weights[mask].unsqueeze(-1) * combined)

    def forward(self, contexts: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Name logits (B, n_targets), written into `out` if given (the same product)."""
        return torch.matmul(self.code_vectors(contexts), self.target_embedding.weight.T, out=out)

    def loss(self, contexts: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per-sample cross-entropy (B,)."""
        return F.cross_entropy(self(contexts), labels, reduction="none")


class BlockwiseAdam(code2vec.TF1Adam):
    """code2vec.TF1Adam (TF's Adam update) applied a block of rows at a time. Every operation is
    elementwise, so the numbers are the same bit for bit (tests/test_model_code2vec.py), and the state
    and its checkpoints are Adam's. The whole-tensor update makes a temporary the size of the largest
    parameter (sqrt(v) + epsilon): at Java-Small's size the 911k-path embedding, 467 MB on top of the
    weights, the gradients and both moments, at the peak of the run's memory."""

    def __init__(self, params, lr: float, eps: float, block_rows: int = 8192):
        super().__init__(params, lr=lr, eps=eps)
        self.block_rows = block_rows

    def update(self, param, grad, exp_avg, exp_avg_sq, beta1, beta2, lr_t, eps) -> None:
        blocks = (t.split(self.block_rows) for t in (param, grad, exp_avg, exp_avg_sq))
        for block in zip(*blocks, strict=True):
            code2vec.TF1Adam.update(*block, beta1, beta2, lr_t, eps)


def make_optimizer(model: Code2Vec) -> torch.optim.Optimizer:
    """The original's Adam (code2vec.TF1Adam); on CPU, blockwise (the same numbers, ~0.9 GiB less at
    Java-Small's size)."""
    config = model.config
    on_cpu = all(p.device.type == "cpu" for p in model.parameters())
    adam = BlockwiseAdam if on_cpu else code2vec.TF1Adam
    return adam(model.parameters(), lr=config.learning_rate, eps=config.adam_epsilon)
