"""The study's metrics against hand-computed cases."""

import itertools

import numpy as np
import pytest

from codemem.metrics import (
    OOV,
    changed_variant_ratio,
    critical_sample_ratio,
    first_possible_name,
    gini,
    subtoken_f1,
)


def gini_by_definition(values):
    """G = sum_i sum_j |L_i - L_j| / (2 n sum_i L_i), the O(n^2) definition."""
    n, total = len(values), sum(values)
    return sum(abs(a - b) for a, b in itertools.product(values, values)) / (2 * n * total)


def test_gini_hand_computed():
    assert gini([1, 1, 1, 1]) == 0.0
    # one of four holds everything: sum|.| = 2*3*4 = 24, 2*n*sum = 2*4*4 = 32 -> 0.75
    assert gini([0, 0, 0, 4]) == pytest.approx(0.75)
    # [1, 2, 3]: pairs |1-2|+|1-3|+|2-3| = 4, doubled 8; 2*3*6 = 36 -> 2/9
    assert gini([3, 1, 2]) == pytest.approx(2 / 9)


@pytest.mark.parametrize("seed", range(5))
def test_gini_equals_quadratic_definition(seed):
    values = np.random.default_rng(seed).exponential(size=57).tolist()
    assert gini(values) == pytest.approx(gini_by_definition(values), rel=1e-12)


def test_gini_edge_cases():
    assert gini([]) == 0.0
    assert gini([0.0, 0.0]) == 0.0
    with pytest.raises(ValueError):
        gini([-1.0, 2.0])


def test_first_possible_name_skips_oov_and_impossible():
    assert first_possible_name([OOV, "get|x1", "to|string", "equals"]) == "to|string"
    assert first_possible_name([OOV]) is None


def test_subtoken_f1_counts_duplicates_and_oov_truth():
    # predicted "get|get|name" vs true "get|name": TP = 3 (both gets count), FP = 0, FN = 0
    f = subtoken_f1(["get|name"], ["get|get|name"])
    assert (f.true_positive, f.false_positive, f.false_negative) == (3, 0, 0)
    # a true name out of the vocabulary still counts: predicted "get|value" vs true "compute|hash"
    # and a sample without a possible name in its top 10 is left out, as the study's patched
    # SubtokensEvaluationMetric does (the unpatched original stops with an IndexError).
    f = subtoken_f1(["set|value", "compute|hash", "run"], ["get|value", "get|value", None])
    # sample 1: TP value, FP get, FN set; sample 2: FP get, value, FN compute, hash; sample 3: left out
    assert (f.true_positive, f.false_positive, f.false_negative) == (1, 3, 3)
    assert f.precision == pytest.approx(1 / 4)
    assert f.recall == pytest.approx(1 / 4)
    assert f.f1 == pytest.approx(1 / 4)


def test_subtoken_f1_zero_when_nothing_right():
    f = subtoken_f1(["a|b"], ["c"])
    assert f.f1 == 0.0 and f.precision == 0.0 and f.recall == 0.0


def test_critical_sample_ratio_with_a_controlled_model():
    # A "model" that predicts the name from whether the variable is called `x`:
    # renaming x changes its prediction, renaming anything else does not.
    def model(variables):
        return "uses|x" if "x" in variables else "other"

    methods = [["x", "y"], ["a"], ["b", "c"], []]  # the last has nothing to rename
    original = [model(v) for v in methods]
    variants, owner = [], []
    for i, variables in enumerate(methods):
        for v in variables:
            renamed = [("var1" if w == v else w) for w in variables]
            variants.append(model(renamed))
            owner.append(i)
    csr, critical, transformable = critical_sample_ratio(original, variants, owner, len(methods))
    assert (critical, transformable) == (1, 3)
    assert csr == pytest.approx(1 / 3)
    assert critical_sample_ratio(["a"], [], [], 1) == (0.0, 0, 0)
    # Over variants (the study's count): x->var1 changes sample 0's, y->var1 does not; a, b, c
    # change nothing: 1 of 5 variants against 1 of 3 samples.
    assert changed_variant_ratio(original, variants, owner) == (pytest.approx(1 / 5), 1, 5)
    assert changed_variant_ratio(["a"], [], []) == (0.0, 0, 0)


def test_changed_variant_ratio_weighs_samples_by_their_variants():
    # Sample 0 has four variants, all changed; sample 1 one, unchanged: 4/5 over variants, 1/2 over
    # samples. With one variant a sample the two agree.
    original, variants, owner = ["p", "q"], ["z", "z", "z", "z", "q"], [0, 0, 0, 0, 1]
    assert changed_variant_ratio(original, variants, owner)[0] == pytest.approx(0.8)
    assert critical_sample_ratio(original, variants, owner, 2)[0] == pytest.approx(0.5)
    assert changed_variant_ratio(["p", "q"], ["z", "q"], [0, 1])[0] == critical_sample_ratio(
        ["p", "q"], ["z", "q"], [0, 1], 2)[0]
    with pytest.raises(ValueError):
        changed_variant_ratio(["p"], ["z"], [])


def test_subtoken_f1_code2seq_variant():
    from codemem.metrics import subtoken_f1_code2seq

    specials = ("<UNK>", "<PAD>", "</S>")  # the original's filter_impossible_names, also the default
    # Exact concatenated match after dropping specials: TP += len(true) -> 2, even with <UNK> predicted.
    f = subtoken_f1_code2seq(["to|string"], ["to|<UNK>|string"], ignore=specials)
    assert (f.true_positive, f.false_positive, f.false_negative) == (2, 0, 0)
    # "tostring" as one predicted sub-token concatenates equal too: the original counts it as exact.
    f = subtoken_f1_code2seq(["to|string"], ["tostring"], ignore=specials)
    assert (f.true_positive, f.false_positive, f.false_negative) == (2, 0, 0)
    # Otherwise per sub-token; duplicates count: get|get|size vs get|name -> TP 2 (get, get), FP 1, FN 1.
    f = subtoken_f1_code2seq(["get|name"], ["get|get|size"], ignore=specials)
    assert (f.true_positive, f.false_positive, f.false_negative) == (2, 1, 1)
    # No prediction at all.
    f = subtoken_f1_code2seq(["run"], [None], ignore=specials)
    assert (f.true_positive, f.false_positive, f.false_negative) == (0, 0, 1)
    # The default drops what the original drops; <S> is not among them and counts as a false positive.
    f = subtoken_f1_code2seq(["get|name"], ["get|</S>|<PAD>|name|<S>"])
    assert (f.true_positive, f.false_positive, f.false_negative) == (2, 1, 0)
