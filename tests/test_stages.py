"""Stage functions on small real inputs: fetch, extract's report, train's resume."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from codemem import corrupt, extract, fetch, train
from codemem.params import from_dict


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def small_params(source: Path, **train):
    return from_dict({
        "fetch": {"source": str(source)},
        "extract": {"top_names": 3, "per_name": 40, "split": [0.6, 0.2, 0.2], "workers": 1},
        "train": {"epochs": 2, "batch_size": 32, **train},
    })  # fmt: skip


def test_fetch_and_extract_skip_bad_files_and_count_them(workdir, tiny_corpus):
    corpus = workdir / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    bad = corpus / "bad"
    bad.mkdir()
    (bad / "Latin1.java").write_bytes("class A { String s() { return \"caf\xe9\"; } }".encode("latin-1"))
    (bad / "Binary.java").write_bytes(b"\x00\x01\x02class")
    (bad / "Huge.java").write_text("class H { int f() { return 1; } }\n" + "// pad\n" * 400_000)
    (bad / "Broken.java").write_text("class B { int f( { return ; } } }}")
    params = small_params(corpus)
    manifest = fetch.run(params)
    assert manifest["kind"] == "folder" and manifest["files"] > 400 and len(manifest["corpus_sha256"]) == 64
    report = extract.run(params)
    assert report["files_not_utf8"] == 1 and report["files_binary"] == 1 and report["files_too_large"] == 1
    assert report["methods_with_syntax_errors"] >= 1
    assert report["methods_duplicate_body"] > 0
    assert len(report["names"]) == 3
    samples = Path("build/samples")
    lines = (samples / "train.c2v").read_text().splitlines()
    assert lines and all(len(line.split(" ")) == 201 for line in lines)  # label + 200 fields, padded
    # code2seq's format: up to 1,000 stored contexts for training, "subtokens,node|node|...,subtokens".
    c2s = (samples / "train.c2s").read_text().splitlines()
    assert len(c2s) == len(lines) and all(len(line.split(" ")) == 1001 for line in c2s)
    first = c2s[0].split(" ")[1]
    source, path, _ = first.split(",")
    assert 2 <= len(path.split("|")) <= 9 and len(source.split("|")) <= 5
    held_out = (samples / "val.c2s").read_text().splitlines() + (samples / "test.c2s").read_text().splitlines()
    assert held_out and all(len(line.split(" ")) == 201 for line in held_out)
    methods = [json.loads(x) for x in (samples / "methods.jsonl").read_text().splitlines()]
    # Split by package: no package in two splits.
    packages = {}
    for m in methods:
        packages.setdefault(m["file"].rsplit("/", 1)[0], set()).add(m["split"])
    assert all(len(s) == 1 for s in packages.values())


def test_fetch_errors_are_clear(workdir, monkeypatch):
    with pytest.raises(fetch.FetchError, match="does not exist"):
        fetch.run(small_params(workdir / "nowhere"))
    empty = workdir / "empty"
    empty.mkdir()
    with pytest.raises(fetch.FetchError, match="no .java files"):
        fetch.run(small_params(empty))
    monkeypatch.setattr(fetch, "local_jdk_sources", list)
    monkeypatch.setattr(fetch.shutil, "which", lambda _: None)
    with pytest.raises(fetch.FetchError, match="fetch.source"):
        fetch.run(dataclasses.replace(small_params(empty), fetch=fetch.Params().fetch))


@pytest.mark.parametrize("model", ["code2vec", "code2seq"])
def test_interrupted_training_resumes_to_the_same_metrics(workdir, tiny_corpus, model):
    params = dataclasses.replace(small_params(tiny_corpus, csr=True), model=model)
    fetch.run(params)
    extract.run(params)
    corrupt.run(dataclasses.replace(params, noise=0.5))
    checkpoint = Path("build/checkpoints/train.pt")

    uninterrupted = pd.DataFrame(train.run(params))
    per_sample = np.load("build/logs/per_sample.npz")["train_loss"]

    checkpoint.unlink()
    one = dataclasses.replace(params, train=dataclasses.replace(params.train, epochs=1))
    train.run(one)  # "killed" after the first epoch's checkpoint
    assert checkpoint.exists()
    resumed = pd.DataFrame(train.run(params))
    # Training time is logged apart from the per-epoch measurements, and is part of the epoch.
    assert ((uninterrupted.train_seconds > 0) & (uninterrupted.train_seconds < uninterrupted.seconds)).all()
    columns = [c for c in uninterrupted.columns if not c.endswith("seconds")]
    pd.testing.assert_frame_equal(uninterrupted[columns], resumed[columns])
    assert np.array_equal(per_sample, np.load("build/logs/per_sample.npz")["train_loss"])


def test_a_checkpoint_resumes_only_the_same_settings_data_and_code(workdir, tiny_corpus, monkeypatch):
    params = small_params(tiny_corpus, epochs=1)
    fetch.run(params)
    extract.run(params)
    corrupt.run(params)
    files = [Path("build/samples/contexts.npz"), Path("build/noisy/labels.tsv")]
    checkpoint = Path("build/checkpoints/train.pt")
    train.run(params)
    same = train.fingerprint(params, files)
    assert train.load_checkpoint(checkpoint, same, 1, "cpu")["epoch"] == 1
    # Another setting that shapes training, other data, or other training code: not resumed.
    other_lr = dataclasses.replace(params, model_sections={"code2vec": {"learning_rate": 0.01}})
    assert train.fingerprint(other_lr, files) != same
    assert train.fingerprint(params, files[:1]) != same
    assert train.fingerprint(dataclasses.replace(params, train=dataclasses.replace(params.train, threads=1)), files) == same
    # The measurement batch changes what code2seq's decoding returns: another checkpoint.
    other_batch = dataclasses.replace(params, train=dataclasses.replace(params.train, eval_batch_size=128))
    assert train.fingerprint(other_batch, files) != same
    # The model's code is part of it: the same file name with one more line is another checkpoint.
    code = train.training_code()
    model_file = train.PACKAGE / "methodname" / "code2vec.py"
    assert model_file in code and train.PACKAGE / "methodname" / "code2vec_training.py" in code
    edited = workdir / "code2vec.py"
    edited.write_bytes(model_file.read_bytes() + b"# a change to the model code\n")
    changed_code = train.fingerprint(params, files, code=[edited if f == model_file else f for f in code])
    assert changed_code != same
    assert train.load_checkpoint(checkpoint, changed_code, 1, "cpu") is None


def test_code2seq_measures_as_the_original_evaluates(workdir, tiny_corpus):
    # measure() batches samples by width and cuts the padding after each batch's widest one. Scores
    # and losses must still be what the model gives each sample alone on its 200 slots, and the
    # predicted names what the original's evaluation gives: batches of `batch_size` in order, each
    # decoded until its last sequence ends, every step's sub-token kept but <UNK>/<PAD>/</S>.
    # `study` scores: over the first len(prediction) steps, the top-1 of a softmax over the top-10
    # logits, averaged; `clean`: the full softmax's top-1 averaged over the sample's own steps.
    import torch

    from codemem import storage
    from codemem.methodname import code2seq
    from codemem.methodname.code2seq_training import Code2SeqTraining

    params = dataclasses.replace(small_params(tiny_corpus), model="code2seq")
    fetch.run(params)
    extract.run(params)
    corrupt.run(params)
    torch.manual_seed(0)
    runner = Code2SeqTraining(storage.load_samples(), storage.load_noisy_labels(), 200, torch.device("cpu"),
                            params.model_config())  # fmt: skip
    assert runner.study
    losses, scores, names = runner.measure_split("test", batch_size=7)
    inputs = runner.inputs["test"]
    assert (inputs[..., 1] < 0).any()  # there is padding to cut
    for start in range(0, len(inputs), 7):
        ids, _ = runner.model.greedy(*runner._batch(inputs[start : start + 7]))  # one of the original's batches
        expected = ["|".join(code2seq.predicted_subtokens(row, runner.targets)) or None for row in ids.tolist()]
        assert names[start : start + 7] == expected
    runner.study = False
    _, clean_scores, clean_names = runner.measure_split("test", batch_size=7)
    assert clean_names == names
    for i in range(len(inputs)):
        one = runner._batch(inputs[i : i + 1])
        ids, score, loss = runner.model.greedy_and_loss(*one, runner.labels["test"][i : i + 1])
        assert clean_scores[i] == pytest.approx(score.item(), abs=1e-5)
        assert losses[i] == pytest.approx(loss.item(), abs=1e-4)
        _, steps = runner.model.greedy(*one, full=True, top_k=10)
        k = len(names[i].split("|")) if names[i] else 0
        assert scores[i] == pytest.approx(steps[0, :k].mean().item() if k else 0.0, abs=1e-5)
    assert not {p for n in names if n for p in n.split("|")} & set(code2seq.FILTERED_TARGETS)
    assert (scores != clean_scores).any()


def test_code2vec_evaluates_as_the_original_and_scores_as_the_study(workdir, tiny_corpus):
    """The original's evaluation reader drops test samples without a known context; the study's
    patch scores a sample by the top-1 of a softmax over the top-10 logits (`clean`: the predicted
    name's probability under the full softmax)."""
    import torch

    from codemem import storage
    from codemem.methodname.code2vec_training import Code2VecTraining

    params = small_params(tiny_corpus)
    fetch.run(params)
    extract.run(params)
    corrupt.run(params)
    samples = storage.load_samples()
    test = samples.formats["c2v"].contexts["test"]
    test[0] = -1  # sample 0: no context at all
    # Sample 1 gets a renaming that changes none of its contexts (its variable was not sampled).
    v = samples.formats["c2v"].variants["test"]
    v.owner, v.token = np.append(v.owner, 1).astype(np.int32), np.append(v.token, 0).astype(np.int32)
    variants = v

    def runner(measure):
        torch.manual_seed(0)
        return Code2VecTraining(samples, storage.load_noisy_labels(), 200, torch.device("cpu"), params.model_config(),
                              measure=measure)  # fmt: skip

    study, clean = runner("study"), runner("clean")
    n_test = len(samples.split_labels["test"])
    assert study.test_dropped == 1 and len(study.true_test_names) == len(study.inputs["test"]) == n_test - 1
    # `clean` CSR: our renamings inside the sampled contexts.
    assert len(clean.variant_owner) == (variants.owner != 0).sum()
    assert len(clean.inputs["variants"]) == clean.variant_measured.sum() == len(clean.variant_owner) - 1
    # Every test sample with a renamable variable is in CSR's denominator, also when the renaming
    # changes none of its sampled contexts (then it is not measured: it cannot be critical).
    clean.batches(0)
    row, _ = clean.measure(0)
    assert row["csr_transformable"] == len(set(clean.variant_owner.tolist()))
    assert row["csr"] == row["csr_samples"] and row["csr_variant_count"] == len(clean.variant_owner)
    assert clean.variant_owner.max() < n_test - 1 and (clean.inputs["test"] != 0).any(-1).any(-1).all()
    # `study` CSR: the study's variants, re-extracted (tests/test_study_csr.py), every one measured.
    renamed = samples.formats["c2v"].renamings["test"]
    assert len(study.variant_owner) == (renamed.owner != 0).sum() == len(study.inputs["variants"])
    assert study.variant_measured.all() and (study.inputs["test"] != 0).any(-1).any(-1).all()
    study.batches(0)
    row, _ = study.measure(0)
    assert row["csr_transformable"] == len(set(study.variant_owner.tolist())) > 0
    # `study` counts the study's way, over variants; `clean` over samples; both are logged.
    assert row["csr_variant_count"] == len(study.variant_owner) and row["csr"] == row["csr_variants"]
    assert row["csr_changed"] == round(row["csr_variants"] * len(study.variant_owner))

    _, scores, names = study.measure_split("test", batch_size=7)
    _, full_scores, full_names = clean.measure_split("test", batch_size=7)
    assert names == full_names
    study.model.eval()
    with torch.no_grad():
        logits = study.model(study.inputs["test"])
    top10 = torch.softmax(logits.topk(min(10, logits.shape[1])).values, -1)[:, 0]
    assert np.allclose(scores, top10.numpy(), atol=1e-6)
    # Never below the full softmax's; the same when the top 10 holds the whole vocabulary (3 names here).
    assert (scores >= full_scores - 1e-6).all()
    assert np.allclose(scores, full_scores, atol=1e-5) == (len(study.names) <= 10)
    # The per-sample losses (logits and log-softmax written into buffers): cross_entropy's, bit for
    # bit, batch by batch, the last batch shorter than the buffers.
    n_train, inputs, labels = len(study.inputs["train"]), study.inputs["train"], study.labels["train"]
    assert n_train % 7
    losses, _, _ = study.measure_split("train", batch_size=7)
    with torch.no_grad():
        expected = [torch.nn.functional.cross_entropy(study.model(inputs[s : s + 7]), labels[s : s + 7], reduction="none")
                    for s in range(0, n_train, 7)]  # fmt: skip
    assert np.array_equal(losses, torch.cat(expected).numpy())


def test_vocabulary_caps_keep_the_most_frequent_as_the_originals_preprocessing():
    from codemem.methodname.name_training import _id_map

    used = np.array([[3, 1, -1], [3, 0, 1], [2, 3, -1]], dtype=np.int32)  # counts: 0:1 1:2 2:1 3:3
    assert _id_map(5, used).tolist() == [1, 2, 3, 4, 0, 0]  # uncapped: every used entry, in table order
    # cap 3: 3 and 1, then the tie 0 / 2 goes to the earlier entry; ids stay in table order
    assert _id_map(5, used, cap=3).tolist() == [1, 2, 0, 3, 0, 0]
    # both ends of [3, 3, 2] / [-1, 1, -1]: 3 twice, then the tie 1 / 2 goes to 1 (-1 is no entry)
    assert _id_map(5, used[:, :1], used[:, 2:], cap=2).tolist() == [0, 1, 0, 2, 0, 0]


def test_code2vec_target_cap_drops_training_samples_of_rare_names(workdir, tiny_corpus):
    import dataclasses

    import torch

    from codemem import storage
    from codemem.methodname.code2vec_training import Code2VecTraining

    params = small_params(tiny_corpus)
    fetch.run(params)
    extract.run(params)
    corrupt.run(params)
    noisy = storage.load_noisy_labels()
    config = params.model_config()
    whole = Code2VecTraining(storage.load_samples(), noisy, 200, torch.device("cpu"), config)
    capped = Code2VecTraining(storage.load_samples(), noisy, 200, torch.device("cpu"),
                            dataclasses.replace(config, max_target_vocab=2, max_path_vocab=5))  # fmt: skip
    counts = {n: noisy.count(n) for n in set(noisy)}
    kept = sorted(counts, key=lambda n: (-counts[n], n))[:2]
    assert capped.names == ["<OOV>", *sorted(kept)] and len(whole.names) == len(counts) + 1
    assert set(capped.train_names) == set(kept) and len(capped.train_names) < len(whole.train_names)
    assert capped.vocab["paths"] == 5 + 1 and capped.vocab["tokens"] == whole.vocab["tokens"]
