"""Where the study's CSR over variants comes from: a trained model's changed variants by how many
variables their method has.

    python repro/csr_by_variables.py RUN [RUN ...]      # RUN: a project folder after `train`
                                                         # (build/samples, build/model, params.yaml)

The study counts CSR over renaming variants (docs/fidelity.md), one variant per renamable
variable, so a method with many variables weighs as many times as it has them. Java-Top10's test
split has 30,915 variants over 7,100 methods (4.35 a method); jdk-top10's has 1,365 over 619 (2.2).
This prints, for the model in each RUN, its test methods grouped by their number of variants: the
share of those variants whose top-1 prediction differs from the original's, the same for methods
with `extract.max_contexts` contexts or more (the study's re-extraction draws them a fresh sample), and the
CSR over variants of the methods with at least k variants, k chosen so that they average as many
variants a method as Java-Top10's test split: the population the study's count weighs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

STUDY_VARIANTS_PER_METHOD = 30_915 / 7_100  # CI-Memorization csr_all granularity / Java-Top10 test


def per_method(test_pred, variant_pred, owner: np.ndarray, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Per test method: (its number of variants, how many of them change the top-1 prediction)."""
    owner = np.asarray(owner, dtype=np.int64)
    changed = np.fromiter((p != test_pred[i] for p, i in zip(variant_pred, owner.tolist())), dtype=np.int64,
                          count=len(owner))  # fmt: skip
    return np.bincount(owner, minlength=n_samples), np.bincount(owner, weights=changed, minlength=n_samples).astype(int)


def ratio_at_least(variants: np.ndarray, changed: np.ndarray, k: int) -> tuple[float, int, float]:
    """CSR over variants of the methods with >= k variants: (ratio, methods, variants a method)."""
    kept = variants >= k
    total = int(variants[kept].sum())
    return (changed[kept].sum() / total if total else float("nan")), int(kept.sum()), (
        total / kept.sum() if kept.any() else float("nan"))


def matching_k(variants: np.ndarray, target: float = STUDY_VARIANTS_PER_METHOD) -> int:
    """The smallest k whose methods with >= k variants average at least `target` variants each."""
    for k in range(1, int(variants.max(initial=0)) + 1):
        if variants[variants >= k].mean() >= target:
            return k
    return int(variants.max(initial=1))


def predictions(run: Path):
    """(test predictions, variant predictions, variant owners, contexts per test method, max_contexts,
    the run's params), the variants predicted as `MethodNameTraining.measure` does."""
    import torch

    from codemem import params as params_module
    from codemem import storage, task

    params = params_module.load(run / "params.yaml")
    if params.task != "methodname":
        sys.exit(f"{run}: CSR is measured for MethodName models only (this run trains {params.model})")
    layout = storage.Layout(run)
    training = task.get(params.task).prepare(params, layout, torch.device("cpu"))
    weights = storage.require(layout.model / "model.pt", "train")
    training.model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=False)["model"])
    training.model.eval()
    with torch.no_grad():
        _, _, test_pred, _ = training.measure_shared("test", training.eval_batch_size)
        _, _, measured, _ = training.measure_shared("variants", training.eval_batch_size)
    variant_pred = [test_pred[i] for i in training.variant_owner]  # unmeasured ones keep their contexts
    for i, prediction in zip(np.flatnonzero(training.variant_measured).tolist(), measured):
        variant_pred[i] = prediction
    stored = training.tables.contexts["test"]
    contexts = (stored[..., 0] >= 0).sum(axis=1)
    return test_pred, variant_pred, training.variant_owner, contexts, params.extract.max_contexts, params


def report(run: Path) -> None:
    test_pred, variant_pred, owner, contexts, max_contexts, params = predictions(run)
    variants, changed = per_method(test_pred, variant_pred, owner, len(test_pred))
    has = variants > 0
    print(f"\n{run}: {params.model} at noise {params.noise:g}, seed {params.seed}: {len(test_pred)} test methods, "
          f"{has.sum()} with a variable, {variants.sum()} variants ({variants.sum() / len(test_pred):.2f} a method); "
          f"CSR over variants {changed.sum() / max(variants.sum(), 1):.3f}")  # fmt: skip
    print(f"{'variants':>10} {'methods':>8} {'variants':>9} {'changed':>8} {'share':>6}")
    for low, high in ((1, 1), (2, 2), (3, 3), (4, 5), (6, 9), (10, 10**9)):
        group = (variants >= low) & (variants <= high)
        total = int(variants[group].sum())
        label = f"{low}" if low == high else (f"{low}-{high}" if high < 10**9 else f"{low}+")
        print(f"{label:>10} {group.sum():8d} {total:9d} {int(changed[group].sum()):8d} "
              f"{changed[group].sum() / total if total else float('nan'):6.3f}")  # fmt: skip
    # test rows are stored at most max_contexts wide: a full row is a method with that many or more
    for over, words in ((contexts >= max_contexts, f"with {max_contexts} contexts or more"),
                        (contexts < max_contexts, f"under {max_contexts} contexts")):  # fmt: skip
        group = over & has
        print(f"methods {words}: {group.sum()}, their variants {variants[group].sum()}, changed share "
              f"{changed[group].sum() / max(variants[group].sum(), 1):.3f}")  # fmt: skip
    k = matching_k(variants)
    ratio, methods, mean = ratio_at_least(variants, changed, k)
    print(f"methods with >= {k} variants ({methods}, {mean:.2f} a method, Java-Top10's test split "
          f"{STUDY_VARIANTS_PER_METHOD:.2f}): CSR over variants {ratio:.3f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="project folders after train")
    for run in parser.parse_args().runs:
        report(run.resolve())


if __name__ == "__main__":
    main()
