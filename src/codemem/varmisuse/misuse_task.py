"""The VarMisuse task (Transformer, GREAT, GGNN): locate a misused variable and point at its repair.

Samples are GREAT-format JSON lines (codemem.varmisuse.bug_datasets); the noise flips training labels
(`corrupt.corrupt_varmisuse`); training and the per-step measurements are
codemem.varmisuse.bug_training's; the final metrics are the original's four accuracies on the held-out
samples and on the noisy training samples, the Gini coefficients of the per-sample location and
repair losses and the mean probability of the predicted location.
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
from codemem.varmisuse import great_format

# ---- codemem.task.Task ----------------------------------------------------------------------------
# epochs.csv column -> metrics.json key (held-out accuracies without a prefix, as the study reports).
FINAL_KEYS = {
    "test_loc_acc": "loc_acc", "test_repair_acc": "repair_acc", "test_joint_acc": "joint_acc",
    "test_no_bug_acc": "no_bug_acc", "train_loc_acc": "train_loc_acc", "train_repair_acc": "train_repair_acc",
    "train_joint_acc": "train_joint_acc", "train_no_bug_acc": "train_no_bug_acc", "gini_loc": "gini_loc",
    "gini_repair": "gini_repair", "test_score": "test_score", "train_score": "train_score",
    "test_repair_mass": "test_repair_mass", "train_loss": "train_loss",
}  # fmt: skip


def _value(x) -> float | None:
    """A rounded float, or None where there is none (NaN: no sample of that kind), which JSON can hold."""
    x = float(x)
    return None if np.isnan(x) else round(x, 6)


class VarMisuse(Task):
    name = "varmisuse"
    epoch_columns = (
        "epoch", "samples_seen", "train_loss", "train_loc_loss", "train_repair_loss",
        "train_loc_acc", "train_repair_acc", "train_joint_acc", "train_no_bug_acc",
        "test_loc_acc", "test_repair_acc", "test_joint_acc", "test_no_bug_acc", "test_loc_loss", "test_repair_loss",
        "gini_loc", "gini_repair", "test_score", "train_score", "test_repair_mass", "train_seconds", "seconds",
    )  # fmt: skip
    score_labels = {m: "probability of the predicted location" for m in ("study", "clean")}  # noqa: RUF012
    study_columns = {"train": "train_loc_acc", "test": "test_loc_acc", "train_repair": "train_repair_acc",  # noqa: RUF012
                     "test_repair": "test_repair_acc", "gini": "gini_loc", "gini_repair": "gini_repair"}  # fmt: skip

    def extract(self, params: Params, layout: Layout) -> dict:
        from codemem.varmisuse import bug_datasets

        return bug_datasets.run(params, layout)

    def corrupt(self, params: Params, layout: Layout, rng: np.random.Generator) -> dict:
        """Flip a share of the training labels; flips.tsv records each flipped sample's new label."""
        from codemem.corrupt import corrupt_varmisuse  # here: extract and train need not import it

        samples = list(great_format.read_shards(storage.require(layout.samples / "train.jsonl", "extract"), validate=False))
        noisy, flipped = corrupt_varmisuse(samples, params.noise, rng)
        rows = ["sample\ttrue_bug\tnoisy_bug\terror_location\trepair_targets"]
        rows += [f"{i}\t{int(samples[i]['has_bug'])}\t{int(noisy[i]['has_bug'])}\t{noisy[i]['error_location']}\t"
                 f"{','.join(map(str, noisy[i]['repair_targets']))}" for i in flipped.tolist()]  # fmt: skip
        buggy_to_clean = int(sum(samples[i]["has_bug"] for i in flipped.tolist()))
        summary = {
            "noise": params.noise, "seed": params.seed, "train_samples": len(samples), "changed": len(flipped),
            "buggy_to_clean": buggy_to_clean, "buggy_before": sum(s["has_bug"] for s in samples),
            "buggy_after": sum(s["has_bug"] for s in noisy), "clean_to_buggy": len(flipped) - buggy_to_clean,
        }  # fmt: skip
        with storage.atomic_dir(layout.noisy) as tmp:
            great_format.write_shard(tmp / "train.jsonl", noisy, validate=False)
            (tmp / "flips.tsv").write_text("\n".join(rows) + "\n")
            (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary

    def prepare(self, params: Params, layout: Layout, device):
        from codemem.varmisuse.bug_training import VarMisuseTraining

        return VarMisuseTraining(params, layout, device)

    def final_metrics(self, last: pd.Series, counts: dict, params: Params) -> dict:
        out = {key: _value(last[column]) for column, key in FINAL_KEYS.items()}
        return out | {
            "epochs": int(last["epoch"]), "samples_seen": int(last["samples_seen"]), "noise": params.noise,
            "dataset": params.dataset, "model": params.model, "seed": params.seed, "profile": params.profile,
            "measure": params.train.measure, "heldout": params.train.heldout,
            **{k: counts[k] for k in ("train_samples", "test_samples", "train_measured", "test_measured",
                                      "samples_per_step", "parameters")},
        }  # fmt: skip

    def draw(self, history: pd.DataFrame, title: str, plots_dir: Path) -> None:
        """Accuracies per step (train solid, test dashed) and the two Gini coefficients."""
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


TASK = VarMisuse()
