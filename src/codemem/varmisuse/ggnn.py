"""Gated graph neural network (GGNN) for VarMisuse, after `models/ggnn.py` of VHellendoorn/ICLR20-Great.

`time_steps` [3, 1, 3, 1] means four distinct layers, run 3, 1, 3 and 1 times (8 propagation steps).
One step of layer l: every edge of type t from u to v sends W[l, t] h_u + b[l, t] to v; the messages
arriving at a node are summed; layers listed in `residuals` ({1: [0], 3: [0, 1]}) also receive the
states of earlier layers (index 0 = the input embeddings, index i = the output of layer i - 1),
concatenated before the messages; a GRU cell (Keras `GRUCell`, reset_after=True, which is what
torch.nn.GRUCell computes) updates the node state from that input. Dropout follows every step.
The input embeddings carry sinusoidal positions, added by the shared model as in the original.
"""


import torch
from torch import nn

from codemem.model_configs import GGNNConfig
from codemem.varmisuse.pointer_model import VarMisuseModel, glorot_


class GGNNLayer(nn.Module):
    """Per-edge-type linear messages, summed per receiving node, then a GRU update."""

    def __init__(self, config: GGNNConfig, num_residuals: int):
        super().__init__()
        h, k = config.hidden, config.num_edge_types
        self.add_type_bias = config.add_type_bias
        # The original draws both the type transforms and their biases from N(0, hidden^-0.5).
        self.type_weights = nn.Parameter(torch.randn(k, h, h) * h**-0.5)
        self.type_biases = nn.Parameter(torch.randn(k, h) * h**-0.5)
        self.gru = nn.GRUCell(h * (1 + num_residuals), h)
        # Keras GRUCell defaults: glorot_uniform input kernel (fans = input dim, 3 * hidden), orthogonal
        # recurrent kernel, zero biases.
        glorot_(self.gru.weight_ih, self.gru.input_size, 3 * h)
        nn.init.orthogonal_(self.gru.weight_hh)
        nn.init.zeros_(self.gru.bias_ih)
        nn.init.zeros_(self.gru.bias_hh)

    def forward(self, states: torch.Tensor, edge_groups: list, residuals: list[torch.Tensor]) -> torch.Tensor:
        """states (B, T, H); edge_groups from `partition_edges`; residuals: earlier layers' states."""
        B, T, H = states.shape
        flat = states.reshape(B * T, H)
        messages = torch.zeros_like(flat)
        if edge_groups:
            sent = []
            for edge_type, src, _ in edge_groups:
                msg = flat[src] @ self.type_weights[edge_type]
                sent.append(msg + self.type_biases[edge_type] if self.add_type_bias else msg)
            # Sum the messages arriving at each node, all types in one scatter: on CPU one
            # accumulating index_put is several times faster than an index_add per edge type.
            receivers = torch.cat([dst for _, _, dst in edge_groups])
            messages = messages.index_put((receivers,), torch.cat(sent), accumulate=True)
        gru_input = torch.cat([r.reshape(B * T, H) for r in residuals] + [messages], dim=-1)
        return self.gru(gru_input, flat).view(B, T, H)


def partition_edges(edges: torch.Tensor, seq_len: int) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
    """Edge rows [batch, type, from, to] -> one (type, from_nodes, to_nodes) group per edge type present,
    with node ids in the flattened (B * T) batch. Done once per forward, like the original's
    dynamic_partition; absent types are skipped, so their transforms (and biases) are not applied."""
    batch, edge_type, src, dst = edges.unbind(dim=1)
    src, dst = batch * seq_len + src, batch * seq_len + dst
    groups = []
    for t in torch.unique(edge_type).tolist():
        sel = edge_type == t
        groups.append((t, src[sel], dst[sel]))
    return groups


class GGNN(VarMisuseModel):
    """VarMisuse GGNN: time steps [3, 1, 3, 1], residuals {1: [0], 3: [0, 1]}, 24 edge types, GRU updates."""

    def __init__(self, config: GGNNConfig | None = None):
        config = config if config is not None else GGNNConfig()
        super().__init__(config)
        # YAML may give string keys ("1": [0]), as the original's later config.yml does.
        self.residuals = {int(k): tuple(v) for k, v in config.residuals.items()}
        self.time_steps = tuple(config.time_steps)
        self.layers = nn.ModuleList(
            GGNNLayer(config, len(self.residuals.get(i, ()))) for i in range(len(self.time_steps))
        )
        self.dropout = nn.Dropout(config.dropout)

    def encode(self, states, token_mask, edges):
        # Padded positions are updated too, but no edge touches them, so they never reach real tokens.
        edge_groups = partition_edges(edges, states.size(1))
        layer_states = [states]
        for layer_no, (layer, steps) in enumerate(zip(self.layers, self.time_steps)):
            residuals = [layer_states[i] for i in self.residuals.get(layer_no, ())]
            for step in range(steps):
                new_states = self.dropout(layer(layer_states[-1], edge_groups, residuals))
                # A layer's first step adds its output to the stack; repeated steps overwrite it.
                if step == 0:
                    layer_states.append(new_states)
                else:
                    layer_states[-1] = new_states
        return layer_states[-1]
