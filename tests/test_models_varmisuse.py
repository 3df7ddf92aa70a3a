"""Tests for the VarMisuse models (Transformer, GREAT, GGNN) and their shared loss and accuracies."""

import math

import pytest
import torch

from codemem.task import count_trainable
from codemem.varmisuse import great_format
from codemem.varmisuse.ggnn import GGNN, GGNNConfig
from codemem.varmisuse.great import GREAT, GREATConfig
from codemem.varmisuse.pointer_model import (
    batch_accuracies,
    reduce_losses,
    sinusoidal_positions,
    varmisuse_losses,
    varmisuse_predictions,
)
from codemem.varmisuse.transformer import Transformer, TransformerConfig

# Small configurations for forward passes; the architecture is the same, only the sizes shrink.
SMALL = {"vocab_size": 50, "hidden": 32, "dropout": 0.0}
SMALL_MODELS = {
    "transformer": lambda: Transformer(
        TransformerConfig(**SMALL, num_layers=2, num_heads=4, attention_dim=32, ff_dim=64)
    ),
    "great": lambda: GREAT(GREATConfig(**SMALL, num_layers=2, num_heads=4, attention_dim=32, ff_dim=64)),
    "ggnn": lambda: GGNN(GGNNConfig(**SMALL)),
}


def tiny_batch(seed=0):
    """Two samples, 6 positions; the second sample has 2 padded positions. Edges only join real tokens."""
    g = torch.Generator().manual_seed(seed)
    subtokens = torch.randint(1, 50, (2, 6, 10), generator=g)
    subtokens[:, :, 3:] = 0  # at most 3 sub-tokens per token
    token_mask = torch.ones(2, 6, dtype=torch.bool)
    token_mask[1, 4:] = False
    subtokens[1, 4:] = 0
    edges = torch.tensor([[0, 0, 0, 1], [0, 1, 1, 0], [0, 14, 2, 5], [1, 3, 0, 3], [1, 7, 1, 2]])
    return subtokens, token_mask, edges


@pytest.mark.parametrize(
    "cls, expected", [(Transformer, 26_215_938), (GREAT, 26_225_538), (GGNN, 41_190_914)]
)
def test_table1_parameter_counts(cls, expected):
    torch.manual_seed(0)
    assert count_trainable(cls()) == expected


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_output_shape_and_padding_invariance(name):
    torch.manual_seed(0)
    model = SMALL_MODELS[name]().eval()
    subtokens, token_mask, edges = tiny_batch()
    logits = model(subtokens, token_mask, edges)
    assert logits.shape == (2, 6, 2)
    changed = subtokens.clone()
    changed[1, 4:, :3] = torch.tensor([7, 8, 9])  # ids at padded positions must not matter
    other = model(changed, token_mask, edges)
    torch.testing.assert_close(other[token_mask], logits[token_mask])


def test_full_size_forward_on_tiny_input():
    torch.manual_seed(0)
    subtokens, token_mask, edges = tiny_batch()
    assert GREAT().eval()(subtokens, token_mask, edges).shape == (2, 6, 2)


@pytest.mark.parametrize("name, uses_edges", [("transformer", False), ("great", True), ("ggnn", True)])
def test_edges_matter_only_for_relational_models(name, uses_edges):
    torch.manual_seed(0)
    model = SMALL_MODELS[name]().eval()
    subtokens, token_mask, edges = tiny_batch()
    with_edges = model(subtokens, token_mask, edges)
    without = model(subtokens, token_mask, edges[:0])
    assert (not torch.allclose(with_edges, without)) == uses_edges


def test_great_bias_goes_to_query_at_target_and_accumulates():
    torch.manual_seed(0)
    attn = SMALL_MODELS["great"]().layers[0].attn
    keys = torch.randn(1, 4, 3, 8)  # (B, heads, T, head_dim)
    edges = torch.tensor([[0, 2, 0, 1], [0, 5, 0, 1]])  # two edges 0 -> 1
    bias = attn.edge_bias(keys, edges)
    scalar = (attn.bias_embs[[2, 5]] @ attn.bias_scalar).sum()
    expected = torch.zeros(1, 4, 3, 3)
    expected[0, :, 1, 0] = scalar * keys[0, :, 0].sum(-1)  # query 1 (to), key 0 (from)
    torch.testing.assert_close(bias, expected)


def test_ggnn_messages_follow_edge_direction():
    torch.manual_seed(0)
    model = SMALL_MODELS["ggnn"]().eval()
    subtokens, token_mask, _ = tiny_batch()
    edge = torch.tensor([[0, 0, 2, 3]])  # 2 -> 3 in sample 0
    diff = (model(subtokens, token_mask, edge) - model(subtokens, token_mask, edge[:0])).abs().sum(-1)
    assert diff[0, 3] > 0 and diff[0, :3].sum() == 0 and diff[1].sum() == 0


def test_positions_and_edge_mapping_follow_the_original():
    pe = sinusoidal_positions(3, 4)
    assert pe[2, 0] == pytest.approx(math.sin(2.0)) and pe[2, 3] == pytest.approx(math.cos(2 / 10000**1.5))
    # Relation i forward as type 2i, its reverse as 2i + 1, reverses after all forward edges.
    assert great_format.loader_edges([[3, 5, 1, "enum_LAST_READ"], [0, 1, 9, "enum_SYNTAX"]]) == [
        (2, 3, 5),
        (14, 0, 1),
        (3, 5, 3),
        (15, 1, 0),
    ]


def hand_case():
    """Sample 0: buggy at 2, candidates {1, 2, 3}, targets {1, 3}. Sample 1: clean, position 3 padded."""
    logits = torch.zeros(2, 4, 2)
    logits[0, :, 0] = torch.tensor([0.0, 0.0, math.log(2), 0.0])  # location softmax [1, 1, 2, 1] / 5
    logits[0, :, 1] = torch.tensor([5.0, math.log(2), 0.0, math.log(2)])  # over candidates: [2, 1, 2] / 5
    logits[1, :, 0] = torch.tensor([math.log(3), 0.0, 0.0, 100.0])  # pad logit 100 must be masked
    logits[1, :, 1] = torch.tensor([0.0, 1.0, 2.0, 3.0])
    token_mask = torch.tensor([[True] * 4, [True, True, True, False]])
    has_bug = torch.tensor([True, False])
    error_location = torch.tensor([2, 0])
    targets = torch.tensor([[False, True, False, True], [False] * 4])
    candidates = torch.tensor([[False, True, True, True], [False, True, True, False]])
    return logits, token_mask, has_bug, error_location, targets, candidates


def test_losses_on_hand_computed_case():
    args = hand_case()
    loc, rep = varmisuse_losses(*args)
    torch.testing.assert_close(loc, torch.tensor([math.log(5 / 2), math.log(5 / 3)]))
    torch.testing.assert_close(rep, torch.tensor([math.log(5 / 4), 0.0]))
    total = reduce_losses(loc, rep, args[2])
    assert total.item() == pytest.approx((math.log(5 / 2) + math.log(5 / 3)) / 2 + math.log(5 / 4), rel=1e-5)


def test_predictions_and_accuracies_on_hand_computed_case():
    args = hand_case()
    p = varmisuse_predictions(*args)
    assert p["loc_correct"].tolist() == [True, True]
    assert p["no_bug_correct"].tolist() == [False, True]
    assert p["repair_correct"].tolist() == [True, False]
    assert p["joint_correct"].tolist() == [True, False]
    torch.testing.assert_close(p["loc_prob"], torch.tensor([0.4, 0.6]))
    torch.testing.assert_close(p["repair_mass"], torch.tensor([0.8, 0.0]))
    assert batch_accuracies(p, args[2]) == pytest.approx(
        {"no_bug": 1.0, "localization": 1.0, "repair": 1.0, "joint": 1.0}
    )
    # Move the location pointer of the buggy sample to token 1: localization and joint fail, repair holds.
    logits = args[0].clone()
    logits[0, 1, 0] = 3.0
    p = varmisuse_predictions(logits, *args[1:])
    assert p["loc_correct"][0].item() is False and p["joint_correct"][0].item() is False
    assert p["repair_correct"][0].item() is True


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_tiny_overfit_decreases_loss(name):
    torch.manual_seed(0)
    model = SMALL_MODELS[name]().train()
    subtokens, token_mask, edges = tiny_batch()
    has_bug = torch.tensor([True, False])
    error_location = torch.tensor([4, 0])
    targets = torch.zeros(2, 6, dtype=torch.bool)
    targets[0, 1] = True
    candidates = torch.zeros(2, 6, dtype=torch.bool)
    candidates[0, [1, 3, 4]] = True
    candidates[1, [1, 2]] = True
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        logits = model(subtokens, token_mask, edges)
        loss = reduce_losses(
            *varmisuse_losses(logits, token_mask, has_bug, error_location, targets, candidates), has_bug
        )
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
