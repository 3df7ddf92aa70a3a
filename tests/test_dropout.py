"""ByteDropout: torch's inverted dropout, with eight keep/drop decisions drawn from one 64-bit number."""

from __future__ import annotations

import pytest
import torch

from codemem.methodname.dropout import ByteDropout


@pytest.mark.parametrize("p", [0.25, 0.5])
def test_keeps_each_element_with_probability_keep_and_scales_it(p):
    torch.manual_seed(0)
    x = torch.ones(1_000_003)  # not a multiple of 8
    y = ByteDropout(p).train()(x)
    kept = y != 0
    assert torch.equal(y.unique(), torch.tensor([0.0, 1 / (1 - p)]))
    # 1M Bernoulli draws: the kept share is within 5 standard deviations of 1 - p ...
    assert abs(kept.double().mean().item() - (1 - p)) < 5 * (p * (1 - p) / x.numel()) ** 0.5
    # ... and the 8 decisions drawn from one word are independent: neighbours agree as often as chance.
    agree = (kept[:-1] == kept[1:]).double().mean().item()
    assert abs(agree - ((1 - p) ** 2 + p**2)) < 0.005


def test_gradient_is_the_mask_and_eval_is_identity():
    torch.manual_seed(1)
    x = torch.randn(64, 48, requires_grad=True)
    layer = ByteDropout(0.25).train()
    y = layer(x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, (y != 0).float() / 0.75)
    assert torch.equal(layer.eval()(x), x)


def test_seeded_and_other_rates_fall_back_to_torch():
    x = torch.ones(4096)
    torch.manual_seed(3)
    a = ByteDropout(0.25).train()(x)
    torch.manual_seed(3)
    assert torch.equal(a, ByteDropout(0.25).train()(x))
    torch.manual_seed(3)
    fallback = ByteDropout(0.1).train()(x)  # 0.9 x 256 is not whole: torch's own dropout
    torch.manual_seed(3)
    assert torch.equal(fallback, torch.nn.functional.dropout(x, 0.1, training=True))
