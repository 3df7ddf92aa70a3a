"""VarMisuse under `train.measure: study`, as the authors' patches to ICLR20-Great measured (their
CI-Memorization `code/model_prediction/Great/`): batches in stream order (`data_loader.py`, the pivot
sort commented out), the train accuracies from inside the training step (`run_model.py`, `train`), the
repair Gini over buggy samples only; `clean` keeps upstream's batches and the measurement pass."""

from __future__ import annotations

import io
import itertools
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from codemem.metrics import gini
from codemem.params import from_dict
from codemem.storage import Layout
from codemem.varmisuse import bug_batches, bug_training, great_format
from codemem.varmisuse.bug_training import VarMisuseTraining

TINY_GREAT = {
    "hidden": 32,
    "num_layers": 1,
    "num_heads": 2,
    "attention_dim": 32,
    "ff_dim": 64,
    "dropout": 0.0,
}


# ---- batches -------------------------------------------------------------------------------------
def test_stream_batches_cut_the_stream_greedily_under_the_budget():
    # (longest so far) x (count) <= 200: [10, 100] fills 200; 300 is over the budget alone.
    assert bug_batches.stream_batches(np.array([10, 100, 10, 100, 300, 5]), 200) == [[0, 1], [2, 3], [4], [5]]
    assert bug_batches.stream_batches(np.array([], dtype=np.int64), 200) == []


class Lengths(SimpleNamespace):
    def __len__(self) -> int:
        return len(self.lengths)


def batching(study: bool, lengths: np.ndarray, per_step: int, budget: int) -> VarMisuseTraining:
    """Just what `VarMisuseTraining.batches` reads, without data files or a model."""
    t = object.__new__(VarMisuseTraining)
    t.train, t.config = Lengths(lengths=lengths), SimpleNamespace(max_batch_tokens=budget)
    t.samples_per_epoch, t.seed, t.study = per_step, 3, study
    return t


def test_study_batches_take_the_step_in_stream_order_and_clean_ones_sort_by_length():
    lengths = np.random.default_rng(0).integers(5, 512, size=300)
    chosen = bug_batches.step_samples(300, 200, 1, seed=3)
    study = batching(True, lengths, 200, 2000).batches(1)
    # The step's samples in the order the stream delivers them, each batch as full as the budget lets
    # it be: one more sample would go over.
    assert np.array_equal(np.concatenate(study), chosen)
    assert all(lengths[b].max() * len(b) <= 2000 for b in study)
    follow = [np.concatenate([b, nxt[:1]]) for b, nxt in itertools.pairwise(study)]
    assert all(lengths[f].max() * len(f) > 2000 for f in follow)
    # Upstream's (clean): similar lengths together, so fewer, fuller batches over the same samples.
    clean = batching(False, lengths, 200, 2000).batches(1)
    assert sorted(np.concatenate(clean).tolist()) == sorted(chosen.tolist())
    assert not np.array_equal(np.concatenate(clean), chosen)
    assert len(study) > len(clean)


# ---- the training side of a step -----------------------------------------------------------------
def sample(has_bug: bool, i: int) -> dict:
    tokens = ["#NEWLINE#"] + [f"t{j % 5}" for j in range(1, 8 + i)]
    return {"source_tokens": tokens, "has_bug": has_bug, "error_location": 4 if has_bug else 0,
            "repair_targets": [2, 5] if has_bug else [], "repair_candidates": [1, 2, 3, 5],
            "edges": [[1, 2, 9, "enum_NEXT_SYNTAX"]], "bug_kind": int(has_bug),
            "bug_kind_name": "VARIABLE_MISUSE" if has_bug else "NONE"}  # fmt: skip


def tiny_training(
    tmp_path, measure: str, measure_samples: int = 3, budget: int = 12_500
) -> VarMisuseTraining:
    layout = Layout(tmp_path)
    train = [sample(i % 3 != 0, i) for i in range(12)]
    great_format.write_shard(layout.noisy / "train.jsonl", train, validate=False)
    (layout.noisy / "flips.tsv").write_text("sample\ttrue_bug\tnoisy_bug\terror_location\trepair_targets\n")
    great_format.write_shard(layout.samples / "eval.jsonl", train[:4], validate=False)
    params = from_dict({"dataset": "stdlib-great", "model": "great", "great": TINY_GREAT | {"max_batch_tokens": budget},
                        "train": {"measure": measure, "measure_samples": measure_samples, "heldout": "eval",
                                  "samples_per_step": 12}})  # fmt: skip
    torch.manual_seed(0)
    return VarMisuseTraining(params, layout, "cpu")


def run_step(training: VarMisuseTraining, update: bool = True) -> None:
    for batch in training.batches(0):
        training.optimizer.zero_grad()
        loss, _ = training.loss(batch)
        if update:
            loss.backward()
            training.optimizer.step()


def test_study_train_accuracies_are_the_steps_own_and_the_repair_gini_is_over_buggy_samples(tmp_path):
    """Without updates (and dropout 0) the step's forward passes are the measurement pass's model:
    the study's train accuracies are then those of the step's 12 samples, not of the measured ones
    (here two clean samples, which have no localization accuracy to give)."""
    training = tiny_training(tmp_path, "study")
    training.train_measured = np.flatnonzero(~training.train.has_bug)[:2]
    run_step(training, update=False)
    row, logged = training.measure(0)
    step = bug_batches.step_samples(12, 12, 0, seed=0)
    everything = bug_training.summarize(
        bug_training.measure(training.model, training.train, step, training.config, "cpu")
    )
    measured = bug_training.summarize(bug_training.measure(training.model, training.train, training.train_measured,
                                                           training.config, "cpu"))  # fmt: skip
    keys = ("loc_acc", "repair_acc", "joint_acc", "no_bug_acc")
    assert np.isnan(measured["loc_acc"]) and not np.isnan(everything["loc_acc"])
    assert [row[f"train_{k}"] for k in keys] == pytest.approx([everything[k] for k in keys])
    # The logged in-step outcomes, in the batches' order, are the step's samples' labels and predictions.
    order = np.concatenate(training.batches(0))
    assert logged["in_step_has_bug"].tolist() == training.train.has_bug[order].astype(int).tolist()
    buggy = logged["in_step_has_bug"].astype(bool)
    assert row["train_loc_acc"] == pytest.approx(logged["in_step_loc_correct"][buggy].mean())
    assert row["train_no_bug_acc"] == pytest.approx(logged["in_step_no_bug_correct"][~buggy].mean())
    # Repair Gini over the 8 buggy samples' in-step losses; the 4 clean ones (loss 0) left out.
    repair = logged["in_step_repair_loss"]
    assert row["gini_repair"] == pytest.approx(gini(repair[buggy]))
    assert row["gini_repair"] != pytest.approx(gini(repair))
    assert row["gini_loc"] == pytest.approx(gini(logged["in_step_loc_loss"]))
    # The repair pointer's margin is logged, 0 where a measured sample is labelled clean (no NaN).
    _, arrays, _ = training.outputs()
    margin = logged["dyn_repair_margin"]
    assert not np.isnan(margin).any() and (margin[arrays["train_has_bug"] == 0] == 0).all()


def test_clean_takes_the_train_accuracies_and_ginis_from_the_measurement_pass(tmp_path):
    training = tiny_training(tmp_path, "clean")
    run_step(training)
    row, _ = training.measure(0)
    measured = bug_training.summarize(bug_training.measure(training.model, training.train, training.train_measured,
                                                           training.config, "cpu"))  # fmt: skip
    for k in ("loc_acc", "repair_acc", "joint_acc", "no_bug_acc", "gini_loc", "gini_repair"):
        got, want = row[k if k.startswith("gini") else f"train_{k}"], measured[k]
        assert (np.isnan(got) and np.isnan(want)) or got == pytest.approx(want), k


def test_the_in_step_records_go_on_from_a_mid_step_state(tmp_path):
    """What codemem.train saves at a signal mid-step (`step_state`) and puts back after `batches`
    (`load_step_state`): the resumed step logs what an uninterrupted one does."""
    whole = tiny_training(tmp_path / "a", "study", measure_samples=0, budget=40)
    batches = whole.batches(0)
    assert len(batches) > 1
    state = None
    for k, batch in enumerate(batches):
        whole.loss(batch)
        if k == 0:  # through a checkpoint file, as codemem.train saves it
            buffer = io.BytesIO()
            torch.save(whole.step_state(), buffer)
            buffer.seek(0)
            state = torch.load(buffer, weights_only=False)
    resumed = tiny_training(tmp_path / "b", "study", measure_samples=0, budget=40)
    resumed.batches(0)
    resumed.load_step_state(state)
    for batch in batches[1:]:
        resumed.loss(batch)
    a, b = whole.in_step(), resumed.in_step()
    assert a.keys() == b.keys() == bug_training.IN_STEP.keys()
    assert all(np.array_equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)
