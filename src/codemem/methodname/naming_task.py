"""The MethodName task (code2vec, code2seq): predict a Java method's name from its body.

Samples are path-contexts (codemem.methodname.java_corpora); the noise replaces training names
(`corrupt.corrupt_method_names`); training and per-epoch measurement are name_training's and each
model's `*_training` module; the final metrics are the study's: sub-token F1 on test and on the noisy
training labels, the Gini of the per-sample training loss, the critical sample ratio and the mean predicted
score (the probability of the predicted name under a softmax over the whole target vocabulary, the
paper's formula).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from codemem import storage
from codemem.params import Params
from codemem.storage import Layout
from codemem.task import Task

FINAL_KEYS = ["test_f1", "train_f1", "test_precision", "test_recall", "gini", "csr", "test_score", "train_score"]


class MethodName(Task):
    name = "methodname"
    epoch_columns = (
        "epoch", "train_loss", "train_f1", "train_precision", "train_recall", "test_f1", "test_precision",
        "test_recall", "gini", "csr", "csr_samples", "csr_critical", "csr_transformable", "csr_variants",
        "csr_changed", "csr_variant_count", "test_score", "train_score",
        "train_seconds", "seconds",
    )  # fmt: skip
    score_labels = {"study": "score (top-10 softmax)", "clean": "score (full softmax)"}  # noqa: RUF012
    study_columns = {"train": "train_f1", "test": "test_f1", "gini": "gini", "csr": "csr"}  # noqa: RUF012

    def extract(self, params: Params, layout: Layout) -> dict:
        """Every corpus (the JDK's zip, a folder, code2seq's archives) takes one path; the dataset's
        recipe (codemem.datasets.Recipe) says which methods and splits."""
        from codemem.methodname import java_corpora

        return java_corpora.run(params, layout)

    def corrupt(self, params: Params, layout: Layout, rng: np.random.Generator) -> dict:
        """Replace a share of the training names; labels.tsv records every sample's true and noisy name."""
        from codemem.corrupt import corrupt_method_names  # here: extract and train need not import it

        data = storage.load_samples(layout.samples, formats=())
        labels = [str(data.labels[i]) for i in data.split_labels["train"]]
        noisy, changed = corrupt_method_names(labels, params.noise, rng)
        changed_set = set(changed.tolist())
        rows = ["sample\ttrue_label\tnoisy_label\tchanged"]
        rows += [f"{i}\t{t}\t{n}\t{int(i in changed_set)}" for i, (t, n) in enumerate(zip(labels, noisy))]
        summary = {"noise": params.noise, "seed": params.seed, "train_samples": len(labels), "changed": len(changed),
                   "unique_names": len(set(labels))}  # fmt: skip
        with storage.atomic_dir(layout.noisy) as tmp:
            (tmp / "labels.tsv").write_text("\n".join(rows) + "\n")
            (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary

    def prepare(self, params: Params, layout: Layout, device):
        from codemem import task

        return task.model(params.model).training_class.from_params(params, layout, device)

    def final_metrics(self, last: pd.Series, counts: dict, params: Params) -> dict:
        out = {k: round(float(last[k]), 6) for k in FINAL_KEYS}
        out["precision"], out["recall"] = out.pop("test_precision"), out.pop("test_recall")
        return out | {
            "epochs": int(last["epoch"]), "noise": params.noise, "dataset": params.dataset, "model": params.model,
            "seed": params.seed, "train_samples": counts["train_samples"], "test_samples": counts["test_samples"],
            "csr_transformable": int(last["csr_transformable"]), "csr_variant_count": int(last["csr_variant_count"]),
            "csr_samples": round(float(last["csr_samples"]), 6), "csr_variants": round(float(last["csr_variants"]), 6),
            "parameters": counts["parameters"],
            "profile": params.profile, "measure": params.train.measure,
        }  # fmt: skip

    def draw(self, history: pd.DataFrame, title: str, plots_dir: Path) -> None:
        """F1 (train solid, test dashed), Gini and CSR per epoch."""
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


TASK = MethodName()
