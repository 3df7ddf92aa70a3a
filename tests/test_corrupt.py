"""The study's MethodName label noise."""

import math
from collections import Counter

import numpy as np
import pytest

from codemem.corrupt import corrupt_method_names

LABELS = ["get"] * 40 + ["set"] * 30 + ["run"] * 7 + ["equals"] * 3


@pytest.mark.parametrize("noise", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_exact_share_per_name_and_never_the_true_label(noise):
    noisy, changed = corrupt_method_names(LABELS, noise, np.random.default_rng(0))
    per_name = Counter(LABELS[i] for i in changed)
    for name, n in Counter(LABELS).items():
        assert per_name.get(name, 0) == math.floor(noise * n)
    for i, (true, new) in enumerate(zip(LABELS, noisy)):
        assert (new != true) == (i in set(changed.tolist()))
    assert set(noisy) <= set(LABELS)  # drawn from the training names


def test_same_seed_same_flips_different_seed_different_flips():
    a = corrupt_method_names(LABELS, 0.5, np.random.default_rng(1))
    b = corrupt_method_names(LABELS, 0.5, np.random.default_rng(1))
    c = corrupt_method_names(LABELS, 0.5, np.random.default_rng(2))
    assert a[0] == b[0] and a[1].tolist() == b[1].tolist()
    assert a[1].tolist() != c[1].tolist() or a[0] != c[0]


def test_replacements_are_spread_over_the_other_names():
    noisy, changed = corrupt_method_names(["a"] * 3000 + ["b", "c", "d"], 1.0, np.random.default_rng(0))
    drawn = Counter(noisy[i] for i in changed if i < 3000)
    assert set(drawn) == {"b", "c", "d"} and min(drawn.values()) > 900


def test_noise_out_of_range_is_an_error():
    with pytest.raises(ValueError):
        corrupt_method_names(LABELS, 1.5, np.random.default_rng(0))


def test_replacements_are_the_kth_other_name_without_listing_the_others():
    """The draw is `others[k]`, others = the sorted names less the sample's own: computed by index (a
    list per name was quadratic in the number of names, hours on Java-Small); the same draws."""

    def listing_the_others(labels, noise, rng):
        unique, noisy, changed = sorted(set(labels)), list(labels), []
        for name in unique:
            members = np.array([i for i, n in enumerate(labels) if n == name])
            rng.shuffle(members)
            others = [u for u in unique if u != name]
            for i in members[: int(noise * len(members))]:
                noisy[i] = others[rng.integers(len(others))]
                changed.append(int(i))
        return noisy, sorted(changed)

    labels = [f"name{(i * 7) % 13}" for i in range(200)] + ["solo"]
    for noise in (0.25, 0.5, 1.0):
        noisy, changed = corrupt_method_names(labels, noise, np.random.default_rng(3))
        assert (noisy, changed.tolist()) == listing_the_others(labels, noise, np.random.default_rng(3))
