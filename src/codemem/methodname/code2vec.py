"""code2vec (Alon et al., POPL 2019) in PyTorch, with the original default configuration: the reference.

Written as tech-srl/code2vec's `tensorflow_model.py` computes it, step by step; code2vec_fast.py is
the same model computed for less (the default, `train.implementation: fast`), held to this one by
tests/test_reference_models.py.

A method is a bag of path-contexts (source terminal, AST path, target terminal). Each context is
embedded as [E_tok[src]; E_path[path]; E_tok[tgt]] (3 x 128 = 384), dropped out (keep 0.75),
combined by a bias-free dense layer with tanh, and the contexts are pooled by soft attention into a
384-d code vector, whose dot products with the target embeddings are the name logits (no bias).
Token and path vocabularies share index 0 for PAD and OOV; target index 0 is OOV. A context whose
three indices are all 0 is masked out of the attention, as in the original reader.

Trainable parameters: 128|tok| + 128|path| + 384|target| + 384*384 + 384 (the study's Table 1).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from codemem.model_configs import Code2VecConfig


def _fan_out_uniform_(weight: torch.Tensor, fan_out: int) -> None:
    """The original's embedding initialiser: variance scaling, factor 1.0, FAN_OUT, uniform."""
    limit = math.sqrt(3.0 / fan_out)
    nn.init.uniform_(weight, -limit, limit)


def _glorot_uniform_(weight: torch.Tensor, fan_in: int, fan_out: int) -> None:
    """TF1's default for a variable created without an initializer (TRANSFORM and ATTENTION)."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    nn.init.uniform_(weight, -limit, limit)


class Code2Vec(nn.Module):
    """`Code2VecModel` of tensorflow_model.py: its five variables, `_calculate_weighted_contexts` and
    the logits of `_build_tf_training_graph` / `_build_tf_test_graph`."""

    def __init__(
        self, n_tokens: int, n_paths: int, n_targets: int, config: Code2VecConfig = Code2VecConfig()
    ):
        super().__init__()
        self.config = config
        d = config.code_vector_size
        self.token_embedding = nn.Embedding(n_tokens, config.token_embedding_size)  # WORDS_VOCAB
        self.path_embedding = nn.Embedding(n_paths, config.path_embedding_size)  # PATHS_VOCAB
        self.target_embedding = nn.Embedding(n_targets, d)  # TARGET_WORDS_VOCAB
        self.transform = nn.Parameter(torch.empty(d, d))  # TRANSFORM, no bias
        self.attention = nn.Parameter(torch.empty(d, 1))  # ATTENTION vector
        self.dropout = nn.Dropout(1.0 - config.dropout_keep)  # tf.nn.dropout(rate=1 - DROPOUT_KEEP_RATE)
        # The vocabularies: variance_scaling_initializer(factor=1.0, mode='FAN_OUT', uniform=True),
        # fan_out being a variable's last dimension.
        for emb in (self.token_embedding, self.path_embedding, self.target_embedding):
            _fan_out_uniform_(emb.weight, emb.weight.shape[-1])
        # TRANSFORM and ATTENTION get no initializer in the original, so glorot_uniform. For the square
        # TRANSFORM that is FAN_OUT's limit too; for ATTENTION (384 x 1) it is sqrt(6/385) ~ 0.125, not
        # FAN_OUT's sqrt(3) ~ 1.73, and that decides how fast code2vec memorizes noisy labels
        # (measured: train F1 0.92 against 0.38 after 7 epochs at noise 1.0 on jdk-top10).
        _glorot_uniform_(self.transform, d, d)
        _glorot_uniform_(self.attention, d, 1)

    def code_vectors(self, contexts: torch.Tensor) -> torch.Tensor:
        """contexts: (B, C, 3) long [source token, path, target token] -> code vectors (B, 384).

        `_calculate_weighted_contexts`: embed and concatenate, dropout, tanh(. TRANSFORM), attention
        logits (. ATTENTION) with log(valid mask) added, softmax over the contexts, weighted sum.
        """
        source, path, target = contexts.unbind(-1)
        # The reader's valid mask: a context is padding when its three indices are all 0 (PAD).
        mask = (source != 0) | (path != 0) | (target != 0)  # (B, C)
        context_embed = torch.cat(
            [self.token_embedding(source), self.path_embedding(path), self.token_embedding(target)], dim=-1
        )  # (B, C, 384)
        context_embed = self.dropout(context_embed)
        combined = torch.tanh(context_embed @ self.transform)  # (B, C, 384)
        weights = combined @ self.attention  # (B, C, 1)
        # `+ log(mask)`: padding gets weight exp(-inf) = 0.
        weights = weights.masked_fill(~mask.unsqueeze(-1), float("-inf"))
        attention = torch.softmax(weights, dim=1)
        # A method with no valid context (every weight -inf) would give NaNs: zeros instead. The
        # original's reader never passes one to training.
        attention = torch.nan_to_num(attention, nan=0.0)
        return torch.bmm(attention.transpose(1, 2), combined).squeeze(1)  # sum over C of weight x context

    def forward(self, contexts: torch.Tensor) -> torch.Tensor:
        """Name logits (B, n_targets): `tf.matmul(code_vectors, TARGET_WORDS_VOCAB, transpose_b=True)`."""
        return self.code_vectors(contexts) @ self.target_embedding.weight.T

    def loss(self, contexts: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per-sample cross-entropy (B,): `sparse_softmax_cross_entropy_with_logits`; the original
        minimises their sum over the batch divided by the batch size, i.e. `.mean()`."""
        return F.cross_entropy(self(contexts), labels, reduction="none")


class TF1Adam(torch.optim.Adam):
    """Adam as TensorFlow computes it (`training_ops` ApplyAdam, which `tf.compat.v1.train.AdamOptimizer`
    runs): lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t), m += (g - m)(1 - beta1), v += (g^2 - v)(1 - beta2),
    var -= lr_t m / (sqrt(v) + epsilon). TF adds epsilon to sqrt(v) before the bias correction (the
    "epsilon hat" of Kingma & Ba, sec. 2), torch's Adam after it: in TF's terms torch's epsilon is
    epsilon sqrt(1 - beta2^t), 32x smaller at t = 1, 3x at t = 100. That matters for code2vec: an
    embedding row a batch barely touches has gradients near epsilon, and torch's Adam moves it up to
    that much further than TF does (repro/code2vec_step_parity.py: after 30 steps on jdk-top10 the
    weights under torch's Adam are up to 28 % of their movement from the original's, under this 1e-4).
    The state is torch's Adam's (`step`, `exp_avg`, `exp_avg_sq`); no weight decay, AMSGrad or maximize."""

    def __init__(self, params, lr: float, eps: float):
        super().__init__(params, lr=lr, eps=eps, foreach=False)

    @torch.no_grad()
    def step(self, closure=None):
        if closure is not None:
            raise ValueError(f"{type(self).__name__}.step takes no closure")
        for group in self.param_groups:
            if group["weight_decay"] or group["amsgrad"] or group["maximize"]:
                raise ValueError(f"{type(self).__name__} implements Adam without weight decay, AMSGrad or maximize")
            (beta1, beta2), lr, eps = group["betas"], group["lr"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:  # as Adam._init_group makes it
                    state["step"] = torch.tensor(0.0, dtype=torch.get_default_dtype())
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t = state["step"].item()
                lr_t = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
                self.update(p, p.grad, state["exp_avg"], state["exp_avg_sq"], beta1, beta2, lr_t, eps)

    @staticmethod
    def update(param, grad, exp_avg, exp_avg_sq, beta1: float, beta2: float, lr_t: float, eps: float) -> None:
        """One parameter's update in place, elementwise."""
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        param.addcdiv_(exp_avg, exp_avg_sq.sqrt().add_(eps), value=-lr_t)


def make_optimizer(model: Code2Vec) -> torch.optim.Optimizer:
    """`tf.compat.v1.train.AdamOptimizer()` of `_build_tf_training_graph`: its defaults (beta 0.9 and
    0.999, epsilon 1e-8, learning rate 1e-3, as Code2VecConfig holds them) and its update."""
    config = model.config
    return TF1Adam(model.parameters(), lr=config.learning_rate, eps=config.adam_epsilon)


def expected_parameter_count(
    n_tokens: int, n_paths: int, n_targets: int, config: Code2VecConfig = Code2VecConfig()
) -> int:
    """The study's formula: 128|tok| + 128|path| + 384|target| + 384*384 + 384."""
    d = config.code_vector_size
    tokens, paths = config.token_embedding_size * n_tokens, config.path_embedding_size * n_paths
    return tokens + paths + d * n_targets + d * d + d
