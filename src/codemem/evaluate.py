"""evaluate: the run's final metrics, its sorted score curve and its figures.

- `metrics/metrics.json`: the final epoch's values (what `dvc metrics diff` compares) and counts.
- `plots/scores.csv`: test samples ranked by their predicted score averaged over all epochs, highest
  first (the study's Figures 4-5). Score = softmax probability of the predicted name over the whole
  target vocabulary (the paper's formula, not the authors' top-10 softmax).
- `plots/curves.png`, `plots/scores.png`: the run's curves, readable offline.

VarMisuse (one row per step): localization, repair, joint and no-bug accuracy on the held-out eval
samples (`loc_acc`, ...) and on the noisy training samples (`train_loc_acc`, ...), the Gini of the
per-sample location and repair losses, and the score = probability of the predicted location.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from codemem import io
from codemem.params import Params

FINAL_KEYS = ["test_f1", "train_f1", "test_precision", "test_recall", "gini", "csr", "test_score", "train_score"]
# VarMisuse: epochs.csv column -> metrics.json key (held-out accuracies without a prefix, as the study).
VARMISUSE_KEYS = {
    "test_loc_acc": "loc_acc", "test_repair_acc": "repair_acc", "test_joint_acc": "joint_acc",
    "test_no_bug_acc": "no_bug_acc", "train_loc_acc": "train_loc_acc", "train_repair_acc": "train_repair_acc",
    "train_joint_acc": "train_joint_acc", "train_no_bug_acc": "train_no_bug_acc", "gini_loc": "gini_loc",
    "gini_repair": "gini_repair", "test_score": "test_score", "train_score": "train_score",
    "test_repair_mass": "test_repair_mass", "train_loss": "train_loss",
}  # fmt: skip


def sorted_scores(per_epoch_scores: np.ndarray) -> np.ndarray:
    """(epochs, samples) scores -> each sample's mean over epochs, sorted descending."""
    if per_epoch_scores.size == 0:
        return np.zeros(0)
    return np.sort(per_epoch_scores.mean(axis=0))[::-1]


def final_metrics(history: pd.DataFrame, counts: dict, params: Params) -> dict:
    last = history.iloc[-1]
    out = {k: round(float(last[k]), 6) for k in FINAL_KEYS}
    out["precision"], out["recall"] = out.pop("test_precision"), out.pop("test_recall")
    out |= {
        "epochs": int(last["epoch"]),
        "noise": params.noise,
        "dataset": params.dataset,
        "model": params.model,
        "seed": params.seed,
        "train_samples": counts["train_samples"],
        "test_samples": counts["test_samples"],
        "csr_transformable": int(last["csr_transformable"]),
        "parameters": counts["parameters"],
    }
    return out


def _value(x) -> float | None:
    """A rounded float, or None where there is none (NaN: no sample of that kind), which JSON can hold."""
    x = float(x)
    return None if np.isnan(x) else round(x, 6)


def final_metrics_varmisuse(history: pd.DataFrame, counts: dict, params: Params) -> dict:
    last = history.iloc[-1]
    out = {key: _value(last[column]) for column, key in VARMISUSE_KEYS.items()}
    out |= {
        "epochs": int(last["epoch"]),
        "samples_seen": int(last["samples_seen"]),
        "noise": params.noise,
        "dataset": params.dataset,
        "model": params.model,
        "seed": params.seed,
        **{k: counts[k] for k in ("train_samples", "test_samples", "train_measured", "test_measured",
                                  "samples_per_step", "parameters")},
    }  # fmt: skip
    return out


def draw_varmisuse(history: pd.DataFrame, title: str, plots_dir: Path) -> None:
    """Accuracies per step (train solid, test dashed) and the two Gini coefficients."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    e = history["epoch"]
    for color, (name, label) in enumerate([("loc", "localization"), ("repair", "repair"), ("joint", "joint"),
                                           ("no_bug", "no bug")]):  # fmt: skip
        axes[0].plot(e, history[f"train_{name}_acc"], "-", color=f"C{color}", label=f"{label} (train)")
        axes[0].plot(e, history[f"test_{name}_acc"], "--", color=f"C{color}", label=f"{label} (test)")
    axes[0].set(title="accuracy (train solid, test dashed)", xlabel="step", ylim=(0, 1.02))
    axes[0].legend(fontsize=7, ncol=2)
    axes[1].plot(e, history["gini_loc"], color="C4", label="location loss")
    axes[1].plot(e, history["gini_repair"], color="C5", label="repair loss")
    axes[1].set(title="Gini of per-sample training loss", xlabel="step", ylim=(0, 1.02))
    axes[1].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(plots_dir / "curves.png", dpi=100, metadata={"Software": None})
    plt.close(fig)


def draw_scores(scores: np.ndarray, title: str, plots_dir: Path, ylabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.8))
    ax.plot(np.arange(1, len(scores) + 1), scores, color="C3")
    ax.set(title="test samples by mean predicted score", xlabel="rank", ylabel=ylabel, ylim=(0, 1.02))
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(plots_dir / "scores.png", dpi=100, metadata={"Software": None})
    plt.close(fig)


def draw(history: pd.DataFrame, scores: np.ndarray, title: str, plots_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    e = history["epoch"]
    axes[0].plot(e, history["train_f1"], "-", color="C0", label="train")
    axes[0].plot(e, history["test_f1"], "--", color="C0", label="test")
    axes[0].set(title="sub-token F1", xlabel="epoch", ylim=(0, 1.02))
    axes[0].legend()
    axes[1].plot(e, history["gini"], color="C1")
    axes[1].set(title="Gini of per-sample training loss", xlabel="epoch", ylim=(0, 1.02))
    axes[2].plot(e, history["csr"], color="C2")
    axes[2].set(title="critical sample ratio (test)", xlabel="epoch", ylim=(0, 1.02))
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(plots_dir / "curves.png", dpi=100, metadata={"Software": None})
    plt.close(fig)

    draw_scores(scores, title, plots_dir, "score (full softmax)")


def run(params: Params, logs_dir=Path("build/logs"), epochs_csv=Path("plots/epochs.csv"),
        metrics_json=Path("metrics/metrics.json"), plots_dir=Path("plots")) -> dict:  # fmt: skip
    history = pd.read_csv(epochs_csv)
    if history.empty:
        raise RuntimeError(f"{epochs_csv} has no epochs: run the train stage first")
    counts = json.loads((logs_dir / "counts.json").read_text())
    with np.load(logs_dir / "per_sample.npz") as z:
        scores = sorted_scores(z["test_score"])
    varmisuse = params.task == "varmisuse"
    result = (final_metrics_varmisuse if varmisuse else final_metrics)(history, counts, params)
    io.atomic_write(metrics_json, json.dumps(result, indent=2) + "\n")
    table = pd.DataFrame({"rank": np.arange(1, len(scores) + 1), "score": np.round(scores, 6)})
    io.atomic_write(plots_dir / "scores.csv", table.to_csv(index=False))
    if params.evaluate.figures:
        title = f"{params.model} on {params.dataset}, noise {params.noise:g}"
        if varmisuse:
            draw_varmisuse(history, title, plots_dir)
            draw_scores(scores, title, plots_dir, "probability of the predicted location")
        else:
            draw(history, scores, title, plots_dir)
    return result
