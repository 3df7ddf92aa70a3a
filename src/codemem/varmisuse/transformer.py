"""Transformer encoder for VarMisuse, after `models/great_transformer.py` of VHellendoorn/ICLR20-Great
(the `transformer` configuration: the same code with no edge bias).

Per layer (pre-LN):  x += Dropout(Attention(LN(x)));  x += Dropout(W2 Dropout(ReLU(W1 LN(x) + b1)) + b2)
and a final LayerNorm. Attention projections have no bias; the feed-forward Dense layers do. The original
LayerNorm uses epsilon 1e-3, and there is no dropout on attention probabilities.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from codemem.model_configs import TransformerConfig
from codemem.varmisuse.pointer_model import VarMisuseModel, glorot_


class SelfAttention(nn.Module):
    """Multi-head self-attention with key masking (`AttentionLayer` of the original).

    Subclasses may add a per-(query, key) bias to the raw scores through `edge_bias` (GREAT does)."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.num_heads = config.num_heads
        self.head_dim = config.attention_dim // config.num_heads
        h, a = config.hidden, config.attention_dim
        self.query = nn.Linear(h, a, bias=False)
        self.key = nn.Linear(h, a, bias=False)
        self.value = nn.Linear(h, a, bias=False)
        self.out = nn.Linear(a, h, bias=False)
        # The original stores q/k/v as (hidden, heads, head_dim) and o as (heads, head_dim, hidden) and
        # initialises them with Keras glorot_uniform, whose fans for 3-d shapes multiply in the leading dims.
        for proj in (self.query, self.key, self.value):
            glorot_(proj.weight, fan_in=config.num_heads * h, fan_out=self.head_dim * h)
        glorot_(self.out.weight, fan_in=self.head_dim * config.num_heads, fan_out=h * config.num_heads)

    def edge_bias(self, keys: torch.Tensor, edges: torch.Tensor) -> torch.Tensor | None:
        """Extra raw scores (B, heads, T_query, T_key), or None; plain Transformers ignore the edges."""
        return None

    def forward(self, x: torch.Tensor, token_mask: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape

        def heads(t):  # (B, T, attention_dim) -> (B, heads, T, head_dim)
            return t.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        scores = q @ k.transpose(-2, -1)
        bias = self.edge_bias(k, edges)
        if bias is not None:
            scores = scores + bias  # added before scaling, as in the original
        scores = scores / math.sqrt(self.head_dim)
        key_mask = token_mask[:, None, None, :]  # only keys are masked; padded queries are never read
        scores = scores.masked_fill(~key_mask, torch.finfo(scores.dtype).min)
        alpha = scores.softmax(dim=-1) * key_mask  # the original re-applies the mask after the softmax
        context = (alpha @ v).transpose(1, 2).reshape(B, T, -1)
        return self.out(context)


class Block(nn.Module):
    """One pre-LN layer: attention sub-layer and ReLU feed-forward sub-layer, both residual."""

    def __init__(self, config: TransformerConfig, attention: nn.Module):
        super().__init__()
        self.ln_attn = nn.LayerNorm(config.hidden, eps=1e-3)
        self.attn = attention
        self.ln_ff = nn.LayerNorm(config.hidden, eps=1e-3)
        self.ff_1 = nn.Linear(config.hidden, config.ff_dim)
        self.ff_2 = nn.Linear(config.ff_dim, config.hidden)
        for ff in (self.ff_1, self.ff_2):  # Keras Dense defaults: glorot_uniform kernel, zero bias
            glorot_(ff.weight, ff.in_features, ff.out_features)
            nn.init.zeros_(ff.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, token_mask, edges):
        x = x + self.dropout(self.attn(self.ln_attn(x), token_mask, edges))
        h = self.dropout(F.relu(self.ff_1(self.ln_ff(x))))
        return x + self.dropout(self.ff_2(h))


class Transformer(VarMisuseModel):
    """VarMisuse Transformer: 6 pre-LN layers, 8 heads, attention 512, FF 2048, final LayerNorm."""

    attention_class = SelfAttention  # GREAT swaps in its edge-biased attention

    def __init__(self, config: TransformerConfig | None = None):
        config = config if config is not None else TransformerConfig()
        super().__init__(config)
        self.layers = nn.ModuleList(
            Block(config, self.attention_class(config)) for _ in range(config.num_layers)
        )
        self.ln_out = nn.LayerNorm(config.hidden, eps=1e-3)

    def encode(self, states, token_mask, edges):
        for layer in self.layers:
            states = layer(states, token_mask, edges)
        return self.ln_out(states)
