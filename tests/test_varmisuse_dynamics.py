"""VarMisuse's training dynamics for mislabel detection: the location pointer's margin, probability and
correctness of the given label, and which measured training samples the corrupt stage flipped."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from codemem.params import from_dict
from codemem.storage import Layout
from codemem.varmisuse import bug_batches, bug_training, great_format
from codemem.varmisuse.pointer_model import varmisuse_dynamics, varmisuse_losses, varmisuse_predictions

TINY_GREAT = {"hidden": 32, "num_layers": 1, "num_heads": 2, "attention_dim": 32, "ff_dim": 64}


def hand_logits():
    """Two samples, 5 positions; the second's last two are padding. Location logits [..., 0], repair
    logits [..., 1]; padded positions hold the largest logits, which must not count."""
    logits = torch.zeros(2, 5, 2)
    logits[0, :, 0] = torch.tensor([0.5, 2.0, -1.0, 1.0, 0.0])
    logits[0, :, 1] = torch.tensor([0.0, 1.0, 3.0, 2.5, 4.0])
    logits[1, :, 0] = torch.tensor([1.5, 0.0, 1.0, 9.0, 9.0])
    logits[1, :, 1] = torch.tensor([0.0, 2.0, 1.0, 9.0, 9.0])
    token_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)
    has_bug = torch.tensor([True, False])
    location = torch.tensor([3, 0])  # buggy at 3; clean: the no-bug slot 0
    targets = torch.tensor([[0, 0, 1, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.bool)
    candidates = torch.tensor([[0, 1, 1, 1, 0], [0, 1, 1, 0, 0]], dtype=torch.bool)
    return logits, token_mask, has_bug, location, targets, candidates


def test_margins_and_probability_on_a_hand_computed_case():
    args = hand_logits()
    d = varmisuse_dynamics(*args)
    # Sample 0: given location 3 (logit 1.0), best other 2.0 (position 1). Sample 1: given slot 0 (1.5),
    # best other valid 1.0 (position 2; the padded 9.0s do not count).
    assert d["loc_margin"].tolist() == pytest.approx([1.0 - 2.0, 1.5 - 1.0])
    # Repair, sample 0: target 2 (3.0) against the other candidates 1, 3 (best 2.5); position 4 (4.0) is
    # no candidate. Sample 1 is labelled clean: no repair label.
    assert d["repair_margin"][0].item() == pytest.approx(0.5) and math.isnan(d["repair_margin"][1].item())
    # The given location's probability is the location softmax's, i.e. exp(-location loss).
    loc_loss, _ = varmisuse_losses(*args)
    expected0 = math.exp(1.0) / sum(math.exp(x) for x in (0.5, 2.0, -1.0, 1.0, 0.0))
    expected1 = math.exp(1.5) / sum(math.exp(x) for x in (1.5, 0.0, 1.0))
    assert d["loc_given_prob"].tolist() == pytest.approx([expected0, expected1])
    assert d["loc_given_prob"].tolist() == pytest.approx(torch.exp(-loc_loss).tolist())
    # Correct exactly where the margin is positive (no ties): the predicted location is the given one.
    assert varmisuse_predictions(*args)["loc_correct"].tolist() == [False, True]
    # Every candidate a target (noise does that to a sample with <= 3 candidates): no other candidate.
    logits, token_mask, has_bug, location, _, candidates = args
    assert varmisuse_dynamics(logits, token_mask, has_bug, location, candidates, candidates)["repair_margin"][0] == math.inf


def sample(has_bug: bool, candidates: list, loc: int = 0, targets: list | None = None, length: int = 12) -> dict:
    return {"source_tokens": ["#NEWLINE#"] + [f"t{i}" for i in range(1, length)], "has_bug": has_bug,
            "error_location": loc, "repair_targets": targets or [], "repair_candidates": candidates,
            "edges": [[1, 2, 9, "enum_NEXT_SYNTAX"]], "bug_kind": int(has_bug),
            "bug_kind_name": "VARIABLE_MISUSE" if has_bug else "NONE"}  # fmt: skip


def test_flipped_marks_the_flips_among_the_measured_samples_and_the_logged_margins_are_the_logits(tmp_path):
    """Lines 1 and 4 of train.jsonl are over max_length: Split rows and train.jsonl lines differ, and
    `flipped` must follow the lines (flips.tsv's `sample`)."""
    layout = Layout(tmp_path)
    train = [sample(i % 2 == 1, [1, 2, 3, 5], loc=4 if i % 2 else 0, targets=[2, 5] if i % 2 else None,
                    length=600 if i in (1, 4) else 8 + i) for i in range(12)]  # fmt: skip
    flips = [0, 1, 3, 4, 6, 9]  # 1 and 4 are not in the Split
    great_format.write_shard(layout.noisy / "train.jsonl", train, validate=False)
    (layout.noisy / "flips.tsv").write_text("sample\ttrue_bug\tnoisy_bug\terror_location\trepair_targets\n"
                                            + "".join(f"{i}\t0\t1\t4\t2,5\n" for i in flips))  # fmt: skip
    great_format.write_shard(layout.samples / "eval.jsonl", train[:3], validate=False)
    params = from_dict({"dataset": "stdlib-great", "model": "great", "great": TINY_GREAT,
                        "train": {"measure_samples": 7, "heldout": "eval", "measure": "clean"}})  # fmt: skip
    torch.manual_seed(0)
    training = bug_training.VarMisuseTraining(params, layout, "cpu")
    lines = training.train.line[training.train_measured]
    assert training.train.line.tolist() == [0, 2, 3, 5, 6, 7, 8, 9, 10, 11] and len(lines) == 7
    _, arrays, _ = training.outputs()
    assert arrays["flipped"].dtype == np.int8
    assert arrays["flipped"].tolist() == [int(line in flips) for line in lines.tolist()]
    assert np.array_equal(arrays["train_line"], lines)

    row, logged = training.measure(0)
    assert {"dyn_loss", "dyn_margin", "dyn_prob", "dyn_correct"} <= logged.keys()
    assert np.array_equal(logged["dyn_loss"], logged["train_loc_loss"])
    np.testing.assert_allclose(logged["dyn_prob"], np.exp(-logged["dyn_loss"].astype(np.float64)), rtol=1e-5)
    # Recompute from the model's logits, one sample at a time, with numpy.
    training.model.eval()
    for j, i in enumerate(training.train_measured.tolist()):
        batch = bug_batches.collate(training.train, [i], "cpu")
        with torch.no_grad():
            logits = training.model(batch.subtokens, batch.token_mask, batch.edges)[0].double().numpy()
        loc, rep = logits[:, 0], logits[:, 1]
        valid = batch.token_mask[0].numpy()
        # The repair pointer's margin: best target minus best other candidate; 0 (no label) if clean.
        support = valid & batch.candidates[0].numpy()
        targets = support & batch.targets[0].numpy()
        repair = rep[targets].max() - rep[support & ~targets].max() if training.train.has_bug[i] else 0.0
        assert logged["dyn_repair_margin"][j] == pytest.approx(repair, abs=1e-5)
        given = int(training.train.error_location[i])
        others = valid.copy()
        others[given] = False
        assert logged["dyn_margin"][j] == pytest.approx(loc[given] - loc[others].max(), abs=1e-5)
        assert logged["dyn_correct"][j] == int(np.argmax(np.where(valid, loc, -np.inf)) == given)
    # `clean`: the location accuracy over buggy samples is the share of the measured ones whose given
    # location is predicted (`study` takes it from the training step: tests/test_varmisuse_study.py).
    buggy = arrays["train_has_bug"].astype(bool)
    if buggy.any():
        assert row["train_loc_acc"] == pytest.approx(logged["dyn_correct"][buggy].mean())


def test_a_flips_file_without_its_sample_column_is_an_input_error(tmp_path):
    from codemem.errors import InputError

    (tmp_path / "flips.tsv").write_text("label\tx\n3\ty\n")
    with pytest.raises(InputError, match="sample"):
        bug_training.read_flips(tmp_path / "flips.tsv")
    (tmp_path / "flips.tsv").write_text("sample\ttrue_bug\tnoisy_bug\terror_location\trepair_targets\n")
    assert bug_training.read_flips(tmp_path / "flips.tsv").tolist() == []
