"""code2vec: parameter parity with the study's formula, masking, learning; both implementations
(code2vec.py, the reference, and code2vec_fast.py; their agreement: tests/test_reference_models.py)."""

import math

import pytest
import torch

from codemem.methodname import code2vec, code2vec_fast
from codemem.methodname.code2vec import Code2VecConfig, expected_parameter_count
from codemem.methodname.code2vec_fast import BlockwiseAdam, make_optimizer
from codemem.task import count_trainable


@pytest.fixture(params=["reference", "fast"])
def Code2Vec(request):  # the class under test, each implementation in turn
    return {"reference": code2vec, "fast": code2vec_fast}[request.param].Code2Vec


def test_parameter_count_matches_formula(Code2Vec):
    for sizes in [(1000, 500, 11), (52_345, 31_337, 261)]:
        model = Code2Vec(*sizes)
        assert count_trainable(model) == expected_parameter_count(*sizes)
    # The study's Table 1 formula at its own scale: 128|tok| + 128|path| + 384|target| + 384*384 + 384.
    assert expected_parameter_count(1, 1, 1) == 128 + 128 + 384 + 384 * 384 + 384


def test_original_parameter_shapes(Code2Vec):
    model = Code2Vec(100, 50, 7)
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    # The original's variables: WORDS_VOCAB, PATHS_VOCAB, TARGET_WORDS_VOCAB, TRANSFORM, ATTENTION.
    assert shapes == {
        "token_embedding.weight": (100, 128),
        "path_embedding.weight": (50, 128),
        "target_embedding.weight": (7, 384),
        "transform": (384, 384),
        "attention": (384, 1),
    }


def test_padding_contexts_do_not_matter(Code2Vec):
    torch.manual_seed(0)
    model = Code2Vec(20, 20, 5).eval()
    contexts = torch.randint(1, 20, (2, 6, 3))
    contexts[:, 4:] = 0
    other = contexts.clone()
    other[:, 4:, 1] = 0  # still fully padded
    assert torch.allclose(model(contexts), model(other))
    empty = torch.zeros(1, 6, 3, dtype=torch.long)
    assert torch.isfinite(model(empty)).all()


def test_learns_a_tiny_task(Code2Vec):
    torch.manual_seed(0)
    model = Code2Vec(30, 30, 4, Code2VecConfig(dropout_keep=1.0))
    contexts = torch.randint(1, 30, (16, 8, 3))
    labels = torch.randint(1, 4, (16,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = model.loss(contexts, labels).mean().item()
    for _ in range(60):
        loss = model.loss(contexts, labels).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first * 0.2


def test_initialisers_are_the_originals(Code2Vec):
    # Embeddings: variance_scaling(1.0, fan_out, uniform), fan_out = the last dimension.
    # TRANSFORM and ATTENTION are created without an initializer: TF1's glorot_uniform.
    torch.manual_seed(0)
    model = Code2Vec(3000, 3000, 300)
    limits = {
        "token_embedding.weight": math.sqrt(3 / 128),
        "path_embedding.weight": math.sqrt(3 / 128),
        "target_embedding.weight": math.sqrt(3 / 384),
        "transform": math.sqrt(6 / (384 + 384)),
        "attention": math.sqrt(6 / (384 + 1)),  # ~0.125; FAN_OUT would give sqrt(3) ~ 1.73
    }
    for name, p in model.named_parameters():
        assert p.abs().max() <= limits[name], name
        assert p.abs().max() > 0.95 * limits[name], name  # uniform over the whole range


@pytest.mark.parametrize("model_code", [code2vec, code2vec_fast])
def test_optimizer_is_tf1_adam(model_code):
    opt = model_code.make_optimizer(model_code.Code2Vec(10, 10, 3))
    group = opt.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"]) == (1e-3, (0.9, 0.999), 1e-8)
    assert isinstance(opt, torch.optim.Adam)


def test_tf1_adam_adds_epsilon_before_the_bias_correction():
    # TF's ApplyAdam at t = 1 from m = v = 0, gradient g = 1e-9 (an embedding row a batch barely
    # touches): lr_t = 1e-3 sqrt(1 - 0.999) / (1 - 0.9) = 3.1623e-4, m = 1e-10, sqrt(v) = 3.1623e-11,
    # step = lr_t m / (sqrt(v) + 1e-8) = 3.1523e-6. torch's Adam adds 1e-8 after dividing sqrt(v) by
    # sqrt(1 - 0.999): 1e-2 * 1e-10 / (1e-9 + 1e-8) = 9.0909e-5, 29x more.
    def one_step(make):
        p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
        optimizer = make([p])
        p.grad = torch.tensor([1e-9], dtype=torch.float64)
        optimizer.step()
        return -p.item()

    assert one_step(lambda ps: code2vec.TF1Adam(ps, lr=1e-3, eps=1e-8)) == pytest.approx(3.1523e-6, rel=1e-4)
    assert one_step(lambda ps: torch.optim.Adam(ps, lr=1e-3, eps=1e-8)) == pytest.approx(9.0909e-5, rel=1e-4)
    # A large gradient makes epsilon irrelevant: both step lr (Adam's first step is lr * sign(g)).
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    optimizer = code2vec.TF1Adam([p], lr=1e-3, eps=1e-8)
    p.grad = torch.tensor([-2.0], dtype=torch.float64)
    optimizer.step()
    assert p.item() == pytest.approx(1e-3, rel=1e-6)


@pytest.mark.parametrize("block_rows", [1, 7, 8192])
def test_blockwise_adam_is_tf1_adam_bit_for_bit(block_rows):
    # Same updates and same state as TF1Adam's whole-tensor update, whatever the block size.
    def run(make):
        torch.manual_seed(0)
        params = [torch.nn.Parameter(torch.randn(shape)) for shape in [(1000, 128), (384, 384), (384, 1), (5,)]]
        optimizer = make(params)
        noise = torch.Generator().manual_seed(1)
        for step in range(4):
            optimizer.zero_grad(set_to_none=True)
            for k, p in enumerate(params):
                if step == 1 and k == 3:  # a parameter without a gradient in a step is left alone
                    continue
                p.grad = torch.randn(p.shape, generator=noise) * 10.0 ** -(k + step)
            optimizer.step()
        return params, optimizer.state_dict()

    ours, our_state = run(lambda ps: BlockwiseAdam(ps, lr=1e-3, eps=1e-8, block_rows=block_rows))
    whole, whole_state = run(lambda ps: code2vec.TF1Adam(ps, lr=1e-3, eps=1e-8))
    assert all(torch.equal(a, b) for a, b in zip(ours, whole, strict=True))
    for k, state in whole_state["state"].items():
        assert our_state["state"][k].keys() == state.keys() == {"step", "exp_avg", "exp_avg_sq"}
        assert all(torch.equal(our_state["state"][k][name], value) for name, value in state.items())
    assert type(make_optimizer(code2vec_fast.Code2Vec(10, 10, 3))) is BlockwiseAdam  # what CPU training uses
