"""report: the study's figures and table from the DVC experiments that were run.

Reads `dvc exp show --json` for each experiment's params and final metrics, and the git-tracked
`plots/epochs.csv` and `plots/scores.csv` of each experiment's commit (`git show REV:PATH`; they
are `cache: false`, so they travel with the experiment). Groups experiments by (model, dataset),
one colour per noise level, and with several seeds draws the mean and a min-max band:

- `plots/report_performance.png`: F1 (MethodName) or localization accuracy (VarMisuse) per epoch,
  train solid, test dashed (the study's Figures 2-3);
- `plots/report_scores.png`: test samples sorted by their average predicted score (Figures 4-5);
- `plots/report_gini.png`: Gini of the per-sample training loss per epoch (Figures 6-7);
- `plots/report_csr.png`: critical sample ratio per epoch (Figure 8, MethodName);
- `plots/report.md`: final-epoch values next to the study's published numbers (repro/published.csv).

Experiments live in git refs of one workspace: `dvc exp gc`, a fresh clone or a lost folder takes
them away. So the report keeps each finished experiment it reads in `plots/runs/<run>/` (run.json
with its params, metrics and commit; epochs.csv; scores.csv), small enough to commit, and draws
from those kept runs plus the live ones. A sweep can then span sessions and machines, and the
committed figures can be redrawn from committed data. Delete a folder to drop a run.
"""

from __future__ import annotations

import io as stdio
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from codemem import task
from codemem.errors import UserError
from codemem.progress import log

# Per task: (train column, test column, label) for the performance figure, and the Gini column.
PERFORMANCE = {"f1": ("train_f1", "test_f1", "sub-token F1"),
               "loc": ("train_loc_acc", "test_loc_acc", "localization accuracy")}  # fmt: skip
GINI_COLUMNS = ("gini", "gini_loc")
TABLE_METRICS = ("test_f1", "train_f1", "csr", "csr_samples", "gini", "loc_acc", "repair_acc", "joint_acc", "gini_loc",
                 "test_score")  # fmt: skip
# The study published one CSR; which of our two counts it is, is argued in docs/fidelity.md: show it by both.
PUBLISHED_AS = {"csr_samples": "csr"}
PUBLISHED = Path(__file__).resolve().parents[2] / "repro" / "published.csv"


@dataclass
class Experiment:
    name: str
    rev: str
    model: str
    dataset: str
    noise: float
    seed: int
    metrics: dict
    epochs: pd.DataFrame | None
    scores: pd.DataFrame | None
    params: dict = field(default_factory=dict)
    timestamp: str = ""  # the experiment commit's time, ISO 8601 (dvc exp show): the newest run of a point wins

    @property
    def key(self) -> str:
        """The kept run's folder name: a later run of the same point replaces it."""
        profile = self.params.get("profile", "cpu")
        return f"{self.model}-{self.dataset}-{profile}-noise{self.noise:g}-seed{self.seed}"


def _git_csv(rev: str, path: str) -> pd.DataFrame | None:
    shown = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True, check=False)
    if shown.returncode != 0 or not shown.stdout.strip():
        return None
    return pd.read_csv(stdio.StringIO(shown.stdout))


def _entries(node, inside: bool = False):
    """Every experiment record in `dvc exp show --json` output: the records listed under a
    baseline's `experiments` (the baseline commits and the workspace are not experiments)."""
    if isinstance(node, list):
        for item in node:
            yield from _entries(item, inside)
    elif isinstance(node, dict):
        if inside and isinstance(node.get("data"), dict) and node.get("rev") != "workspace":
            yield node
        if node.get("experiments"):
            yield from _entries(node["experiments"], True)
        if "revs" in node:
            yield from _entries(node["revs"], inside)


def load_experiments(show_json: list) -> tuple[list[Experiment], list[str]]:
    """Experiments with their data, and the names of failed or unreadable ones."""
    experiments, problems = [], []
    for entry in _entries(show_json):
        data = entry["data"]
        name = entry.get("name") or data.get("name") or entry["rev"][:7]
        if data.get("status") == "Failed" or entry.get("error") or data.get("error"):
            problems.append(f"{name}: failed")
            continue
        if data.get("rev") == "workspace":  # queued or running: DVC shows the workspace's files for it
            problems.append(f"{name}: not finished")
            continue
        params = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
        metrics = ((data.get("metrics") or {}).get("metrics/metrics.json") or {}).get("data") or {}
        rev = data.get("rev") or entry["rev"]
        if not metrics:
            problems.append(f"{name}: no metrics")
            continue
        experiments.append(Experiment(
            name=name, rev=rev, model=params.get("model", metrics.get("model", "?")),
            dataset=params.get("dataset", metrics.get("dataset", "?")),
            noise=float(params.get("noise", metrics.get("noise", 0.0))), seed=int(params.get("seed", 0)),
            metrics=metrics, epochs=_git_csv(rev, "plots/epochs.csv"), scores=_git_csv(rev, "plots/scores.csv"),
            params=params, timestamp=str(data.get("timestamp") or ""),
        ))  # fmt: skip
    return experiments, problems


def keep_runs(experiments: list[Experiment], runs_dir: Path, kept: list[Experiment] | None = None) -> list[Path]:
    """Write each experiment to runs_dir/<key>/ unless a newer run of the same point is kept there
    (or listed). A folder is assembled beside its place and renamed into it, so none is ever
    half-written. `kept`: runs_dir's runs when the caller has read them already."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    kept = kept_runs(runs_dir)[0] if kept is None else kept
    newest = {e.key: e for e in merge(kept, experiments)}
    written = []
    for e in experiments:
        if newest[e.key] is not e:
            continue
        staging = Path(tempfile.mkdtemp(prefix=f".{e.key}.", dir=runs_dir))
        staging.chmod(0o755)  # mkdtemp's 0700 would keep the kept run from others sharing the folder
        record = {"name": e.name, "rev": e.rev, "timestamp": e.timestamp, "model": e.model, "dataset": e.dataset,
                  "noise": e.noise, "seed": e.seed, "params": e.params, "metrics": e.metrics}  # fmt: skip
        (staging / "run.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        for frame, file in ((e.epochs, "epochs.csv"), (e.scores, "scores.csv")):
            if frame is not None:
                frame.to_csv(staging / file, index=False)
        target = runs_dir / e.key
        if target.exists():
            retired = target.with_name(f".{e.key}.old")
            shutil.rmtree(retired, ignore_errors=True)
            target.rename(retired)
            staging.rename(target)
            shutil.rmtree(retired)
        else:
            staging.rename(target)
        written.append(target)
    return written


def kept_runs(runs_dir: Path) -> tuple[list[Experiment], list[str]]:
    """The runs kept in runs_dir, and the folders that could not be read (with why)."""
    experiments, problems = [], []
    for folder in sorted(runs_dir.glob("*/")) if runs_dir.is_dir() else []:
        if folder.name.startswith("."):
            continue  # an interrupted keep_runs's staging folder
        try:
            record = json.loads((folder / "run.json").read_text())
            experiments.append(Experiment(
                name=record["name"], rev=record["rev"], model=record["model"], dataset=record["dataset"],
                noise=float(record["noise"]), seed=int(record["seed"]), metrics=record["metrics"],
                epochs=_read_csv(folder / "epochs.csv"), scores=_read_csv(folder / "scores.csv"),
                params=record.get("params") or {}, timestamp=str(record.get("timestamp") or ""),
            ))  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError) as error:
            problems.append(f"{folder}: unreadable kept run ({type(error).__name__}: {error}); delete or fix it")
    return experiments, problems


def _read_csv(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.exists() else None


def merge(kept: list[Experiment], live: list[Experiment]) -> list[Experiment]:
    """Kept runs and live experiments, one per key: the newest (a point rerun after a change of
    code replaces its earlier run, wherever each is); at the same time, a live one over a kept one."""
    by_key: dict[str, Experiment] = {}
    for e in [*kept, *live]:
        if e.key not in by_key or e.timestamp >= by_key[e.key].timestamp:
            by_key[e.key] = e
    return sorted(by_key.values(), key=lambda e: (e.model, e.dataset, e.noise, e.seed))


def _band(ax, frames: list[pd.Series], x, color, style="-", label=None):
    """Mean line and, with several runs, a min-max band."""
    length = min(len(f) for f in frames)
    values = np.stack([f.to_numpy()[:length] for f in frames])
    x = np.asarray(x)[:length]
    ax.plot(x, values.mean(0), style, color=color, label=label)
    if len(frames) > 1:
        ax.fill_between(x, values.min(0), values.max(0), color=color, alpha=0.15, linewidth=0)


def draw(experiments: list[Experiment], plots_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(e.model, e.dataset) for e in experiments})
    noises = sorted({e.noise for e in experiments})
    colors = {n: plt.cm.viridis(i / max(len(noises) - 1, 1)) for i, n in enumerate(noises)}
    written = []

    def figure(kind: str, title: str, plot_one) -> None:
        fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.8), squeeze=False)
        drawn = False
        for ax, (model, dataset) in zip(axes[0], groups):
            for noise in noises:
                runs = [e for e in experiments if (e.model, e.dataset, e.noise) == (model, dataset, noise)]
                drawn |= bool(runs) and plot_one(ax, runs, colors[noise], f"noise {noise:g}")
            ax.set_title(f"{model} on {dataset}", fontsize=10)
        if not drawn:
            plt.close(fig)
            return
        # One legend with every noise level of any panel, on the first panel that has lines.
        lines = {}
        for ax in axes[0]:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                lines.setdefault(label, handle)
        order = sorted(lines, key=lambda label: float(label.split()[-1]))
        first = next(ax for ax in axes[0] if ax.get_legend_handles_labels()[0])
        first.legend([lines[label] for label in order], order, fontsize=8)
        fig.suptitle(title)
        fig.tight_layout()
        path = plots_dir / f"report_{kind}.png"
        fig.savefig(path, dpi=100, metadata={"Software": None})
        plt.close(fig)
        written.append(path)

    def performance(ax, runs, color, label):
        frames = [e.epochs for e in runs if e.epochs is not None]
        key = "f1" if frames and "test_f1" in frames[0] else "loc"
        train, test, name = PERFORMANCE[key]
        if not frames or test not in frames[0]:
            return False
        _band(ax, [f[train] for f in frames], frames[0]["epoch"], color, "-", label)
        _band(ax, [f[test] for f in frames], frames[0]["epoch"], color, "--")
        ax.set(xlabel="epoch", ylabel=f"{name} (train solid, test dashed)", ylim=(0, 1.02))
        return True

    def scores(ax, runs, color, label):
        frames = [e.scores for e in runs if e.scores is not None and len(e.scores)]
        if not frames:
            return False
        _band(ax, [f["score"] for f in frames], frames[0]["rank"], color, "-", label)
        # MethodName: the predicted name's softmax probability; VarMisuse: the predicted location's.
        what = "location" if runs[0].model in task.model_names("varmisuse") else "name"
        ax.set(xlabel="test samples, by average score", ylabel=f"probability of the predicted {what}", ylim=(0, 1.02))
        return True

    def column(name_options, ylabel):
        def plot(ax, runs, color, label):
            frames = [e.epochs for e in runs if e.epochs is not None]
            column = next((c for c in name_options if frames and c in frames[0]), None)
            if column is None or frames[0][column].isna().all():
                return False
            _band(ax, [f[column] for f in frames], frames[0]["epoch"], color, "-", label)
            ax.set(xlabel="epoch", ylabel=ylabel, ylim=(0, 1.02))
            return True

        return plot

    figure("performance", "Training and test performance per epoch", performance)
    figure("scores", "Sorted average predicted score", scores)
    figure("gini", "Gini coefficient of per-sample training loss", column(GINI_COLUMNS, "Gini"))
    figure("csr", "Critical sample ratio (test)", column(("csr",), "CSR"))
    return written


def table(experiments: list[Experiment], published: pd.DataFrame | None) -> str:
    """Markdown: final-epoch metrics per (model, dataset, noise), mean over seeds, with the study's."""
    rows = []
    for (model, dataset, noise), runs in _grouped(experiments).items():
        row = {"model": model, "dataset": dataset, "noise": noise, "runs": len(runs)}
        for metric in TABLE_METRICS:
            values = [e.metrics[metric] for e in runs if isinstance(e.metrics.get(metric), (int, float))]
            if values:
                row[metric] = f"{np.mean(values):.3f}" + (f" ± {np.std(values):.3f}" if len(values) > 1 else "")
                study = _published(published, model, metric, noise)
                if study is not None:
                    row[metric] += f" ({study:.3f})"
        rows.append(row)
    if not rows:
        return "No finished experiments.\n"
    present = [m for m in TABLE_METRICS if any(m in r for r in rows)]  # in TABLE_METRICS' order
    frame = pd.DataFrame(rows, columns=["model", "dataset", "noise", "runs", *present]).fillna("")
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    body = "".join("| " + " | ".join(str(v) for v in r) + " |\n" for r in frame.itertuples(index=False))
    return ("Final-epoch values, ours (the study's, where it published one: code2vec/code2seq on "
            "Java-Top10, GREAT on Py150-Great). `csr`: the measure's CSR (study: changed variants / "
            "variants; clean: critical samples / samples with a variant); `csr_samples`: over samples "
            "in either.\n\n" + header + body)  # fmt: skip


def _grouped(experiments):
    groups: dict[tuple, list[Experiment]] = {}
    for e in sorted(experiments, key=lambda e: (e.model, e.dataset, e.noise, e.seed)):
        groups.setdefault((e.model, e.dataset, e.noise), []).append(e)
    return groups


def _published(published: pd.DataFrame | None, model: str, metric: str, noise: float) -> float | None:
    if published is None:
        return None
    column = f"noise_{round(noise * 100)}"
    metric = PUBLISHED_AS.get(metric, metric)
    match = published[(published["model"] == model) & (published["metric"] == metric)]
    if match.empty or column not in match:
        return None
    return float(match.iloc[0][column])


def run(plots_dir: Path = Path("plots"), show_json: list | None = None, keep: bool = True) -> dict:
    """Read the live experiments, keep them in plots_dir/runs (unless keep is False) and draw the
    figures and table from the kept runs plus the live ones."""
    if show_json is None:
        shown = subprocess.run(["dvc", "exp", "show", "--json"], capture_output=True, text=True, check=False)
        if shown.returncode != 0:
            raise UserError(f"`dvc exp show --json` failed (run `codemem report` in the project folder, after "
                            f"`dvc exp run`): {shown.stderr.strip()}")
        show_json = json.loads(shown.stdout or "[]")
    live, problems = load_experiments(show_json)
    runs_dir = plots_dir / "runs"
    kept, unreadable = kept_runs(runs_dir)
    problems += unreadable
    experiments = merge(kept, live)
    if keep:
        keep_runs(live, runs_dir, kept)
    for problem in problems:
        log(f"[yellow]report: skipped {problem}[/]")
    plots_dir.mkdir(parents=True, exist_ok=True)
    figures = draw(experiments, plots_dir) if experiments else []
    published = pd.read_csv(PUBLISHED) if PUBLISHED.exists() else None
    markdown = table(experiments, published)
    if problems:
        markdown += "\nSkipped: " + "; ".join(problems) + "\n"
    (plots_dir / "report.md").write_text(markdown)
    return {"experiments": len(experiments), "live": len(live), "kept": str(runs_dir) if keep else None,
            "skipped": problems, "figures": [str(f) for f in figures],
            "table": str(plots_dir / "report.md")}  # fmt: skip
