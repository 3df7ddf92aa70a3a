"""The fast implementations against the readable references (code2vec_fast.py against code2vec.py,
code2seq_fast.py against code2seq.py): the same parameters, the same values and the same gradients
with dropout off; the fast code's own autograd functions against torch.autograd.gradcheck; its
optimizer against torch's.

Dropout is not compared: the fast models drop out only the valid contexts, with ByteDropout (eight
decisions from one 64-bit random number), the references the whole (B, C) grid with nn.Dropout, so
the same generator state gives other masks (the same distribution: tests/test_dropout.py).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from codemem.methodname import code2seq, code2seq_fast, code2vec, code2vec_fast
from codemem.methodname.code2vec_fast import BlockwiseAdam
from codemem.model_configs import Code2SeqConfig

TOLERANCE = 1e-5


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny tensors: one thread avoids OpenMP oversubscription on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def assert_same_gradients(fast: torch.nn.Module, reference: torch.nn.Module) -> None:
    fast_params, reference_params = dict(fast.named_parameters()), dict(reference.named_parameters())
    assert fast_params.keys() == reference_params.keys()
    for name, p in fast_params.items():
        q = reference_params[name]
        if not p.requires_grad:
            assert not q.requires_grad, name
            continue
        assert p.grad is not None and q.grad is not None, name
        torch.testing.assert_close(p.grad, q.grad, rtol=TOLERANCE, atol=TOLERANCE, msg=name)


# ----- code2vec -----


def code2vec_pair(vocabs=(40, 30, 9)):
    """Both code2vec models from one seed: the same initial draws, so the same weights."""
    torch.manual_seed(0)
    fast = code2vec_fast.Code2Vec(*vocabs)
    torch.manual_seed(0)
    reference = code2vec.Code2Vec(*vocabs)
    for (name, p), (_, q) in zip(fast.state_dict().items(), reference.state_dict().items(), strict=True):
        assert torch.equal(p, q), name
    return fast, reference


def code2vec_batch(seed: int, batch: int = 6, contexts: int = 12, vocabs=(40, 30, 9)):
    """Contexts with padding (all three ids 0) after each sample's valid ones, OOV ids (0) among the
    valid ones, a sample with a single context and labels (OOV included)."""
    g = torch.Generator().manual_seed(seed)
    n_tokens, n_paths = vocabs[:2]
    ids = torch.stack([torch.randint(0, v, (batch, contexts), generator=g)
                       for v in (n_tokens, n_paths, n_tokens)], -1)  # fmt: skip
    ids[..., 1].clamp_(min=1)  # a valid context: not all three 0
    n_valid = torch.randint(1, contexts + 1, (batch,), generator=g)
    n_valid[0] = 1
    ids[torch.arange(contexts) >= n_valid[:, None]] = 0
    return ids, torch.randint(0, vocabs[2], (batch,), generator=g)


def test_code2vec_state_dicts_load_into_either():
    fast, reference = code2vec_pair()
    assert fast.state_dict().keys() == reference.state_dict().keys()
    other = code2vec.Code2Vec(40, 30, 9)
    other.load_state_dict(fast.state_dict())
    code2vec_fast.Code2Vec(40, 30, 9).load_state_dict(reference.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(other.state_dict().values(), fast.state_dict().values()))


def test_code2vec_values_and_gradients_agree():
    fast, reference = code2vec_pair()
    with torch.no_grad():  # trained-looking weights: larger attention logits than at initialisation
        for p, q in zip(fast.parameters(), reference.parameters(), strict=True):
            p.add_(0.3 * torch.randn_like(p))
            q.copy_(p)
    contexts, labels = code2vec_batch(1)
    for model in (fast, reference):
        model.train()
        model.dropout.p = 0.0  # dropout off in training mode: the training graph otherwise
        model.loss(contexts, labels).mean().backward()
    fast.eval(), reference.eval()
    torch.testing.assert_close(fast(contexts), reference(contexts), rtol=TOLERANCE, atol=TOLERANCE)
    torch.testing.assert_close(fast.code_vectors(contexts), reference.code_vectors(contexts),
                               rtol=TOLERANCE, atol=TOLERANCE)  # fmt: skip
    assert_same_gradients(fast, reference)
    # A method without a valid context: zero code vector in both, no NaN.
    empty = torch.zeros(1, 5, 3, dtype=torch.long)
    assert torch.equal(fast.code_vectors(empty), reference.code_vectors(empty))
    assert not reference.code_vectors(empty).any()


def test_blockwise_adam_step_is_tf1_adam_step():
    # One step (and a second, with the state of the first) on the same gradients.
    torch.manual_seed(0)
    start = [torch.randn(37, 8), torch.randn(384, 1), torch.randn(5)]
    grads = [[torch.randn_like(p) for p in start] for _ in range(2)]

    def run(make):
        params = [torch.nn.Parameter(p.clone()) for p in start]
        optimizer = make(params)
        after = []
        for step_grads in grads:
            for p, g in zip(params, step_grads, strict=True):
                p.grad = g.clone()
            optimizer.step()
            after.append([p.detach().clone() for p in params])
        return after

    ours = run(lambda ps: BlockwiseAdam(ps, lr=1e-3, eps=1e-8, block_rows=16))
    whole = run(lambda ps: code2vec.TF1Adam(ps, lr=1e-3, eps=1e-8))
    for ours_step, whole_step in zip(ours, whole, strict=True):
        for a, b in zip(ours_step, whole_step, strict=True):
            assert torch.equal(a, b)
    # The reference's optimizer is TF1Adam with the fast one's settings.
    fast, reference = code2vec_pair()
    a, b = code2vec_fast.make_optimizer(fast), code2vec.make_optimizer(reference)
    assert type(b) is code2vec.TF1Adam and isinstance(a, code2vec.TF1Adam)
    assert a.defaults == b.defaults


# ----- code2seq -----

C2S_VOCABS = (60, 25, 12)  # sub-tokens, nodes, targets (specials included)
C2S_CONFIG = Code2SeqConfig(embedding_size=16, rnn_size=24, decoder_size=20)


def code2seq_pair(config: Code2SeqConfig = C2S_CONFIG, max_contexts: int = 200):
    """Both code2seq models from one seed (the same initial draws), then moved off the initialisation
    alike (non-zero biases, larger logits), dropout off."""
    models = []
    for implementation in (code2seq_fast, code2seq):
        torch.manual_seed(0)
        models.append(implementation.Code2Seq(*C2S_VOCABS, config=config, max_contexts=max_contexts))
    fast, reference = models
    for (name, p), (_, q) in zip(fast.state_dict().items(), reference.state_dict().items(), strict=True):
        assert torch.equal(p, q), name
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p, q in zip(fast.parameters(), reference.parameters(), strict=True):
            if p.requires_grad:
                p.add_(0.3 * torch.randn(p.shape, generator=g))
                q.copy_(p)
    for model in (fast, reference):
        model.context_dropout.p = model.output_dropout.p = 0.0
    return fast, reference


def code2seq_batch(seed: int, batch: int = 5, contexts: int = 9, config: Code2SeqConfig = C2S_CONFIG):
    """Inputs as the runner makes them, with garbage in the padded contexts (which must not matter),
    paths of every length (0 included) and targets of 1..max_target_parts sub-tokens then EOS."""
    g = torch.Generator().manual_seed(seed)
    n_sub, n_nodes, n_tgt = C2S_VOCABS

    def padded(high, width, min_len):
        ids = torch.randint(2, high, (batch, contexts, width), generator=g)
        lengths = torch.randint(min_len, width + 1, (batch, contexts), generator=g)
        ids[torch.arange(width) >= lengths.unsqueeze(-1)] = 0
        return ids, lengths

    source, _ = padded(n_sub, config.max_name_parts, 1)
    terminal, _ = padded(n_sub, config.max_name_parts, 0)
    path, path_lengths = padded(n_nodes, config.max_path_nodes, 0)
    n_valid = torch.randint(1, contexts + 1, (batch,), generator=g)
    n_valid[0] = 1
    mask = torch.arange(contexts) < n_valid.unsqueeze(1)
    steps = config.max_target_parts + 1
    target = torch.randint(3, n_tgt, (batch, steps), generator=g)
    target[torch.arange(steps) >= torch.randint(1, steps, (batch, 1), generator=g)] = 0
    return (source, path, path_lengths, terminal, mask), target


@pytest.mark.parametrize(
    ("mask_padded", "max_contexts"),
    [(False, 200), (False, 9), (True, 200)],  # padding's attention mass from 191 slots, from none, masked
)
def test_code2seq_values_and_gradients_agree(mask_padded, max_contexts):
    config = dataclasses.replace(C2S_CONFIG, mask_padded_contexts=mask_padded)
    fast, reference = code2seq_pair(config, max_contexts)
    inputs, target = code2seq_batch(2, config=config)
    losses = []
    for model in (fast, reference):
        model.train()  # the training graph, dropout off
        loss = model(*inputs, target, reduction="sum")
        loss.mean().backward()
        losses.append(loss)
    torch.testing.assert_close(*losses, rtol=TOLERANCE, atol=TOLERANCE)
    assert_same_gradients(fast, reference)
    models = fast.eval(), reference.eval()
    with torch.no_grad():
        (fast_contexts, fast_loss), (reference_contexts, reference_loss) = (
            (m.encode(*inputs), m(*inputs, target)) for m in models
        )
        torch.testing.assert_close(fast_contexts, reference_contexts, rtol=TOLERANCE, atol=TOLERANCE)
        torch.testing.assert_close(fast_loss, reference_loss, rtol=TOLERANCE, atol=TOLERANCE)


def test_code2seq_decoding_agrees():
    fast, reference = code2seq_pair()
    fast.eval(), reference.eval()
    inputs, target = code2seq_batch(3, batch=8)
    for full in (False, True):
        ids, score = fast.greedy(*inputs, full=full)
        ids_ref, score_ref = reference.greedy(*inputs, full=full)
        assert torch.equal(ids, ids_ref)
        torch.testing.assert_close(score, score_ref, rtol=TOLERANCE, atol=TOLERANCE)
    ids, steps, loss = fast.greedy_and_loss(*inputs, target, full=True, top_k=10)
    ids_ref, steps_ref, loss_ref = reference.greedy_and_loss(*inputs, target, full=True, top_k=10)
    assert torch.equal(ids, ids_ref)
    torch.testing.assert_close(steps, steps_ref, rtol=TOLERANCE, atol=TOLERANCE)
    torch.testing.assert_close(loss, loss_ref, rtol=TOLERANCE, atol=TOLERANCE)
    # The two share the optimizer and the schedule (code2seq.make_optimizer, make_scheduler).
    assert "make_optimizer" not in vars(code2seq_fast)


def test_code2seq_fast_attention_functions_pass_gradcheck():
    g = torch.Generator().manual_seed(0)
    keys = torch.randn(3, 4, 5, dtype=torch.float64, generator=g, requires_grad=True)
    h = torch.randn(3, 5, dtype=torch.float64, generator=g, requires_grad=True)
    alpha = torch.softmax(torch.randn(3, 4, dtype=torch.float64, generator=g), -1).requires_grad_()
    contexts = torch.randn(3, 4, 5, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(code2seq_fast._ScoreContexts.apply, (keys, h))
    assert torch.autograd.gradcheck(code2seq_fast._WeightContexts.apply, (alpha, contexts))
    # ... and they compute what their bmm forms do.
    torch.testing.assert_close(code2seq_fast._ScoreContexts.apply(keys, h),
                               torch.bmm(keys, h.unsqueeze(-1)).squeeze(-1))  # fmt: skip
    torch.testing.assert_close(code2seq_fast._WeightContexts.apply(alpha, contexts),
                               torch.bmm(alpha.unsqueeze(1), contexts).squeeze(1))  # fmt: skip


# ----- the setting -----


def test_train_implementation_chooses_defaults_to_fast_and_is_in_the_fingerprint():
    from codemem.params import ParamsError, from_dict
    from codemem.train import fingerprint

    fast, reference = from_dict({}), from_dict({"train": {"implementation": "reference"}})
    assert (fast.train.implementation, reference.train.implementation) == ("fast", "reference")
    # A checkpoint of one implementation is not resumed by the other.
    assert fingerprint(fast, [], code=[]) != fingerprint(reference, [], code=[])
    with pytest.raises(ParamsError, match="train.implementation must be fast or reference"):
        from_dict({"train": {"implementation": "slow"}})
    with pytest.raises(ParamsError, match="train.implementation.*does nothing"):
        from_dict({"dataset": "stdlib-great", "model": "ggnn", "train": {"implementation": "reference"}})
