"""corrupt: the study's label noise ("Y_Label_Shuffling"), on the training split only.

MethodName (Rabin et al. 2022, replication package `CI-Memorization`): for each method name, shuffle
that name's training samples and relabel the first floor(p * n) of them with a name drawn uniformly
from the unique training names other than the true one, so a noisy label never equals the true
label. Validation and test stay clean. The originals seed from the clock; we seed from params.yaml
and write down which samples changed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from codemem import io
from codemem.params import Params


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
    for name in unique:  # sorted, so the draw order depends only on the seed
        members = np.array(by_name[name])
        rng.shuffle(members)
        others = [u for u in unique if u != name]
        for i in members[: math.floor(noise * len(members))]:
            noisy[i] = others[rng.integers(len(others))]
            changed.append(int(i))
    return noisy, np.array(sorted(changed), dtype=np.int64)


def run(params: Params, samples_dir: Path = Path("build/samples"), out_dir: Path = Path("build/noisy")) -> dict:
    data = io.load_samples(samples_dir, formats=())
    labels = [str(data.labels[i]) for i in data.split_labels["train"]]
    rng = np.random.default_rng([params.seed, 1])  # stream 1: noise (0 is extraction)
    noisy, changed = corrupt_method_names(labels, params.noise, rng)
    changed_set = set(changed.tolist())
    rows = ["sample\ttrue_label\tnoisy_label\tchanged"]
    rows += [f"{i}\t{t}\t{n}\t{int(i in changed_set)}" for i, (t, n) in enumerate(zip(labels, noisy))]
    summary = {
        "noise": params.noise,
        "seed": params.seed,
        "train_samples": len(labels),
        "changed": len(changed),
        "unique_names": len(set(labels)),
    }
    with io.atomic_dir(out_dir) as tmp:
        (tmp / "labels.tsv").write_text("\n".join(rows) + "\n")
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def load_noisy_labels(out_dir: Path = Path("build/noisy")) -> list[str]:
    lines = (out_dir / "labels.tsv").read_text().splitlines()[1:]
    return [line.split("\t")[2] for line in lines]
