"""code2seq's parameters as the original TF graph's variables (tech-srl/code2seq `model.py`): their
names, shapes and values in TF's layout, for the tests that hold the model to the original
(tests/test_model_code2seq.py). Either implementation (code2seq.py, code2seq_fast.py): the same
parameters."""

from __future__ import annotations

import math

import torch
from torch import nn

from codemem.methodname.code2seq import DECODER_CELL, TF_FORGET_BIAS, lstm_weights
from codemem.model_configs import Code2SeqConfig


def original_variable_shapes(
    subtoken_vocab_size: int,
    node_vocab_size: int,
    target_vocab_size: int,
    config: Code2SeqConfig = Code2SeqConfig(),
) -> dict[str, tuple[int, ...]]:
    """The original TF graph's trainable variables (names as in its checkpoints) and their shapes."""
    emb, half, dec = config.embedding_size, config.rnn_size // 2, config.decoder_size
    shapes: dict[str, tuple[int, ...]] = {
        "model/SUBTOKENS_VOCAB": (subtoken_vocab_size, emb),
        "model/TARGET_WORDS_VOCAB": (target_vocab_size, emb),
        "model/NODES_VOCAB": (node_vocab_size, emb),
    }
    for direction in ("fw", "bw"):  # LSTMCell(RNN_SIZE / 2): kernel [input + hidden, 4 hidden]
        shapes[f"model/bidirectional_rnn/{direction}/lstm_cell/kernel"] = (emb + half, 4 * half)
        shapes[f"model/bidirectional_rnn/{direction}/lstm_cell/bias"] = (4 * half,)
    shapes["model/dense/kernel"] = (2 * emb + config.rnn_size, dec)
    shapes["model/memory_layer/kernel"] = (dec, dec)
    # The decoder's input is [target embedding; attention], then the hidden state.
    shapes[f"{DECODER_CELL}/kernel"] = (emb + dec + dec, 4 * dec)
    shapes[f"{DECODER_CELL}/bias"] = (4 * dec,)
    shapes["model/decoder/attention_wrapper/attention_layer/kernel"] = (2 * dec, dec)
    shapes["model/decoder/dense/kernel"] = (dec, target_vocab_size)
    return shapes


def original_parameter_count(
    subtoken_vocab_size: int,
    node_vocab_size: int,
    target_vocab_size: int,
    config: Code2SeqConfig = Code2SeqConfig(),
) -> int:
    shapes = original_variable_shapes(subtoken_vocab_size, node_vocab_size, target_vocab_size, config)
    return sum(math.prod(s) for s in shapes.values())


def original_variables(model: nn.Module) -> dict[str, torch.Tensor]:
    """A Code2Seq's parameters as the original's variables, in TF layout ([in, out] kernels, LSTM gates
    i, j, f, o, one bias without the constant forget_bias), detached."""
    out = {
        "model/SUBTOKENS_VOCAB": model.subtoken_embedding.weight,
        "model/TARGET_WORDS_VOCAB": model.target_embedding.weight,
        "model/NODES_VOCAB": model.node_embedding.weight,
    }
    for scope, module, suffix in lstm_weights(model):
        w_ih, w_hh, b_ih, b_hh = (
            getattr(module, n + suffix) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        )
        k_i, k_f, k_g, k_o = torch.cat([w_ih, w_hh], dim=1).t().chunk(4, dim=1)
        b_i, b_f, b_g, b_o = (b_ih + b_hh).chunk(4)
        out[f"{scope}/kernel"] = torch.cat([k_i, k_g, k_f, k_o], dim=1)
        out[f"{scope}/bias"] = torch.cat([b_i, b_g, b_f - TF_FORGET_BIAS, b_o])
    out["model/dense/kernel"] = model.context_dense.weight.t()
    out["model/memory_layer/kernel"] = model.memory_layer.weight.t()
    out["model/decoder/attention_wrapper/attention_layer/kernel"] = model.attention_layer.weight.t()
    out["model/decoder/dense/kernel"] = model.projection.weight.t()
    return {name: value.detach() for name, value in out.items()}


def parameter_shape_mapping(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """A Code2Seq's parameters expressed as the original's variable names and shapes."""
    return {name: tuple(value.shape) for name, value in original_variables(model).items()}
