"""`train.measure: study` on the MethodName training side, as the authors' patches and the originals'
readers measured (docs/fidelity.md): in-step train predictions, code2seq's k-step loss, code2vec's
preprocess.py context choice, code2seq's measurement batch and the readers' shuffle buffer.
Hand-computed cases; each fails on the behaviour before (full permutation, the target's n+1 steps,
the first 200 stored contexts, batches of 256, after-epoch train predictions)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from codemem import params as params_module
from codemem import storage, train
from codemem.methodname import code2seq, name_training
from codemem.methodname.code2seq_training import Code2SeqTraining
from codemem.methodname.code2vec_training import Code2VecTraining, preprocess_contexts
from codemem.methodname.name_training import shuffle_buffer_order
from codemem.model_configs import Code2VecConfig


# ---- the readers' shuffle buffer ---------------------------------------------------------------------
def tf_shuffle(n: int, buffer_size: int, uniforms) -> list[int]:
    """tf.data's ShuffleDatasetOp on one input slice, spelled out: a buffer in arrival order; pick
    offset floor(u * len) from the oldest, swap it with the oldest, emit and drop the oldest slot,
    append the next input element."""
    source, buffer, out = iter(range(n)), [], []
    for _ in range(min(buffer_size, n)):
        buffer.append(next(source))
    for u in uniforms[:n]:
        i = int(u * len(buffer))
        buffer[0], buffer[i] = buffer[i], buffer[0]
        out.append(buffer.pop(0))
        nxt = next(source, None)
        if nxt is not None:
            buffer.append(nxt)
    return out


@pytest.mark.parametrize("n, size", [(1, 10), (7, 3), (50, 10), (50, 50), (50, 80), (1000, 64)])
def test_shuffle_buffer_is_tf_datas_algorithm(n, size):
    u = np.random.default_rng(n * 31 + size).random(n)
    got = shuffle_buffer_order(n, size, u)
    assert got.tolist() == tf_shuffle(n, size, u)
    assert sorted(got.tolist()) == list(range(n))  # a permutation


def test_shuffle_buffer_hand_case():
    # [0 1 2] u .5 -> offset 1: emit 1 -> [0 2 3]; u 0: emit 0 -> [2 3 4]; u .9 -> offset 2: emit 4,
    # 2 takes the oldest's place -> [3 2]; u .6 -> offset 1: emit 2 -> [3]; emit 3.
    assert shuffle_buffer_order(5, 3, [0.5, 0.0, 0.9, 0.6, 0.0]).tolist() == [1, 0, 4, 2, 3]
    assert shuffle_buffer_order(6, 1, np.full(6, 0.99)).tolist() == list(range(6))  # a buffer of one: file order


def bare(cls, n: int, study: bool, batch_size: int = 8):
    """A training object with just what `batches`, `loss` and the in-step records need."""
    t = cls.__new__(cls)
    t.train_names, t.study, t.batch_size, t.seed = [f"n{i}" for i in range(n)], study, batch_size, 0
    t.config = code2seq.Code2SeqConfig()
    return t


def test_study_batches_come_through_a_shuffle_buffer_clean_ones_from_a_permutation(monkeypatch):
    monkeypatch.setattr(name_training, "SHUFFLE_BUFFER_SIZE", 10)
    n = 400
    torch.manual_seed(5)
    study = torch.cat(bare(Code2VecTraining, n, True).batches(0)).numpy()
    torch.manual_seed(5)
    expected = shuffle_buffer_order(n, 10, torch.rand(n, dtype=torch.float64))
    assert study.tolist() == expected.tolist()
    # Sample i cannot leave a 10-sample buffer before step i - 9 (and file order shows through).
    assert (study >= 0).all() and (np.arange(n) - np.argsort(study) <= 9).all()
    torch.manual_seed(5)
    clean = torch.cat(bare(Code2VecTraining, n, False).batches(0)).numpy()
    assert clean.tolist() == torch.randperm(n, generator=torch.Generator().manual_seed(5)).tolist()
    assert not (np.arange(n) - np.argsort(clean) <= 9).all()


def test_the_buffer_is_the_readers_10000():
    assert name_training.SHUFFLE_BUFFER_SIZE == 10_000  # both configs' SHUFFLE_BUFFER_SIZE


# ---- code2seq: the k-step loss and the teacher-forced prediction -------------------------------------
def test_study_step_loss_averages_the_first_k_steps_of_the_filtered_prediction():
    step_losses = torch.tensor([[1.0, 2.0, 3.0, 0.0], [4.0, 5.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [2.0, 4.0, 6.0, 8.0]])
    unk, pad, sos = code2seq.UNK_ID, code2seq.PAD_ID, code2seq.SOS_ID
    predicted = torch.tensor([
        [7, pad, 9, pad],  # k = 2 (the PAD between does not count): (1 + 2) / 2
        [unk, pad, pad, pad],  # k = 0: 0
        [5, 6, 7, 8],  # k = 4, a step past the target's end counting 0: 1
        [sos, unk, 3, pad],  # <S> is kept, <UNK> dropped: k = 2 -> (2 + 4) / 2
    ])  # fmt: skip
    assert code2seq.study_step_loss(step_losses, predicted).tolist() == [1.5, 0.0, 1.0, 3.0]


def code2seq_bare(study: bool, step_losses, predicted, target):
    t = bare(Code2SeqTraining, len(target), study)
    t.config = code2seq.Code2SeqConfig(max_target_parts=target.shape[1] - 1)
    t.device = torch.device("cpu")
    t.inputs = {"train": torch.zeros(len(target), 1, 3, dtype=torch.long)}
    t.labels = {"train": target}
    t._sample_contexts = lambda ctx: ctx
    t._batch = lambda ctx: []
    t.model = lambda *args, reduction: (step_losses, predicted)
    t.targets = ["<PAD>", "<UNK>", "<S>", "get", "value", "set"]
    return t


def test_code2seq_in_step_records_are_the_studys_loss_and_teacher_forced_prediction():
    target = torch.tensor([[3, 4, 0, 0], [5, 0, 0, 0]])  # get|value, set
    step_losses = torch.tensor([[1.0, 3.0, 2.0, 0.0], [6.0, 2.0, 0.0, 0.0]])  # masked: target's n + 1 steps
    predicted = torch.tensor([[3, 0, 0, 0], [5, 4, 1, 3]])
    study = code2seq_bare(True, step_losses, predicted, target)
    study.batches(0)
    loss, n = study.loss(torch.tensor([0, 1]))
    assert n == 2 and loss.item() == pytest.approx((6.0 + 8.0) / 2)  # the original's sum / batch
    assert study._in_step_loss.tolist() == [1.0, pytest.approx(8.0 / 3)]  # k = 1 and k = 3
    assert study.in_step_names(study._in_step_pred) == ["get", "set|value|get"]
    clean = code2seq_bare(False, step_losses, predicted, target)
    clean.batches(0)
    clean.loss(torch.tensor([0, 1]))
    assert clean._in_step_loss.tolist() == [2.0, 4.0]  # unchanged: over the target's own n + 1 steps


def test_teacher_forced_steps_are_the_models_loss_and_argmax():
    torch.manual_seed(0)
    config = code2seq.Code2SeqConfig(embedding_size=8, rnn_size=8, decoder_size=10)
    model = code2seq.Code2Seq(12, 9, 7, config, max_contexts=5).eval()
    b, c = 3, 5
    inputs = (torch.randint(2, 12, (b, c, 5)), torch.randint(2, 9, (b, c, 9)), torch.randint(1, 10, (b, c)),
              torch.randint(2, 12, (b, c, 5)), torch.ones(b, c, dtype=torch.bool))  # fmt: skip
    target = torch.tensor([[3, 4, 0, 0, 0, 0, 0], [5, 0, 0, 0, 0, 0, 0], [3, 5, 6, 4, 0, 0, 0]])
    steps, ids = model(*inputs, target, reduction="steps")
    assert torch.allclose(steps.sum(1), model(*inputs, target, reduction="sum"))
    assert (steps[0, 3:] == 0).all() and (steps[0, :3] > 0).all()
    contexts = model.encode(*inputs)
    state, attention, keys = model._start(*model._memory(contexts, inputs[-1]))
    logits, _, _ = model._step(torch.full((b,), code2seq.SOS_ID), state, attention, keys,
                               *model._memory(contexts, inputs[-1]))  # fmt: skip
    assert ids[:, 0].tolist() == logits.argmax(-1).tolist()  # the first step reads <S>


# ---- code2vec: the raw top-1 of the training step ---------------------------------------------------
def test_code2vec_in_step_prediction_is_the_raw_top1_of_the_training_logits():
    t = bare(Code2VecTraining, 3, True)
    t.device = torch.device("cpu")
    t.names = ["<OOV>", "get", "set|value"]
    t.inputs = {"train": torch.zeros(3, 1, 3, dtype=torch.long)}
    t.labels = {"train": torch.tensor([1, 2, 2])}
    logits = torch.tensor([[0.1, 2.0, 0.3], [5.0, 0.0, 1.0], [0.0, 0.5, 0.4]])
    t.model = lambda x: logits[: len(x)]
    t.batches(0)
    t.loss(torch.tensor([0, 1, 2]))
    names = t.in_step_names(t._in_step_pred)
    assert names == ["get", "<OOV>", "get"]  # OOV is not skipped (the after-epoch F1 would take "set|value")
    f1 = t.f1(["get", "set|value", "set|value"], names)
    assert (f1.precision, f1.recall) == (pytest.approx(1 / 3), pytest.approx(1 / 5))
    state = t.step_state()
    t.batches(1)
    t.load_step_state(state)  # resumable: the records travel with a mid-epoch checkpoint
    assert t.in_step_names(t._in_step_pred) == names


# ---- code2vec: preprocess.py's choice of 200 ----------------------------------------------------------
def test_preprocess_keeps_full_then_partial_drops_unknown_over_the_limit():
    # tokens 0-3 known (ids 1-4), 4-5 unknown; paths 0-1 known, 2-3 unknown; index -1 (last) padding.
    token_map = np.array([1, 2, 3, 4, 0, 0, 0], dtype=np.int32)
    path_map = np.array([1, 2, 0, 0, 0], dtype=np.int32)
    full, partial, none, pad = [0, 0, 1], [4, 1, 5], [4, 2, 5], [-1, -1, -1]
    full2, partial2 = [2, 1, 3], [0, 3, 5]
    rows = np.array([
        [none, full, pad, pad, pad, pad],  # 2 contexts <= 3: kept as they are, the unknown one too
        [none, partial, none, full, partial2, pad],  # 5: 1 full + 2 partial = 3, unknown dropped
        [none, partial, none, full, pad, pad],  # 4: 1 full + 1 partial < 3: only those two
        [full, partial, full2, full, full2, partial2],  # 6: 4 full > 3: three of the full ones
        [partial, partial2, partial, full, none, partial2],  # 6: the full one + 2 of the 4 partial
    ], dtype=np.int32)  # fmt: skip
    out = preprocess_contexts(rows, token_map, path_map, 3, np.random.default_rng(0))
    assert out.shape == (5, 3, 3)
    assert out[0].tolist() == [none, full, pad]
    assert sorted(map(tuple, out[1].tolist())) == sorted(map(tuple, [full, partial, partial2]))
    assert sorted(map(tuple, out[2].tolist())) == sorted(map(tuple, [full, partial, pad]))
    assert all(tuple(c) in {tuple(full), tuple(full2)} for c in out[3].tolist())
    assert out[4].tolist()[0] == full and all(tuple(c) in {tuple(partial), tuple(partial2)} for c in out[4, 1:].tolist())
    # The first three stored (what `clean` and the code before took) differ:
    assert rows[1, :3].tolist() != out[1].tolist()


def synthetic_samples(width: int) -> storage.SampleSet:
    """Two names, 12 training methods of `width` stored contexts (up to 7 valid), 4 test ones of 3."""
    rng = np.random.default_rng(1)
    n_train, n_test, tokens, paths = 12, 4, 30, 20
    def rows(n, w):
        out, v = np.full((n, w, 3), -1, dtype=np.int32), min(w, 7)
        out[:, :v, 0] = rng.integers(0, tokens, (n, v))
        out[:, :v, 1] = rng.integers(0, paths, (n, v))
        out[:, :v, 2] = rng.integers(0, tokens, (n, v))
        return out
    empty = np.zeros(0, dtype=np.int32)
    cs = storage.ContextSet(np.array([f"t{i}" for i in range(tokens)]), np.array([f"p{i}" for i in range(paths)]),
                            {"train": rows(n_train, width), "val": rows(0, 3), "test": rows(n_test, 3)},
                            {"test": storage.Variants(empty, empty, empty, empty, empty)})  # fmt: skip
    labels = np.array(["get"] * 8 + ["set|value"] * 8)
    return storage.SampleSet(labels, {"train": np.arange(12), "val": empty, "test": np.arange(12, 16)}, {"c2v": cs})


def test_code2vec_study_counts_vocabularies_over_every_stored_training_context():
    noisy = ["get"] * 6 + ["set|value"] * 6
    def training(width, measure):
        return Code2VecTraining(synthetic_samples(width), noisy, 3, torch.device("cpu"), Code2VecConfig(),
                                measure=measure, csr=False)  # fmt: skip
    stored = synthetic_samples(7).formats["c2v"].contexts["train"]
    study, clean = training(7, "study"), training(7, "clean")
    assert study.vocab["tokens"] == len(np.unique(stored[:, :7][..., [0, 2]])) + 1  # + PAD/OOV
    assert clean.vocab["tokens"] == len(np.unique(stored[:, :3][..., [0, 2]])) + 1 < study.vocab["tokens"]
    # Every stored context is in the vocabularies: all full found, so each method gets 3 of its 7.
    assert (study.inputs["train"] != 0).all()
    # Stored no wider than the model reads (the extraction's c2v width today): the same data either way.
    assert torch.equal(training(3, "study").inputs["train"], training(3, "clean").inputs["train"])


def test_code2vec_study_drops_methods_without_a_code_line_as_its_extractor():
    noisy = ["get"] * 6 + ["set|value"] * 6
    samples = synthetic_samples(3)
    samples.code_line["train"] = np.array([1, 0, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1], dtype=np.int8)
    samples.code_line["test"] = np.array([1, 1, 0, 1], dtype=np.int8)
    stored = samples.formats["c2v"].contexts["train"]
    stored[..., [0, 2]] = np.where(stored[..., [0, 2]] == 29, 0, stored[..., [0, 2]])
    stored[1, 0, 0] = 29  # token 29 only in a method without a code line
    def training(measure):
        return Code2VecTraining(samples, noisy, 3, torch.device("cpu"), Code2VecConfig(), measure=measure, csr=False)
    study, clean = training("study"), training("clean")
    assert study.train_kept.tolist() == [0, 2, 3, 4, 5, 6, 7, 9, 10, 11]  # code2vec's extractor never wrote 1 and 8
    assert clean.train_kept.tolist() == list(range(12))
    assert len(study.true_test_names) == 3 and study.test_dropped == clean.test_dropped + 1
    # ... nor counts them in its vocabularies (preprocess.sh never saw them)
    written = stored[samples.code_line["train"] == 1][..., [0, 2]]
    assert study.vocab["tokens"] == len(np.unique(written[written >= 0])) + 1 == clean.vocab["tokens"] - 1
    assert study.token_map[29] == 0 and clean.token_map[29] != 0


# ---- code2seq measures in the study's batches of 128 --------------------------------------------------
def test_code2seq_study_measures_in_batches_of_128_and_the_batch_is_in_the_fingerprint():
    def load(**train_values):
        return params_module.from_dict({"model": "code2seq", "train": train_values})
    assert load().train.eval_batch_size == 128
    assert load(eval_batch_size=0).train.eval_batch_size == 128
    assert load(measure="clean").train.eval_batch_size == 256
    assert load(eval_batch_size=64).train.eval_batch_size == 64  # an explicit value wins
    assert params_module.from_dict({"model": "code2vec"}).train.eval_batch_size == 256
    repo = params_module.load(Path(__file__).resolve().parents[1] / "params.yaml")
    assert repo.train.eval_batch_size == (128 if repo.model == "code2seq" and repo.train.measure == "study" else 256)
    study, other = load(), load(eval_batch_size=256)
    assert train.fingerprint(study, [], code=[]) != train.fingerprint(other, [], code=[])
