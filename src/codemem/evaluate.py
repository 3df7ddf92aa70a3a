"""evaluate: the run's final metrics, its sorted score curve and its figures.

- `metrics/metrics.json`: the final epoch's values (what `dvc metrics diff` compares) and counts;
  which values is the task's choice (codemem.methodname, codemem.varmisuse).
- `plots/scores.csv`: test samples ranked by their predicted score averaged over all epochs, highest
  first (the study's Figures 4-5). MethodName: the probability of the predicted name under a softmax
  over the whole target vocabulary (the paper's formula, not the authors' top-10 softmax);
  VarMisuse: the probability of the predicted location.
- `plots/study.csv`: the study's per-epoch curves under the same columns for every task (blank where
  a task has none), so that dvc.yaml's plots draw one panel per figure for either task without
  warnings: `train`/`test` = sub-token F1 (MethodName) or localization accuracy (VarMisuse),
  `train_repair`/`test_repair` = repair accuracy, `gini` = Gini of the per-sample training loss
  (VarMisuse: location loss), `gini_repair`, `csr` = critical sample ratio.
- `plots/curves.png`, `plots/scores.png`: the run's curves, readable offline.
- Mislabel detection (codemem.detection): each signal's AUROC, AUPRC and precision at k against the
  labels the corrupt stage flipped, in `metrics.json` under `detection` and in `plots/detection.csv`;
  `plots/detection.png` draws the ROC and precision-recall curves and the data map. At noise 0 no
  label was flipped: there is nothing to score, and the figure says so.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from codemem import detection, storage, task
from codemem.errors import MissingInputError
from codemem.params import Params
from codemem.storage import PROJECT, Layout

STUDY_COLUMNS = ("epoch", "train", "test", "train_repair", "test_repair", "gini", "gini_repair", "csr")


def study_table(history: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """epochs.csv -> plots/study.csv: the task's columns renamed to the shared ones, the rest blank."""
    named = {"epoch": "epoch", **columns}
    return pd.DataFrame({c: history[named[c]] if c in named else np.nan for c in STUDY_COLUMNS})


def sorted_scores(per_epoch_scores: np.ndarray) -> np.ndarray:
    """(epochs, samples) scores -> each sample's mean over epochs, sorted descending."""
    if per_epoch_scores.size == 0:
        return np.zeros(0)
    return np.sort(per_epoch_scores.mean(axis=0))[::-1]


def draw_scores(scores: np.ndarray, title: str, plots_dir: Path, ylabel: str) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.8))
    ax.plot(np.arange(1, len(scores) + 1), scores, color="C3")
    ax.set(title="test samples by mean predicted score", xlabel="rank", ylabel=ylabel, ylim=(0, 1.02))
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(plots_dir / "scores.png", dpi=100, metadata={"Software": None})
    plt.close(fig)


def run(params: Params, layout: Layout = PROJECT) -> dict:
    spec = task.get(params.task)
    history = pd.read_csv(storage.require(layout.epochs_csv, "train"))
    if history.empty:
        raise MissingInputError(f"{layout.epochs_csv} has no epochs: run the train stage first (`dvc repro train`)")
    counts = json.loads(storage.require(layout.logs / "counts.json", "train").read_text())
    with np.load(layout.logs / "per_sample.npz") as z:
        scores = sorted_scores(z["test_score"])
        dynamics = {k: z[k] for k in (*detection.DYNAMICS, "in_step_loss") if k in z}
        flipped = z.get("flipped")
    result = spec.final_metrics(history.iloc[-1], counts, params)
    if "retrain" in counts:  # train.drop_flagged: these metrics are the retrained run's
        result["retrain"] = counts["retrain"]
    found = {}
    if flipped is not None and dynamics:
        found = detection.evaluate(dynamics, flipped) if flipped.any() else {}
        result["detection"] = found | {"flipped": int(flipped.sum()), "measured": len(flipped)}
    rows = [{"signal": name, **values} for name, values in found.items()]
    storage.atomic_write(layout.plots / "detection.csv",
                         pd.DataFrame(rows, columns=["signal", "auroc", "auprc", "precision_at_k"]).to_csv(index=False))
    storage.atomic_write(layout.metrics_json, json.dumps(result, indent=2) + "\n")
    table = pd.DataFrame({"rank": np.arange(1, len(scores) + 1), "score": np.round(scores, 6)})
    storage.atomic_write(layout.plots / "scores.csv", table.to_csv(index=False))
    storage.atomic_write(layout.plots / "study.csv", study_table(history, spec.study_columns).to_csv(index=False))
    if params.evaluate.figures:
        import matplotlib

        matplotlib.use("Agg")  # files only; no display needed
        # Which measurements made the figure (TrainParams.measure): the study's or the cleaner variants.
        how = {"study": "Gini of in-step losses", "clean": "Gini after each epoch"}[params.train.measure]
        title = f"{params.model} on {params.dataset}, noise {params.noise:g} ({params.profile} profile; {how})"
        spec.draw(history, title, layout.plots)
        draw_scores(scores, title, layout.plots, spec.score_labels[params.train.measure])
        detection.draw(dynamics, flipped if flipped is not None and dynamics else np.zeros(0, bool),
                       f"{title}: which training labels are wrong?", layout.plots / "detection.png")
    return result
