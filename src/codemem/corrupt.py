"""corrupt: the study's label noise ("Y_Label_Shuffling"), on the training split only.

MethodName (Rabin et al. 2022, replication package `CI-Memorization`): for each method name, shuffle
that name's training samples and relabel the first floor(p * n) of them with a name drawn uniformly
from the unique training names other than the true one, so a noisy label never equals the true
label. Validation and test stay clean. The originals seed from the clock; we seed from params.yaml
and write down which samples changed.

VarMisuse (`noise_util.py` of the replication package): flip floor(p * n) training samples chosen at
random. A buggy sample becomes clean (`has_bug` false, `error_location` 0, no repair targets); a
clean one becomes buggy: its integer `repair_candidates` are shuffled, the last becomes the
`error_location` and the first three the `repair_targets`. Tokens and edges are not changed, so a
flipped label contradicts the code: the model can only fit it by memorising. Dev and eval stay clean.
"""

from __future__ import annotations

import math

import numpy as np

from codemem import task
from codemem.params import Params
from codemem.storage import PROJECT, Layout
from codemem.varmisuse import great_format


def corrupt_method_names(labels: list[str], noise: float, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """Return (noisy labels, indices of the changed samples, sorted).

    Per name with n training samples exactly floor(noise * n) are changed; each replacement is drawn
    uniformly from the other unique names. With a single unique name nothing can change.
    """
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise must be in [0, 1], got {noise}")
    unique = sorted(set(labels))
    by_name: dict[str, list[int]] = {name: [] for name in unique}
    for i, name in enumerate(labels):
        by_name[name].append(i)
    noisy = list(labels)
    changed: list[int] = []
    if len(unique) < 2:
        return noisy, np.array([], dtype=np.int64)
    for p, name in enumerate(unique):  # sorted, so the draw order depends only on the seed
        members = np.array(by_name[name])
        rng.shuffle(members)
        for i in members[: math.floor(noise * len(members))]:
            k = int(rng.integers(len(unique) - 1))  # the k-th of the other names, without listing them:
            noisy[i] = unique[k if k < p else k + 1]  # a list per name was O(names^2) (Java-Small: hours)
            changed.append(int(i))
    return noisy, np.array(sorted(changed), dtype=np.int64)


def flip_varmisuse(sample: dict, rng: np.random.Generator) -> dict:
    """One VarMisuse label flipped as the study's `buggy_to_correct` / `correct_to_buggy` do; a new
    dict (the input is not changed). A clean sample without integer candidates cannot be made buggy
    and comes back unchanged."""
    flipped = dict(sample)
    if sample["has_bug"]:
        flipped |= {"has_bug": False, "error_location": 0, "repair_targets": []}
        if "bug_kind" in sample:
            flipped |= {"bug_kind": 0, "bug_kind_name": "NONE"}
        return flipped
    candidates = great_format.candidate_positions(sample)
    if not candidates:
        return flipped
    rng.shuffle(candidates)
    flipped |= {"has_bug": True, "error_location": candidates[-1], "repair_targets": candidates[:3]}
    if "bug_kind" in sample:
        flipped |= {"bug_kind": 1, "bug_kind_name": "VARIABLE_MISUSE"}
    return flipped


def corrupt_varmisuse(samples: list[dict], noise: float, rng: np.random.Generator) -> tuple[list[dict], np.ndarray]:
    """Return (noisy samples, indices of the flipped samples, sorted).

    Exactly floor(noise * n) samples, drawn without replacement, are flipped by `flip_varmisuse`
    (a clean sample with no integer candidate cannot be flipped; it is not counted). The inputs are
    not changed; unflipped samples are returned as the same objects.
    """
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise must be in [0, 1], got {noise}")
    chosen = np.sort(rng.permutation(len(samples))[: math.floor(noise * len(samples))])
    noisy, flipped = list(samples), []
    for i in chosen.tolist():  # ascending, so each sample's shuffle depends only on the seed
        noisy[i] = flip_varmisuse(samples[i], rng)
        if noisy[i]["has_bug"] != samples[i]["has_bug"]:
            flipped.append(i)
    return noisy, np.array(flipped, dtype=np.int64)


def run(params: Params, layout: Layout = PROJECT) -> dict:
    """The corrupt stage: the task writes build/noisy from build/samples with noise stream 1 (0 is
    extraction's)."""
    return task.get(params.task).corrupt(params, layout, np.random.default_rng([params.seed, 1]))
