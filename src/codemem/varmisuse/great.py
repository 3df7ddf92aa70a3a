"""GREAT (Graph-Relational Embedding Attention Transformer) for VarMisuse, after `models/great_transformer.py`
of VHellendoorn/ICLR20-Great (the `great` configuration, i.e. `bias_dim = num_edge_types`).

GREAT is the Transformer of `transformer.py` plus, in every layer, a learned scalar bias per edge type
in the attention: the edge type is embedded in the per-head dimension (24 x 64) and projected to a scalar
(64 x 1); the scalar b scales the key in the score of the edge's (query, key) pair, (q + b) . k, which is
computed as q . k + b * sum(k). The bias is shared by all heads of a layer; parallel edges add up.

Direction: the original reverses every edge before the attention, so an edge from -> to lets the
query at `to` attend to the key at `from` (the same direction in which a GGNN passes messages).
"""


import torch
from torch import nn

from codemem.model_configs import GREATConfig
from codemem.varmisuse.pointer_model import glorot_
from codemem.varmisuse.transformer import SelfAttention, Transformer, TransformerConfig


class EdgeBiasedAttention(SelfAttention):
    """Self-attention with GREAT's relational bias (the original `AttentionLayer` with `bias_dim` set)."""

    def __init__(self, config: TransformerConfig):
        super().__init__(config)
        self.bias_embs = nn.Parameter(torch.empty(config.num_edge_types, self.head_dim))
        self.bias_scalar = nn.Parameter(torch.empty(self.head_dim, 1))
        glorot_(self.bias_embs, config.num_edge_types, self.head_dim)
        glorot_(self.bias_scalar, self.head_dim, 1)

    def edge_bias(self, keys: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        B, _, T, _ = keys.shape
        batch, edge_type, src, dst = edges.unbind(dim=1)
        per_edge = (self.bias_embs[edge_type] @ self.bias_scalar).squeeze(-1)  # (E,) one scalar per edge
        # Scatter to [batch, query = to, key = from]; accumulate so that parallel edges (of different
        # types between the same tokens) add up, as tf.scatter_nd does.
        bias = keys.new_zeros(B, T, T).index_put((batch, dst, src), per_edge, accumulate=True)
        # (q + b) . k = q . k + b * sum(k): the scalar bias times each head's summed key at that position.
        return bias[:, None, :, :] * keys.sum(dim=-1)[:, :, None, :]


class GREAT(Transformer):
    """VarMisuse GREAT: the Transformer with a per-layer edge-type attention bias."""

    attention_class = EdgeBiasedAttention

    def __init__(self, config: TransformerConfig | None = None):
        super().__init__(config if config is not None else GREATConfig())
