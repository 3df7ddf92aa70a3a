"""Mislabel detection (codemem.detection): each score on hand-made dynamics with a known answer, the
ranking measures against scikit-learn's, AUM against the `aum` package's AUMCalculator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from codemem import detection


def test_forgetting_counts_right_to_wrong_and_never_learned_as_always_forgotten():
    correct = np.array([[1, 0, 0, 1],
                        [0, 0, 1, 1],
                        [1, 0, 0, 1],
                        [0, 0, 1, 1]])  # fmt: skip
    # sample 0: right, wrong, right, wrong = 2 events; 1: never right = 4 (epochs); 2: 1 event; 3: none
    assert detection.forgetting_events(correct).tolist() == [2, 4, 1, 0]


def test_data_map_is_the_mean_and_spread_of_the_given_labels_probability():
    prob = np.array([[0.2, 0.9], [0.4, 0.9], [0.6, 0.9]])
    confidence, variability = detection.data_map(prob)
    assert confidence == pytest.approx([0.4, 0.9])
    assert variability == pytest.approx([np.sqrt(((0.2 - 0.4) ** 2 + 0 + (0.6 - 0.4) ** 2) / 3), 0.0])


def test_signals_rank_the_mislabeled_sample_first():
    # Two clean samples learned at once; a flipped one keeps a high loss, a negative margin, low probability.
    dynamics = {
        "dyn_loss": np.array([[0.5, 0.4, 3.0], [0.1, 0.1, 2.5]]),
        "dyn_margin": np.array([[1.0, 2.0, -1.0], [3.0, 3.0, -0.5]]),
        "dyn_prob": np.array([[0.6, 0.7, 0.05], [0.9, 0.9, 0.1]]),
        "dyn_correct": np.array([[1, 1, 0], [1, 1, 0]]),
    }
    flipped = np.array([0, 0, 1])
    scores = detection.signals(dynamics)
    assert set(scores) == {"loss", "aum", "forgetting", "low_confidence", "variability"}
    assert scores["aum"].tolist() == [-2.0, -2.5, 0.75]
    for name in ("loss", "aum", "forgetting", "low_confidence"):
        assert np.argmax(scores[name]) == 2, name
        assert detection.evaluate(dynamics, flipped)[name] == {"auroc": 1.0, "auprc": 1.0, "precision_at_k": 1.0}
    # A model without logits for a margin (NaN): no AUM signal.
    assert "aum" not in detection.signals(dynamics | {"dyn_margin": np.full((2, 3), np.nan)})


def test_ranking_measures_by_hand():
    scores, flipped = np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 0, 1, 0])
    # pairs (pos, neg): (0.9 > 0.8), (0.9 > 0.6), (0.7 < 0.8), (0.7 > 0.6): 3 of 4
    assert detection.auroc(scores, flipped) == 0.75
    # precision at the positives: 1/1 at rank 1, 2/3 at rank 3 -> (1 + 2/3) / 2
    assert detection.auprc(scores, flipped) == pytest.approx((1 + 2 / 3) / 2)
    assert detection.precision_at_k(scores, flipped) == 0.5
    assert np.isnan(detection.auroc(scores, np.zeros(4)))


def test_auroc_and_auprc_equal_scikit_learns_with_ties():
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(5, 300))
        flipped = rng.random(n) < rng.uniform(0.05, 0.6)
        flipped[0], flipped[1] = True, False
        scores = np.round(rng.normal(size=n) + flipped, int(rng.integers(0, 3)))  # rounding makes ties
        assert detection.auroc(scores, flipped) == pytest.approx(roc_auc_score(flipped, scores), abs=1e-12)
        assert detection.auprc(scores, flipped) == pytest.approx(average_precision_score(flipped, scores), abs=1e-12)
        fpr, tpr = detection.roc_points(scores, flipped)
        assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc_score(flipped, scores), abs=1e-12)


def test_our_aum_equals_the_aum_packages(tmp_path):
    from aum import AUMCalculator

    rng = torch.Generator().manual_seed(0)
    n, classes, epochs = 50, 7, 5
    labels = torch.randint(0, classes, (n,), generator=rng)
    calculator = AUMCalculator(str(tmp_path), compressed=True)
    margins = []
    for _ in range(epochs):
        logits = torch.randn(n, classes, generator=rng, dtype=torch.float64) * 3
        calculator.update(logits, labels, list(range(n)))
        margins.append(detection.label_margins(logits, labels).numpy())
    calculator.finalize()
    theirs = pd.read_csv(tmp_path / "aum_values.csv").set_index("sample_id").sort_index()["aum"].to_numpy()
    np.testing.assert_allclose(detection.area_under_margin(np.stack(margins)), theirs, rtol=0, atol=1e-12)
