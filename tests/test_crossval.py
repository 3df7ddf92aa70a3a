"""crossval: cleanlab on K-fold out-of-sample probabilities, on the tiny JDK corpus at noise 0.5."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from codemem import corrupt, crossval, extract, fetch
from codemem.__main__ import app
from codemem.params import from_dict


def settings(corpus: Path, model: str = "code2vec") -> dict:
    return {"model": model, "noise": 0.5, "fetch": {"source": str(corpus)},
            "extract": {"top_names": 3, "per_name": 40, "split": [0.6, 0.2, 0.2], "workers": 1},
            "train": {"epochs": 2, "batch_size": 32}}  # fmt: skip


@pytest.fixture(scope="module")
def built(tiny_corpus, tmp_path_factory) -> Path:
    """build/samples and build/noisy of the tiny corpus at noise 0.5 (fetch, extract, corrupt)."""
    root = tmp_path_factory.mktemp("crossval")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        params = from_dict(settings(tiny_corpus))
        fetch.run(params)
        extract.run(params)
        corrupt.run(params)
    return root


@pytest.fixture
def project(built, tmp_path, monkeypatch) -> Path:
    shutil.copytree(built / "build", tmp_path / "build")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_folds_are_disjoint_cover_the_samples_and_are_stratified():
    labels = np.repeat([0, 1, 2], [10, 7, 3])
    fold = crossval.assign_folds(labels, 3, seed=1)
    assert sorted(np.concatenate([np.flatnonzero(fold == k) for k in range(3)])) == list(range(len(labels)))
    for c in range(3):  # each label spread over the folds within one sample
        counts = np.bincount(fold[labels == c], minlength=3)
        assert counts.max() - counts.min() <= 1
    assert np.array_equal(fold, crossval.assign_folds(labels, 3, seed=1))
    assert not np.array_equal(fold, crossval.assign_folds(labels, 3, seed=2))


def test_crossval_command_scores_every_training_sample_out_of_sample(project, tiny_corpus, monkeypatch):
    Path("params.yaml").write_text(json.dumps(settings(tiny_corpus)))
    folds = []  # (held-out positions, positions still trained on) of each fold
    hold_out = crossval.hold_out

    def spy(training, held):
        before = training.train_kept.copy()
        out = hold_out(training, held)
        folds.append((before[held], training.train_kept.copy()))
        assert len(out["inputs"]) == len(held) == len(out["labels"])
        return out

    monkeypatch.setattr(crossval, "hold_out", spy)
    result = CliRunner().invoke(app, ["crossval", "--folds", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    written = json.loads(Path("plots/detection_cleanlab.json").read_text())
    assert written["folds"] == 2 and written["epochs"] == 2 and written["seconds"] > 0
    assert written["flipped"] > 0 and written["classes"] == 3
    for key in ("auroc", "auprc", "precision_at_k", "out_of_sample_accuracy"):
        assert 0.0 <= written[key] <= 1.0, key
    assert 0 <= written["issues_flipped"] <= written["issues"] <= written["samples"]

    # The folds: disjoint, covering the kept training samples, none trained on what it predicts.
    assert len(folds) == 2
    held = np.concatenate([h for h, _ in folds])
    assert len(np.unique(held)) == len(held) == written["samples"]
    all_kept = np.union1d(folds[0][0], folds[0][1])
    assert np.array_equal(np.sort(held), all_kept)
    for h, trained in folds:
        assert len(h) and not np.intersect1d(h, trained).size and len(h) + len(trained) == len(all_kept)

    # One out-of-sample probability row per kept training sample, summing to 1.
    with np.load("build/crossval/out_of_sample.npz") as z:
        probs, fold, labels, flipped = z["pred_probs"], z["fold"], z["labels"], z["flipped"]
        assert probs.shape == (written["samples"], 3) and len(fold) == len(labels) == len(flipped) == len(probs)
        assert np.allclose(probs.sum(1), 1.0) and (probs >= 0).all()
        assert set(fold.tolist()) == {0, 1} and int(flipped.sum()) == written["flipped"]
        assert len(z["scores"]) == len(probs) and len(z["issues"]) == written["issues"]


def test_crossval_code2seq_gives_normalised_sequence_likelihoods(project, tiny_corpus):
    params = from_dict(settings(tiny_corpus, "code2seq") | {"train": {"epochs": 1, "batch_size": 32}})
    result = crossval.run(params, folds=2)
    assert result["model"] == "code2seq" and 0.0 <= result["auroc"] <= 1.0
    with np.load("build/crossval/out_of_sample.npz") as z:
        assert len(z["pred_probs"]) == result["samples"] and np.allclose(z["pred_probs"].sum(1), 1.0)


def test_crossval_refuses_varmisuse_and_one_fold(project, tiny_corpus):
    from codemem.errors import UserError

    with pytest.raises(UserError, match="at least 2"):
        crossval.run(from_dict(settings(tiny_corpus)), folds=1)
    Path("params.yaml").write_text(json.dumps({"dataset": "stdlib-great", "model": "great"}))
    result = CliRunner().invoke(app, ["crossval"], catch_exceptions=False)
    assert result.exit_code == 2 and "MethodName" in result.output
