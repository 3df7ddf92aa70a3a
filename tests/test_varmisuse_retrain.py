"""Clean and retrain for VarMisuse (train.drop_flagged): a flagging pass, the measured training samples
its signal ranks most suspicious dropped, and a second training whose stream never draws them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from lookalike import small_corpus

from codemem import corrupt, evaluate, extract, fetch, train
from codemem.params import ParamsError, from_dict
from codemem.storage import Layout
from codemem.varmisuse import bug_batches, great_format
from codemem.varmisuse.bug_training import VarMisuseTraining

TINY_GREAT = {"hidden": 32, "num_layers": 1, "num_heads": 2, "attention_dim": 32, "ff_dim": 64}


@pytest.mark.parametrize("model", ["transformer", "great", "ggnn"])
def test_params_accept_the_signals_varmisuse_logs_and_refuse_the_others(model):
    for signal in ("loss", "aum", "forgetting", "low_confidence"):
        p = from_dict({"dataset": "stdlib-great", "model": model, "noise": 0.2,
                       "train": {"drop_flagged": signal, "drop_share": 0.1}})  # fmt: skip
        assert (p.train.drop_flagged, p.train.drop_share) == (signal, 0.1)
    # The in-step losses of a streamed step cannot be compared across samples (docs/detection.md).
    with pytest.raises(ParamsError, match="in_step_loss is not offered for model"):
        from_dict({"dataset": "stdlib-great", "model": model, "train": {"drop_flagged": "in_step_loss"}})
    with pytest.raises(ParamsError, match="drop_flagged must be one of"):
        from_dict({"dataset": "stdlib-great", "model": model, "train": {"drop_flagged": "cleanlab"}})
    with pytest.raises(ParamsError, match="train.drop_share"):  # no signal: nothing to drop
        from_dict({"dataset": "stdlib-great", "model": model, "train": {"drop_share": 0.2}})


# ---- drop_train on hand-made samples --------------------------------------------------------------
def sample(i: int) -> dict:
    buggy = i % 2 == 1
    return {"source_tokens": ["#NEWLINE#"] + [f"t{j % 5}" for j in range(1, 8 + i % 4)], "has_bug": buggy,
            "error_location": 4 if buggy else 0, "repair_targets": [2, 5] if buggy else [],
            "repair_candidates": [1, 2, 3, 5], "edges": [[1, 2, 9, "enum_NEXT_SYNTAX"]], "bug_kind": int(buggy),
            "bug_kind_name": "VARIABLE_MISUSE" if buggy else "NONE"}  # fmt: skip


def hand_training(tmp_path) -> VarMisuseTraining:
    """12 training samples (lines 3 and 8 flipped), 7 of them measured, steps of 25 samples: a step
    spans more than one permutation of the training set."""
    layout = Layout(tmp_path)
    great_format.write_shard(layout.noisy / "train.jsonl", [sample(i) for i in range(12)], validate=False)
    (layout.noisy / "flips.tsv").write_text("sample\ttrue_bug\tnoisy_bug\terror_location\trepair_targets\n"
                                            "3\t0\t1\t4\t2,5\n8\t1\t0\t0\t\n")  # fmt: skip
    great_format.write_shard(layout.samples / "eval.jsonl", [sample(i) for i in range(3)], validate=False)
    params = from_dict({"dataset": "stdlib-great", "model": "great", "great": TINY_GREAT, "noise": 0.2,
                        "train": {"samples_per_step": 25, "measure_samples": 7, "heldout": "eval",
                                  "drop_flagged": "loss"}})  # fmt: skip
    torch.manual_seed(0)
    return VarMisuseTraining(params, layout, "cpu")


def test_drop_train_leaves_the_flagged_measured_samples_out_of_the_stream_and_the_measurements(tmp_path):
    training = hand_training(tmp_path)
    measured = training.train_measured.copy()
    assert len(training.train) == 12 and len(measured) == 7
    # Without dropping, the stream is bug_batches.step_samples' (runs without a retrain are unchanged).
    for step in range(3):
        assert np.array_equal(
            np.concatenate(training.batches(step)), bug_batches.step_samples(12, 25, step, 0)
        )

    training.drop_train(np.array([0, 3, 5]))  # positions in the per-sample logs: measured samples
    gone = measured[[0, 3, 5]]
    kept = np.setdiff1d(np.arange(12), gone)
    for step in range(4):
        rows = np.concatenate(training.batches(step))
        assert len(rows) == 25  # a step keeps its size, drawn from the kept samples only
        assert not np.isin(rows, gone).any()
        assert set(rows.tolist()) == set(kept.tolist())  # 25 > 9 kept: each of them is drawn
    assert np.array_equal(training.train_measured, np.setdiff1d(measured, gone))

    _, arrays, counts = training.outputs()
    assert (counts["train_samples"], counts["train_dropped_flagged"], counts["train_measured"]) == (9, 3, 4)
    lines = training.train.line[training.train_measured]
    assert np.array_equal(arrays["train_line"], lines)
    assert arrays["flipped"].tolist() == [int(line in (3, 8)) for line in lines.tolist()]
    _, logged = training.measure(0)  # the per-sample logs follow the measured samples that remain
    assert all(len(logged[k]) == 4 for k in ("dyn_loss", "dyn_margin", "dyn_prob", "dyn_correct"))


# ---- the whole train stage on a tiny stdlib-great corpus ------------------------------------------
@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_retrain_drops_the_samples_the_flagging_pass_ranked_highest_and_counts_them(workdir, monkeypatch):
    params = from_dict({
        "dataset": "stdlib-great", "model": "great", "noise": 0.5,
        "fetch": {"source": str(small_corpus(workdir / "lib"))},
        "extract": {"split": [0.6, 0.0, 0.4]},
        "train": {"epochs": 2, "samples_per_step": 48, "measure_samples": 40, "heldout": "eval",
                  "drop_flagged": "loss"},
        "great": TINY_GREAT,
    })  # fmt: skip
    fetch.run(params)
    extract.run(params)
    corrupt.run(params)

    # What the loop trains on: each training's steps, as train.jsonl lines, recorded on the way
    # through the real VarMisuseTraining.batches (the flagging pass's training comes first).
    # The trainings themselves are held (not their id(), which the second may reuse once the first is gone).
    trainings: list[VarMisuseTraining] = []
    streams: list[list[np.ndarray]] = []
    real_batches = VarMisuseTraining.batches

    def recorded(self, epoch):
        batches = real_batches(self, epoch)
        if not any(t is self for t in trainings):
            trainings.append(self)
            streams.append([])
        streams[next(i for i, t in enumerate(trainings) if t is self)].append(
            self.train.line[np.concatenate(batches)]
        )
        return batches

    monkeypatch.setattr(VarMisuseTraining, "batches", recorded)
    train.run(params)
    flagging_stream, retrain_stream = streams

    # The flagging pass: the same noisy run without dropping, kept in build/checkpoints/flagging/.
    flagging = Path("build/checkpoints/flagging")
    assert (flagging / "build/checkpoints/train.pt").exists() and (flagging / "plots/epochs.csv").exists()
    first = dict(np.load(flagging / "build/logs/per_sample.npz"))
    first_counts = json.loads((flagging / "build/logs/counts.json").read_text())
    assert "retrain" not in first_counts and first_counts["train_dropped_flagged"] == 0
    n = first_counts["train_samples"]
    assert first["dyn_loss"].shape == (2, 40) and 0 < first["flipped"].sum() < 40

    # `loss`: the mean location loss over the steps; the 20 highest (0.5 x the 40 measured) go.
    mean_loss = first["dyn_loss"].astype(np.float64).mean(axis=0)
    dropped = np.zeros(40, bool)
    dropped[np.argsort(-mean_loss, kind="stable")[:20]] = True
    assert mean_loss[dropped].min() >= mean_loss[~dropped].max()
    flagged_lines = first["train_line"][dropped]
    # The flagging pass trained on them; the retrain's stream never draws them, and keeps its steps' size.
    assert np.isin(flagged_lines, np.concatenate(flagging_stream)).all()
    assert len(retrain_stream) == 2 and all(len(step) == 48 for step in retrain_stream)
    assert not np.isin(np.concatenate(retrain_stream), flagged_lines).any()
    # Only measured samples can be flagged: the unmeasured ones are all still trained on.
    assert set(np.concatenate(retrain_stream).tolist()) == set(
        np.concatenate(flagging_stream).tolist()
    ) - set(flagged_lines.tolist())

    counts = json.loads(Path("build/logs/counts.json").read_text())
    assert counts["retrain"] == {"drop_signal": "loss", "ranked": 40, "dropped": 20,
                                 "dropped_flipped": int(first["flipped"][dropped].sum()),
                                 "flipped_before": int(first["flipped"].sum())}  # fmt: skip
    assert (counts["train_samples"], counts["train_dropped_flagged"], counts["train_measured"]) == (
        n - 20,
        20,
        20,
    )
    logs = dict(np.load("build/logs/per_sample.npz"))
    assert np.array_equal(logs["train_line"], first["train_line"][~dropped]) and logs["dyn_loss"].shape == (
        2,
        20,
    )
    assert np.array_equal(logs["flipped"], first["flipped"][~dropped])

    result = evaluate.run(params)
    assert result["retrain"] == counts["retrain"] and result["train_samples"] == n - 20
    assert result["detection"]["measured"] == 20

    # A second run resumes both trainings from their checkpoints: the same outputs, no training.
    streams.clear()
    train.run(params)
    assert not streams and json.loads(Path("build/logs/counts.json").read_text()) == counts
