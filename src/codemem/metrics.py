"""The study's metrics as pure functions.

Each cites the definition it implements; tests/test_metrics.py checks them against hand-computed
cases.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

OOV = "<OOV>"
_POSSIBLE_NAME = re.compile(r"^[a-zA-Z|]+$")


def gini(values: Sequence[float] | np.ndarray) -> float:
    """Gini coefficient of non-negative values (the study's inequality of per-sample loss).

    Definition (Rabin et al. 2022, eq. for G): G = sum_i sum_j |L_i - L_j| / (2 n sum_i L_i).
    Computed in O(n log n) on sorted values x_(1) <= ... <= x_(n), using
    sum_i sum_j |x_i - x_j| = 2 sum_i (2i - n - 1) x_(i), so G = sum_i (2i - n - 1) x_(i) / (n sum x).
    Returns 0 for an empty input or when every value is 0 (perfect equality).
    """
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    n = x.size
    total = x.sum()
    if n == 0 or total <= 0:
        return 0.0
    if x[0] < 0:
        raise ValueError("gini is defined here for non-negative values (losses)")
    ranks = np.arange(1, n + 1, dtype=np.float64)
    return float(np.sum((2 * ranks - n - 1) * x) / (n * total))


def first_possible_name(candidates: Iterable[str]) -> str | None:
    """code2vec's `filter_impossible_names`: the first prediction that is not OOV and looks like a
    name (`^[a-zA-Z|]+$`), or None when the top-k holds none."""
    for name in candidates:
        if name != OOV and _POSSIBLE_NAME.match(name):
            return name
    return None


@dataclass(frozen=True)
class F1:
    precision: float
    recall: float
    f1: float
    true_positive: int
    false_positive: int
    false_negative: int


def _f1(tp: int, fp: int, fn: int) -> F1:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return F1(precision, recall, f1, tp, fp, fn)


def subtoken_f1(true_names: Sequence[str], predicted_names: Sequence[str | None]) -> F1:
    """code2vec's sub-token precision/recall/F1, micro-averaged over the samples.

    Names are `|`-joined sub-tokens. Following code2vec's `_update_per_subtoken_statistics`: every
    predicted sub-token found in the true name is a true positive (duplicates all count), every one
    not found a false positive; every true sub-token not predicted a false negative. The true name
    counts even when it is out of the target vocabulary. A sample without a prediction (None: no
    possible name in the top-k) is left out, as the study's patched `SubtokensEvaluationMetric`
    does (the original's `filter_impossible_names(...)[0]` would raise). F1 = 0 when P + R = 0.
    """
    if len(true_names) != len(predicted_names):
        raise ValueError("true_names and predicted_names differ in length")
    tp = fp = fn = 0
    for true, predicted in zip(true_names, predicted_names):
        if predicted is None:
            continue
        counts = _subtoken_counts(true.split("|"), predicted.split("|"))
        tp, fp, fn = tp + counts[0], fp + counts[1], fn + counts[2]
    return _f1(tp, fp, fn)


def _subtoken_counts(true_parts: list[str], predicted_parts: list[str]) -> tuple[int, int, int]:
    """(TP, FP, FN) of one sample, the rule both originals share: a predicted sub-token found in
    the true list is a TP (duplicates count), else a FP; a true sub-token not predicted is a FN."""
    tp = sum(1 for part in predicted_parts if part in true_parts)
    fn = sum(1 for part in true_parts if part not in predicted_parts)
    return tp, len(predicted_parts) - tp, fn


def critical_sample_ratio(
    original: Sequence, variants: Sequence, owner: Sequence[int], n_samples: int
) -> tuple[float, int, int]:
    """Critical sample ratio (Arpit et al. 2017, as adapted to code by Rabin et al. 2022).

    A sample is critical when some semantic-preserving single-place transformation (here: one
    variable renamed to `var<k>`) changes its top-1 prediction. `original[i]` is sample i's
    prediction, `variants[j]` the prediction for variant j of sample `owner[j]`. CSR = critical
    samples / samples that have at least one variant. Returns (csr, critical, transformable);
    csr is 0 when no sample can be transformed.
    """
    if len(variants) != len(owner):
        raise ValueError("variants and owner differ in length")
    transformable = np.zeros(n_samples, dtype=bool)
    critical = np.zeros(n_samples, dtype=bool)
    for prediction, i in zip(variants, owner):
        transformable[i] = True
        if prediction != original[i]:
            critical[i] = True
    n_transformable = int(transformable.sum())
    n_critical = int(critical.sum())
    return (n_critical / n_transformable if n_transformable else 0.0), n_critical, n_transformable


def changed_variant_ratio(original: Sequence, variants: Sequence, owner: Sequence[int]) -> tuple[float, int, int]:
    """The study's CSR as its published figures count it: the share of transformed programs (here:
    renaming variants) whose top-1 prediction differs from their original's.

    CI-Memorization's `csr_all` CSVs for Java-Top10 (code2vec and code2seq, every epoch and noise
    level) are all multiples of 1/30,915, while Java-Top10's test split has 7,100 methods: the
    denominator counts variants (~4.4 a method), not samples. Where every sample has one variant
    this equals `critical_sample_ratio`; otherwise samples with many variables weigh more.
    Returns (ratio, changed, variants); ratio is 0 without variants.
    """
    if len(variants) != len(owner):
        raise ValueError("variants and owner differ in length")
    changed = sum(1 for prediction, i in zip(variants, owner) if prediction != original[i])
    return (changed / len(variants) if len(variants) else 0.0), changed, len(variants)


# code2seq's Common.filter_impossible_names (common.py): the only sub-tokens its evaluation drops.
CODE2SEQ_FILTERED = ("<UNK>", "<PAD>", "</S>")


def subtoken_f1_code2seq(
    true_names: Sequence[str], predicted_names: Sequence[str | None], ignore: Iterable[str] = CODE2SEQ_FILTERED
) -> F1:
    """code2seq's sub-token precision/recall/F1 (`update_per_subtoken_statistics` in its model.py),
    micro-averaged; it differs from code2vec's.

    The sub-tokens in `ignore` (default: what the original's `filter_impossible_names` drops, <UNK>,
    <PAD> and </S>; not <S>) are dropped from both sides. If the remaining sub-tokens concatenate to
    the same string, TP += len(true). Otherwise each predicted sub-token is a TP if it occurs in the
    true list, else a FP, and each true sub-token not predicted is a FN. A predicted name is every
    decoded step's sub-token, those after the end token included (code2seq.predicted_subtokens).
    """
    if len(true_names) != len(predicted_names):
        raise ValueError("true_names and predicted_names differ in length")
    ignored = set(ignore)
    tp = fp = fn = 0
    for true, predicted in zip(true_names, predicted_names):
        true_parts = [p for p in true.split("|") if p and p not in ignored]
        predicted_parts = [p for p in (predicted or "").split("|") if p and p not in ignored]
        if "".join(true_parts) == "".join(predicted_parts):
            tp += len(true_parts)
            continue
        counts = _subtoken_counts(true_parts, predicted_parts)
        tp, fp, fn = tp + counts[0], fp + counts[1], fn + counts[2]
    return _f1(tp, fp, fn)
