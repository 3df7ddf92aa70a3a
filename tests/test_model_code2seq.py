"""code2seq: variables and shapes as the original TF graph, masking, decoding, loss, training (the fast
implementation, code2seq_fast.py; the reference against it: tests/test_reference_models.py)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from codemem import metrics
from codemem.methodname import code2seq, code2seq_fast
from codemem.methodname.code2seq import (
    EOS_ID,
    FILTERED_TARGETS,
    PAD_ID,
    SOS_ID,
    UNK_ID,
    Code2SeqConfig,
    cut_like_dynamic_decode,
    first_end_steps,
    make_optimizer,
    make_scheduler,
    predicted_subtokens,
    study_scores,
    target_step_mask,
)
from codemem.methodname.tf_fidelity import (
    original_parameter_count,
    original_variable_shapes,
    original_variables,
    parameter_shape_mapping,
)
from codemem.task import count_trainable

CFG = Code2SeqConfig()
SLOTS = 200  # Code2Seq's max_contexts (MAX_CONTEXTS): every sample's context slots


@pytest.fixture(autouse=True)
def single_thread():
    """These tensors are tiny: one thread avoids OpenMP oversubscription on a busy machine (~10x)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


VOCABS = (60, 25, 12)  # sub-tokens, nodes, targets (incl. specials)


@pytest.fixture(params=["reference", "fast"])
def Code2Seq(request):  # the class under test, each implementation in turn
    return {"reference": code2seq, "fast": code2seq_fast}[request.param].Code2Seq


def make_batch(seed: int, batch: int = 4, contexts: int = 10, vocabs=VOCABS, cfg: Code2SeqConfig = CFG):
    """A random batch in the model's input format; every sample keeps >= 1 valid context."""
    g = torch.Generator().manual_seed(seed)
    n_sub, n_nodes, n_tgt = vocabs

    def padded(shape, high, max_len, min_len=1):
        ids = torch.randint(2, high, shape, generator=g)
        lengths = torch.randint(min_len, max_len + 1, shape[:-1], generator=g)
        ids[torch.arange(shape[-1]) >= lengths.unsqueeze(-1)] = PAD_ID
        return ids, lengths

    source, _ = padded((batch, contexts, cfg.max_name_parts), n_sub, cfg.max_name_parts)
    terminal, _ = padded((batch, contexts, cfg.max_name_parts), n_sub, cfg.max_name_parts)
    path, path_lengths = padded((batch, contexts, cfg.max_path_nodes), n_nodes, cfg.max_path_nodes, 2)
    n_valid = torch.randint(1, contexts + 1, (batch,), generator=g)
    mask = torch.arange(contexts) < n_valid.unsqueeze(1)
    # Targets: 1..max_target_parts sub-tokens (ids >= 3: not PAD/UNK/SOS), then EOS (= PAD) and PAD.
    target = torch.randint(3, n_tgt, (batch, cfg.max_target_parts + 1), generator=g)
    lengths = torch.randint(1, cfg.max_target_parts + 1, (batch,), generator=g)
    target[torch.arange(cfg.max_target_parts + 1) >= lengths.unsqueeze(1)] = PAD_ID
    batch = {"source": source, "path": path, "path_lengths": path_lengths, "target_terminal": terminal}
    return batch | {"context_mask": mask}, target


def inputs_only(batch):
    return tuple(batch[k] for k in ("source", "path", "path_lengths", "target_terminal", "context_mask"))


@pytest.mark.parametrize("vocabs", [(60, 25, 12), (190_002, 350, 27_003)])
def test_variables_match_the_original_graph(vocabs, Code2Seq):
    model = Code2Seq(*vocabs)
    expected = original_variable_shapes(*vocabs)
    assert parameter_shape_mapping(model) == expected  # every variable, none extra, none missing
    assert len(expected) == 13
    assert expected["model/bidirectional_rnn/fw/lstm_cell/kernel"] == (256, 512)
    assert expected["model/dense/kernel"] == (512, 320)
    assert expected["model/decoder/attention_wrapper/multi_rnn_cell/cell_0/lstm_cell/kernel"] == (768, 1280)
    assert expected["model/decoder/attention_wrapper/attention_layer/kernel"] == (640, 320)
    assert expected["model/decoder/dense/kernel"] == (320, vocabs[2])
    # The trainable parameters are exactly the original's (PyTorch's frozen second bias is TF's constant).
    assert count_trainable(model) == original_parameter_count(*vocabs)


def test_shapes_follow_a_non_default_config(Code2Seq):
    cfg = Code2SeqConfig(embedding_size=16, rnn_size=24, decoder_size=20)
    model = Code2Seq(*VOCABS, config=cfg)
    assert parameter_shape_mapping(model) == original_variable_shapes(*VOCABS, cfg)


def test_table1_parameter_count_java_top10(Code2Seq):
    # Fixed part: 2 path LSTMs (256*512 + 512) + dense 512*320 + memory 320*320
    # + decoder LSTM (768*1280 + 1280) + attention layer 640*320 = 1,718,528.
    fixed = 2 * (256 * 512 + 512) + 512 * 320 + 320 * 320 + 768 * 1280 + 1280 + 640 * 320
    assert fixed == 1_718_528
    for vocabs in [(60, 25, 12), (1000, 300, 17)]:
        s, n, t = vocabs
        assert original_parameter_count(*vocabs) == 128 * (s + n + t) + 320 * t + fixed
    # Java-Top10's 10 names have 14 distinct sub-tokens (equals, main, set|up, on|create, to|string,
    # run, hash|code, init, execute, get) + PAD/UNK/SOS = 17 targets; then Table 1's 3,826,368 holds
    # exactly when |sub-tokens| + |nodes| = 16,408 (split unknown).
    assert original_parameter_count(16_000, 408, 17) == 3_826_368
    assert original_parameter_count(15_800, 608, 17) == 3_826_368
    assert count_trainable(Code2Seq(16_000, 408, 17)) == 3_826_368


def _tf_lstm_step(x, h, c, kernel, bias):
    """tf.nn.rnn_cell.LSTMCell: gates i, j, f, o from [x; h] @ kernel + bias, forget_bias 1.0."""
    i, j, f, o = (torch.cat([x, h], -1) @ kernel + bias).chunk(4, -1)
    c = torch.sigmoid(f + 1.0) * c + torch.sigmoid(i) * torch.tanh(j)
    return torch.sigmoid(o) * torch.tanh(c), c


def test_lstm_variables_compute_what_tf_would(Code2Seq):
    torch.manual_seed(0)
    model = Code2Seq(*VOCABS)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn_like(p))  # non-zero biases, asymmetric gates
    variables = original_variables(model)
    cell = "model/decoder/attention_wrapper/multi_rnn_cell/cell_0/lstm_cell"
    x, h, c = torch.randn(3, 448), torch.randn(3, 320), torch.randn(3, 320)
    ours = model.decoder_cell(x, (h, c))
    theirs = _tf_lstm_step(x, h, c, variables[f"{cell}/kernel"], variables[f"{cell}/bias"])
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b)
    x = torch.randn(5, 1, 128)
    _, (h_n, _) = model.path_lstm(x)
    fw = "model/bidirectional_rnn/fw/lstm_cell"
    h_tf, _ = _tf_lstm_step(
        x[:, 0], torch.zeros(5, 128), torch.zeros(5, 128), variables[f"{fw}/kernel"], variables[f"{fw}/bias"]
    )
    torch.testing.assert_close(h_n[0], h_tf)


def test_path_encoder_is_the_bidirectional_lstm_over_packed_paths(Code2Seq):
    # The prefix-sharing encoder must give nn.LSTM's final states over packed sequences, with the
    # same gradients: paths of every length (0 included), repeated paths and shared prefixes.
    torch.manual_seed(0)
    model = Code2Seq(*VOCABS)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn_like(p))
    n, steps = 60, CFG.max_path_nodes
    path = torch.randint(2, 6, (n, steps))  # a few node types: many shared prefixes
    lengths = torch.randint(0, steps + 1, (n,))
    path[30:40], lengths[30:40] = path[0], lengths[0]  # repeated paths
    lengths[:3] = torch.tensor([0, 1, steps])
    path = path * (torch.arange(steps) < lengths[:, None])  # PAD after the end, as the runner makes them

    ours = model._encode_paths(path, lengths)
    ours.square().sum().backward()
    ours_grads = [p.grad.clone() for p in (model.node_embedding.weight, *model.path_lstm.parameters()) if p.requires_grad]
    model.zero_grad()

    real = lengths > 0
    packed = nn.utils.rnn.pack_padded_sequence(model.node_embedding(path[real]), lengths[real], batch_first=True,
                                               enforce_sorted=False)  # fmt: skip
    _, (h_n, _) = model.path_lstm(packed)
    reference = torch.zeros(n, 2 * h_n.shape[-1]).index_put((real,), torch.cat([h_n[0], h_n[1]], -1))
    reference.square().sum().backward()
    reference_grads = [p.grad for p in (model.node_embedding.weight, *model.path_lstm.parameters()) if p.requires_grad]

    assert torch.all(ours[~real] == 0)
    torch.testing.assert_close(ours, reference)
    for a, b in zip(ours_grads, reference_grads):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("mask_padded", [True, False])
def test_padded_contexts_inputs_do_not_matter(mask_padded, Code2Seq):
    cfg = dataclasses.replace(CFG, mask_padded_contexts=mask_padded)
    torch.manual_seed(0)
    model = Code2Seq(*VOCABS, config=cfg).eval()
    batch, target = make_batch(1)
    pad = ~batch["context_mask"]
    assert pad.any()
    changed = {k: v.clone() for k, v in batch.items()}
    for key in ("source", "path", "target_terminal"):
        changed[key][pad] = torch.randint(2, 20, changed[key][pad].shape)
    changed["path_lengths"][pad] = 5
    contexts = model.encode(*inputs_only(changed))
    assert torch.all(contexts[pad] == 0)  # as in the original: padded contexts are zero vectors
    torch.testing.assert_close(model(**batch, target=target), model(**changed, target=target))
    for a, b in zip(model.greedy(*inputs_only(batch)), model.greedy(*inputs_only(changed))):
        torch.testing.assert_close(a, b)


def test_padded_contexts_take_attention_mass_as_in_the_original(Code2Seq):
    # No memory_sequence_length in the original: each of a sample's 200 - n_valid padded slots (zero
    # key, score 0) takes exp(0) of the softmax and adds nothing to the attended context.
    torch.manual_seed(0)
    model = Code2Seq(*VOCABS).eval()
    assert not CFG.mask_padded_contexts  # the original's behaviour is the default
    batch, target = make_batch(2)
    mask = batch["context_mask"]
    contexts = model.encode(*inputs_only(batch))
    if hasattr(model, "_memory"):  # the reference spells out the 200 slots, as the original's reader
        contexts, mask = model._memory(contexts, mask)
    _, _, keys = model._start(contexts, mask)
    h = torch.randn(mask.shape[0], 320)
    _, alpha = model._attend(h, keys, contexts, mask)
    scores = torch.where(mask, torch.einsum("bcd,bd->bc", keys, h), torch.zeros(()))
    exp_valid = (scores.exp() * mask).sum(1)
    total = exp_valid + (SLOTS - mask.sum(1))  # the softmax's denominator over 200 slots
    torch.testing.assert_close((alpha * mask).sum(1), exp_valid / total)
    torch.testing.assert_close(alpha[~mask], (1 / total).unsqueeze(1).expand_as(mask)[~mask])  # exp(0) each
    assert torch.all((alpha * mask).sum(1) < 0.5)  # 10 of 200 slots given: the rest of the mass went to padding

    # The same numbers as with the 200 slots spelled out (as the original's reader makes them), for
    # any width in between: the slots beyond the tensor count as padding.
    for width in (SLOTS, 37):
        wider = {k: torch.cat([v, torch.zeros_like(v[:, :1]).expand(-1, width - v.shape[1], *v.shape[2:])], 1)
                 for k, v in batch.items()}  # fmt: skip
        torch.testing.assert_close(model(**wider, target=target), model(**batch, target=target))
        for a, b in zip(model.greedy(*inputs_only(wider)), model.greedy(*inputs_only(batch))):
            torch.testing.assert_close(a, b)

    # mask_padded_contexts=True (what memory_sequence_length would do) differs: padding gets nothing.
    masked = Code2Seq(*VOCABS, config=dataclasses.replace(CFG, mask_padded_contexts=True)).eval()
    masked.load_state_dict(model.state_dict())
    _, alpha = masked._attend(h, keys, contexts, mask)
    assert torch.all(alpha[~mask] == 0)
    torch.testing.assert_close(alpha.sum(1), torch.ones(mask.shape[0]))
    assert not torch.allclose(masked(**batch, target=target), model(**batch, target=target))
    more = {k: torch.cat([v, torch.zeros_like(v[:, :5])], 1) for k, v in batch.items()}
    torch.testing.assert_close(masked(**batch, target=target), masked(**more, target=target))


def tf_reference_greedy(model: Code2Seq, contexts, mask, nudge):
    """The original's test graph in plain tensors from its variables (TF layout): contexts spelled out
    to 200 slots, LuongAttention without memory_sequence_length inside AttentionWrapper (input
    [embedding; previous attention], output attention_layer([h; context])), GreedyEmbeddingHelper
    with end token 0 and dynamic_decode without impute_finished. `nudge` (B, T, V) is added to the
    logits, as the test's `Nudged` projection does."""
    v = original_variables(model)
    cell = "model/decoder/attention_wrapper/multi_rnn_cell/cell_0/lstm_cell"
    b, c, d = contexts.shape
    memory = torch.cat([contexts * mask.unsqueeze(-1), contexts.new_zeros(b, SLOTS - c, d)], 1)
    keys = memory @ v["model/memory_layer/kernel"]
    mean = memory.sum(1) / mask.sum(1, keepdim=True)
    h, cs, attention = mean, mean, torch.zeros(b, d)
    prev = torch.full((b,), SOS_ID)
    finished = torch.zeros(b, dtype=torch.bool)
    outputs = []
    for t in range(CFG.max_target_parts + 1):
        x = torch.cat([v["model/TARGET_WORDS_VOCAB"][prev], attention], -1)
        h, cs = _tf_lstm_step(x, h, cs, v[f"{cell}/kernel"], v[f"{cell}/bias"])
        alpha = torch.softmax(torch.einsum("bcd,bd->bc", keys, h), -1)  # all 200 slots
        context = torch.einsum("bc,bcd->bd", alpha, memory)
        attention = torch.cat([h, context], -1) @ v["model/decoder/attention_wrapper/attention_layer/kernel"]
        logits = attention @ v["model/decoder/dense/kernel"] + nudge[:, t]
        prev = logits.argmax(-1)
        outputs.append(prev)  # emitted for every sequence, ended or not
        finished = finished | (prev == 0)
        if finished.all():
            break
    return torch.stack(outputs, 1)


class Nudged(nn.Module):
    """The real projection plus a fixed per-row, per-step offset (to end chosen rows early)."""

    def __init__(self, projection: nn.Module, nudge: torch.Tensor):
        super().__init__()
        self.projection, self.nudge, self.calls = projection, nudge, 0

    def forward(self, x):
        out = self.projection(x) + self.nudge[:, self.calls]
        self.calls += 1
        return out


def test_greedy_decodes_like_dynamic_decode_without_impute_finished(Code2Seq):
    # Row 0 emits the end token at step 1, row 1 never; the others decode freely. As the original,
    # row 0 keeps decoding (next input: the end token's embedding) while row 1 runs, and keeps
    # those outputs; the batch runs all 7 steps.
    torch.manual_seed(0)
    model = Code2Seq(*VOCABS).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.3 * torch.randn_like(p))  # varied argmaxes rather than one repeated token
    batch, _ = make_batch(8, batch=4)
    steps = CFG.max_target_parts + 1
    nudge = torch.zeros(4, steps, VOCABS[2])
    nudge[0, 1, EOS_ID] = 100.0
    nudge[1, :, EOS_ID] = -100.0
    with torch.no_grad():
        contexts = model.encode(*inputs_only(batch))
        expected = tf_reference_greedy(model, contexts, batch["context_mask"], nudge)
    model.projection = Nudged(model.projection, nudge)
    ids, _ = model.greedy(*inputs_only(batch))
    assert expected.shape == (4, steps)
    assert torch.equal(ids, expected)
    assert ids[0, 1] == EOS_ID and (ids[0, 2:] != PAD_ID).any()  # outputs after the end token remain

    # Once every row has ended, decoding stops (dynamic_decode's loop condition); later steps are PAD.
    nudge = torch.zeros(2, steps, VOCABS[2])
    nudge[0, 0, EOS_ID] = nudge[1, 2, EOS_ID] = 100.0
    model.projection = projection = model.projection.projection
    with torch.no_grad():
        expected = tf_reference_greedy(model, contexts[:2], batch["context_mask"][:2], nudge)
    model.projection = Nudged(projection, nudge)
    two = {k: v[:2] for k, v in batch.items()}
    ids, _ = model.greedy(*inputs_only(two))
    assert expected.shape == (2, 3) and model.projection.calls == 3
    assert torch.equal(ids[:, :3], expected) and torch.all(ids[:, 3:] == PAD_ID)
    # full=True runs every step; cut_like_dynamic_decode then gives the batch's outputs back.
    model.projection.calls = 0
    full, _ = model.greedy(*inputs_only(two), full=True)
    assert model.projection.calls == steps and torch.equal(full[:, :3], ids[:, :3])
    assert torch.equal(cut_like_dynamic_decode(full, 2), ids)


def test_cut_like_dynamic_decode_stops_each_batch_after_its_last_end():
    ids = torch.tensor([
        [5, EOS_ID, 7, 8, 9, 9, 9],
        [6, 6, EOS_ID, 9, 4, 4, 4],
        [EOS_ID, 3, 3, 3, 3, 3, 3],  # a batch of its own: ends at once
        [4, 4, 4, 4, 4, 4, 4],  # never ends: every step
        [EOS_ID, 5, 5, EOS_ID, 5, 5, 5],
    ])  # fmt: skip
    assert first_end_steps(ids).tolist() == [1, 2, 0, 6, 0]
    assert cut_like_dynamic_decode(ids, 2).tolist() == [
        [5, 0, 7, 0, 0, 0, 0],
        [6, 6, 0, 0, 0, 0, 0],
        [0, 3, 3, 3, 3, 3, 3],
        [4, 4, 4, 4, 4, 4, 4],
        [0, 0, 0, 0, 0, 0, 0],
    ]
    assert cut_like_dynamic_decode(ids, 5).tolist() == ids.tolist()
    assert cut_like_dynamic_decode(ids[:1], 1).tolist() == [[5, 0, 0, 0, 0, 0, 0]]


def test_evaluation_drops_only_unk_pad_and_end_token():
    # Common.filter_impossible_names: <UNK>, <PAD>, </S>; <S> stays (a sub-token no true name has),
    # and sub-tokens decoded after the end token count.
    assert FILTERED_TARGETS == ("<UNK>", "<PAD>", "</S>") == metrics.CODE2SEQ_FILTERED
    targets = ["<PAD>", "<UNK>", "<S>", "get", "name", "set"]
    ids = [3, EOS_ID, 4, UNK_ID, SOS_ID, EOS_ID, 5]
    assert predicted_subtokens(ids, targets) == ["get", "name", "<S>", "set"]
    f = metrics.subtoken_f1_code2seq(["get|name"], ["|".join(predicted_subtokens(ids, targets))])
    assert (f.true_positive, f.false_positive, f.false_negative) == (2, 2, 0)
    # Stopping at the end token, as before, would have read "get": TP 1, FN 1.
    f = metrics.subtoken_f1_code2seq(["get|name"], ["get|<UNK>|</S>"])
    assert (f.true_positive, f.false_positive, f.false_negative) == (1, 0, 1)
    f = metrics.subtoken_f1_code2seq(["get|name"], ["get|<PAD>|name|</S>"])  # equal after the filter
    assert (f.true_positive, f.false_positive, f.false_negative) == (2, 0, 0)


class ScriptedProjection(nn.Module):
    """Stands in for the output projection: step t favours script[:, t] with a known probability."""

    def __init__(self, script: torch.Tensor, vocab: int):
        super().__init__()
        self.script, self.vocab, self.calls = script, vocab, 0

    def forward(self, x):
        logits = torch.zeros(x.shape[0], self.vocab)
        logits[torch.arange(x.shape[0]), self.script[:, self.calls]] = 3.0
        self.calls += 1
        return logits


def test_greedy_keeps_outputs_after_eos_until_the_batch_ends(Code2Seq):
    torch.manual_seed(0)
    model = Code2Seq(*VOCABS).eval()
    batch, _ = make_batch(3, batch=3)
    script = torch.tensor(
        [
            [5, 7, EOS_ID, 9, 9, 9, 9],
            [4, 4, 4, 4, 4, 4, 4],  # never ends: all 7 steps
            [EOS_ID, 3, 3, 3, 3, 3, 3],
        ]
    )
    model.projection = ScriptedProjection(script, VOCABS[2])
    ids, score = model.greedy(*inputs_only(batch))
    assert torch.equal(ids, script)  # no imputation after a sequence's end
    top1 = math.exp(3.0) / (math.exp(3.0) + VOCABS[2] - 1)  # same top-1 probability at every step
    torch.testing.assert_close(score, torch.full((3,), top1))

    model.projection = ScriptedProjection(torch.tensor([[6, EOS_ID] + [6] * 5, [EOS_ID] * 7]), VOCABS[2])
    ids, _ = model.greedy(*inputs_only({k: v[:2] for k, v in batch.items()}))
    assert model.projection.calls == 2  # all sequences ended: decoding stops, as dynamic_decode does
    assert ids.shape == (2, CFG.max_target_parts + 1)
    assert torch.equal(ids, torch.tensor([[6, 0, 0, 0, 0, 0, 0], [0] * 7]))


class UnevenSteps(nn.Module):
    """A projection whose logits are all 0 but one: step 0 sub-token 5 at 4.0 (sharp), step 1 the end
    token at 1.0, every later step sub-token 3 at 0.5 (nearly flat)."""

    calls = 0

    def forward(self, x):
        logits = torch.zeros(1, VOCABS[2])
        logits[0, [5, EOS_ID, 3][min(self.calls, 2)]] = [4.0, 1.0, 0.5][min(self.calls, 2)]
        self.calls += 1
        return logits


def test_greedy_score_averages_only_decoded_steps(Code2Seq):
    torch.manual_seed(0)
    model = Code2Seq(*VOCABS).eval()
    batch, _ = make_batch(4, batch=1)

    model.projection = UnevenSteps()
    ids, score = model.greedy(*inputs_only(batch))
    p = [math.exp(v) / (math.exp(v) + VOCABS[2] - 1) for v in (4.0, 1.0)]
    assert ids.tolist() == [[5, 0, 0, 0, 0, 0, 0]]
    assert score.item() == pytest.approx(sum(p) / 2, rel=1e-5)


def test_study_score_is_a_softmax_over_the_top_10_logits_over_the_prediction_steps(Code2Seq):
    """The study's patch: each step scored by the top-1 of a softmax over its 10 largest logits,
    averaged over the first len(filtered prediction) steps; the full softmax would score far lower
    with a flat tail of many targets."""
    torch.manual_seed(0)
    model = Code2Seq(*VOCABS).eval()
    batch, _ = make_batch(4, batch=1)

    model.projection = UnevenSteps()
    ids, steps = model.greedy(*inputs_only(batch), top_k=10, full=True)
    assert ids.tolist() == [[5, EOS_ID, 3, 3, 3, 3, 3]]
    top10 = [math.exp(v) / (math.exp(v) + 9) for v in (4.0, 1.0, 0.5, 0.5)]
    assert steps[0, :4].tolist() == pytest.approx(top10, rel=1e-5)
    # Prediction "5" then (after the end token, which dynamic_decode keeps decoding) "3 3 3 3 3":
    # six sub-tokens, so the first six steps count; with only "5" (cut batch) the first one.
    assert study_scores(steps, torch.tensor([1]))[0].item() == pytest.approx(top10[0], rel=1e-5)
    six = (top10[0] + top10[1] + 4 * top10[2]) / 6
    assert study_scores(steps, torch.tensor([6]))[0].item() == pytest.approx(six, rel=1e-5)
    assert study_scores(steps, torch.tensor([0]))[0].item() == 0.0  # an empty prediction
    full = math.exp(4.0) / (math.exp(4.0) + VOCABS[2] - 1)
    assert top10[0] > full + 0.01  # what a full-softmax score would have given


def test_target_step_mask_counts_subtokens_and_first_eos():
    target = torch.tensor([[5, 6, 0, 0, 0, 0, 0], [5, 6, 7, 8, 9, 10, 0], [0, 0, 0, 0, 0, 0, 0]])
    assert target_step_mask(target).sum(1).tolist() == [3, 7, 1]


def test_per_sample_loss_ignores_pad_steps(Code2Seq):
    torch.manual_seed(0)
    model = Code2Seq(*VOCABS).eval()
    batch, _ = make_batch(5, batch=2)
    target = torch.tensor([[5, 6, EOS_ID, 0, 0, 0, 0], [4, 0, 0, 0, 0, 0, 0]])
    loss = model(**batch, target=target)
    total = model(**batch, target=target, reduction="sum")
    torch.testing.assert_close(loss, total / torch.tensor([3.0, 2.0]))
    # Whatever follows the first EOS is neither scored nor, by causality, able to change earlier steps.
    garbage = target.clone()
    garbage[:, 3:] = torch.tensor([7, 8, 9, 10])
    torch.testing.assert_close(model(**batch, target=garbage), loss)
    assert torch.isfinite(loss).all() and (loss > 0).all()


def test_loss_decreases_when_overfitting_a_tiny_batch(Code2Seq):
    torch.manual_seed(0)
    model = Code2Seq(*VOCABS)
    batch, target = make_batch(6)
    optimizer = make_optimizer(model, CFG)
    model.eval()
    with torch.no_grad():
        before = model(**batch, target=target).mean().item()
    model.train()
    for _ in range(50):
        optimizer.zero_grad()
        loss = model(**batch, target=target, reduction="sum").mean()  # the original's objective
        assert torch.isfinite(loss)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        after = model(**batch, target=target).mean().item()
    assert after < 0.5 * before, (before, after)


def test_deterministic_with_a_fixed_seed(Code2Seq):
    def run():
        torch.manual_seed(123)
        model = Code2Seq(*VOCABS)
        batch, target = make_batch(7)
        optimizer = make_optimizer(model, CFG)
        losses = []
        for _ in range(3):  # training mode: dropout draws from the seeded generator too
            optimizer.zero_grad()
            loss = model(**batch, target=target).mean()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        model.eval()
        return losses, model.greedy(*inputs_only(batch))

    (losses_a, (ids_a, score_a)), (losses_b, (ids_b, score_b)) = run(), run()
    assert losses_a == losses_b
    assert torch.equal(ids_a, ids_b) and torch.equal(score_a, score_b)


def test_optimizer_and_schedule_follow_the_original(Code2Seq):
    model = Code2Seq(*VOCABS)
    optimizer = make_optimizer(model, CFG)
    group = optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"]) == (0.01, 0.95, True)
    assert sum(p.numel() for p in group["params"]) == count_trainable(model)
    scheduler = make_scheduler(optimizer, CFG)
    for _ in range(2):  # two epochs
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 0.95**2)


def test_start_token_and_special_ids():
    assert (PAD_ID, SOS_ID, EOS_ID) == (0, 2, 0)


def test_greedy_and_loss_equals_separate_calls(Code2Seq):
    torch.manual_seed(0)
    model = Code2Seq(30, 12, 9, Code2SeqConfig()).eval()
    b, c = 3, 7
    source = torch.randint(0, 30, (b, c, 5))
    path = torch.randint(1, 12, (b, c, 9))
    lengths = torch.randint(2, 10, (b, c))
    target_terminal = torch.randint(0, 30, (b, c, 5))
    mask = torch.rand(b, c) > 0.3
    mask[:, 0] = True
    target = torch.tensor([[3, 4, 0, 0, 0, 0, 0], [5, 0, 0, 0, 0, 0, 0], [3, 5, 6, 7, 8, 3, 0]])
    ids, score, loss = model.greedy_and_loss(source, path, lengths, target_terminal, mask, target)
    ids2, score2 = model.greedy(source, path, lengths, target_terminal, mask)
    with torch.no_grad():
        loss2 = model(source, path, lengths, target_terminal, mask, target)
    assert torch.equal(ids, ids2) and torch.allclose(score, score2) and torch.allclose(loss, loss2)
