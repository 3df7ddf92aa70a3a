"""Which training labels are wrong? The committed report of plots/detection/: every detection signal
against the flipped labels, beside cleanlab's, and what dropping the flagged samples gives back.

    python repro/detection_report.py --model code2vec --noise 0.25 --noise 0.5 --seed 0 --seed 1
    python repro/detection_report.py --collect          # the report from the runs made so far
    python repro/detection_report.py --retrain loss --noise 0.5 --seed 0   # another signal, same run

For each (model, noise, seed) it runs the pipeline's stages (`python -m codemem ...`, the commands
dvc.yaml runs) in build/detection-runs/<run>/ with this repository's params.yaml and
`train.drop_flagged` (the signal, --signal), so one run holds both trainings: the noisy run (the
flagging pass, build/checkpoints/flagging/) and the retrained one. `--noise 0` runs a clean run for
the test-F1 gap; `--cleanlab K` also runs `python -m codemem crossval --folds K` (K more trainings).
`--retrain SIGNAL` retrains a finished run dropping by another signal (its flagging pass is reused:
one training), `--cleanlab K` on a finished run adds cleanlab's baseline to it.
Each run's results go to plots/detection/runs/<run>.json (kept: the report survives a fresh clone),
then plots/detection/report.md, detection.csv and detection.png are made from all kept runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from codemem import datasets, detection, task

# What the retrain is judged by: (metrics.json key, epochs.csv column, in words) per task.
HEADLINE = {"methodname": ("test_f1", "test_f1", "test F1"),
            "varmisuse": ("loc_acc", "test_loc_acc", "localization accuracy")}  # fmt: skip

RUNS, REPORT = ROOT / "build" / "detection-runs", ROOT / "plots" / "detection"
# the noise sweeps' kept runs (repro/sweep.py, codemem report [--plots plots/varmisuse])
SWEEP_RUNS = (ROOT / "plots" / "runs", ROOT / "plots" / "varmisuse" / "runs")


def stage(cwd: Path, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "codemem", *args], cwd=cwd, capture_output=True, text=True,
                          env=os.environ | {"PYTHONPATH": str(ROOT / "src")}, check=False)  # fmt: skip
    if done.returncode:
        sys.exit(f"{cwd.name}: codemem {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def task_of(model: str) -> str:
    return task.task_of(model)


def dataset_for(model: str) -> str:
    """params.yaml's dataset where it is the model's task's, else that task's embedded corpus."""
    dataset = YAML(typ="safe").load((ROOT / "params.yaml").read_text())["dataset"]
    mine = task_of(model)
    return dataset if datasets.get(dataset).task == mine else {"methodname": "jdk-top10", "varmisuse": "stdlib-great"}[mine]


def prepared(model: str, seed: int) -> Path:
    """fetch + extract once per (dataset, seed): the samples depend on the seed, not on noise."""
    dataset = dataset_for(model)
    base = RUNS / (f"samples-seed{seed}" if dataset == "jdk-top10" else f"samples-{dataset}-seed{seed}")
    if not (base / "build" / "samples" / "report.json").exists():
        base.mkdir(parents=True, exist_ok=True)
        write_params(base, model, 0.0, seed, "none")
        stage(base, "fetch")
        stage(base, "extract")
    return base


def write_params(where: Path, model: str, noise: float, seed: int, signal: str) -> None:
    params = YAML(typ="safe").load((ROOT / "params.yaml").read_text())
    params |= {"model": model, "noise": noise, "seed": seed, "dataset": dataset_for(model)}
    params["train"]["drop_flagged"] = signal if noise > 0 else "none"
    with open(where / "params.yaml", "w") as f:
        YAML().dump(params, f)


def run_one(model: str, noise: float, seed: int, signal: str, cleanlab: int) -> dict:
    name = f"{model}-noise{noise:g}-seed{seed}"
    run = RUNS / name
    if run.exists():
        shutil.rmtree(run)
    (run / "build").mkdir(parents=True)
    base = prepared(model, seed)
    for part in ("raw", "samples"):
        shutil.copytree(base / "build" / part, run / "build" / part, copy_function=os.link)
    write_params(run, model, noise, seed, signal)
    began = time.time()
    for name_ in ("corrupt", "train", "evaluate"):
        stage(run, name_)
    key, column, words = HEADLINE[task_of(model)]
    result = {"model": model, "noise": noise, "seed": seed, "signal": signal, "seconds": round(time.time() - began),
              "test_metric": words}  # fmt: skip
    metrics = json.loads((run / "metrics/metrics.json").read_text())
    if noise == 0:
        return result | {"clean_test": metrics[key]}
    flagging = run / "build" / "checkpoints" / "flagging"
    with np.load(flagging / "build" / "logs" / "per_sample.npz") as z:
        dynamics = {k: z[k] for k in (*detection.DYNAMICS, "in_step_loss") if k in z}
        flipped = z["flipped"]
    noisy = pd.read_csv(flagging / "plots" / "epochs.csv").iloc[-1]
    result |= {"noisy_test": float(noisy[column]), "retrained_test": metrics[key],
               "flipped": int(flipped.sum()), "measured": len(flipped), **metrics["retrain"],
               "detection": detection.evaluate(dynamics, flipped)}  # fmt: skip
    if cleanlab:
        began = time.time()
        stage(run, "crossval", "--folds", str(cleanlab))
        found = json.loads((run / "plots" / "detection_cleanlab.json").read_text())
        result["cleanlab"] = found | {"seconds": round(time.time() - began)}
    return result


def more(model: str, noise: float, seed: int, signal: str | None, cleanlab: int) -> None:
    """On a finished run: a retrain dropping by `signal` (the flagging pass is reused: its checkpoint
    is complete), and/or cleanlab's K-fold baseline; both added to the run's kept JSON."""
    name = f"{model}-noise{noise:g}-seed{seed}"
    run, kept = RUNS / name, REPORT / "runs" / f"{name}.json"
    result = json.loads(kept.read_text())
    if signal:
        write_params(run, model, noise, seed, signal)
        began = time.time()
        stage(run, "train")
        metrics = json.loads((run / "build" / "logs" / "counts.json").read_text())["retrain"]
        history = pd.read_csv(run / "plots" / "epochs.csv").iloc[-1]
        result.setdefault("more_retrains", []).append(
            metrics | {"retrained_test": round(float(history[HEADLINE[task_of(model)][1]]), 6),
                       "seconds": round(time.time() - began)})  # fmt: skip
    if cleanlab:
        began = time.time()
        stage(run, "crossval", "--folds", str(cleanlab))
        found = json.loads((run / "plots" / "detection_cleanlab.json").read_text())
        result["cleanlab"] = found | {"seconds": round(time.time() - began)}
    kept.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "detection"}), flush=True)


def sweep_runs(kept: Path | tuple[Path, ...] = SWEEP_RUNS) -> list[dict]:
    """The noisy runs of the noise sweep's kept runs (plots/runs/<run>/run.json, `python -m codemem
    report`): each holds its run's `detection`, the same signals one training gives, but no retrain."""
    out = []
    folders = (kept,) if isinstance(kept, Path) else kept
    for path in sorted(p for folder in folders for p in folder.glob("*/run.json")):
        run = json.loads(path.read_text())
        found = run.get("metrics", {}).get("detection", {})
        if run.get("noise", 0) > 0 and found.get("flipped"):
            signals = {k: v for k, v in found.items() if isinstance(v, dict)}
            out.append({k: run[k] for k in ("model", "noise", "seed")} | {"detection": signals, "source": path.parent.name})
    return out


def collect(kept: Path | tuple[Path, ...] = SWEEP_RUNS) -> pd.DataFrame:
    runs = [json.loads(p.read_text()) for p in sorted((REPORT / "runs").glob("*.json"))]
    for r in runs:  # the committed MethodName runs name their values after test F1
        for kind in ("clean", "noisy", "retrained"):
            for again in [r, *r.get("more_retrains", [])]:
                if f"{kind}_test_f1" in again:
                    again[f"{kind}_test"] = again.pop(f"{kind}_test_f1")
        r.setdefault("test_metric", "test F1")
    clean = {(r["model"], r["seed"]): r["clean_test"] for r in runs if r["noise"] == 0}
    # The sweep's runs add seeds and models the detection runs lack; where both exist, the
    # detection run (the flagging pass of its retrain) is the one shown.
    have = {(r["model"], r["noise"], r["seed"]) for r in runs}
    extra = [r for r in sweep_runs(kept) if (r["model"], r["noise"], r["seed"]) not in have]
    rows = []
    for r in extra:
        base = {k: r[k] for k in ("model", "noise", "seed")}
        rows += [base | {"signal": signal, **values} for signal, values in r["detection"].items()]
    for r in (r for r in runs if r["noise"] > 0):
        base = {k: r[k] for k in ("model", "noise", "seed")}
        for signal, values in r["detection"].items():
            rows.append(base | {"signal": signal, **values})
        if "cleanlab" in r:
            c = r["cleanlab"]
            rows.append(base | {"signal": f"cleanlab (K={c.get('folds')})",
                                **{k: c.get(k) for k in ("auroc", "auprc", "precision_at_k")}})
        gap = clean.get((r["model"], r["seed"]))
        for again in [r, *r.get("more_retrains", [])]:  # the run's own, then any with another signal
            recovered = ((again["retrained_test"] - r["noisy_test"]) / (gap - r["noisy_test"])
                         if gap is not None and gap != r["noisy_test"] else float("nan"))  # fmt: skip
            rows.append(base | {"signal": f"retrain without {again['dropped']} flagged by {again['drop_signal']} "
                                f"({again['dropped_flipped']} flipped)", "test_metric": r["test_metric"],
                                "clean_test": gap, "noisy_test": r["noisy_test"],
                                "retrained_test": again["retrained_test"],
                                "gap_recovered": recovered})  # fmt: skip
    return pd.DataFrame(rows)


def write_report(table: pd.DataFrame) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table.to_csv(REPORT / "detection.csv", index=False)
    scored = table[table["auroc"].notna()] if "auroc" in table else table.iloc[0:0]
    mean = scored.groupby(["model", "noise", "signal"], sort=False)[["auroc", "auprc", "precision_at_k"]].mean()
    mean = mean.sort_index(level=[0, 1], sort_remaining=False)  # by model and noise, signals as listed
    retrain = table[table["signal"].str.startswith("retrain")] if len(table) else table
    lines = ["# Which training labels are wrong? (made by repro/detection_report.py)", "",
             "Each signal's ranking of the training samples against the labels the corrupt stage flipped,",
             "mean over the seeds run (codemem.detection; cleanlab: K-fold out-of-sample probabilities),",
             "from the detection runs (plots/detection/runs/) and the noise sweep's kept runs (plots/runs/).", "",
             mean.round(3).to_markdown(), "", "Seeds behind each mean:", "",
             scored.groupby(["model", "noise"])["seed"].unique().map(lambda s: ", ".join(map(str, sorted(s))))
             .to_frame("seeds").to_markdown(), "", "Clean and retrain (the task's test measure: MethodName test F1, VarMisuse localization accuracy;",
             "gap recovered = (retrained - noisy) / (clean - noisy)):", "",
             retrain.drop(columns=[c for c in ("auroc", "auprc", "precision_at_k") if c in retrain]).round(3)
             .to_markdown(index=False) if len(retrain) else "(none)", ""]  # fmt: skip
    (REPORT / "report.md").write_text("\n".join(lines))
    if len(scored):
        settings = list(dict.fromkeys(zip(scored["model"], scored["noise"])))
        fig, axes = plt.subplots(1, len(settings), figsize=(5 * len(settings), 3.8), squeeze=False)
        for ax, (model, noise) in zip(axes[0], settings):
            part = mean.loc[(model, noise)]
            ax.barh(part.index, part["auroc"], color="C0")
            ax.set(title=f"{model}, noise {noise:g}", xlabel="AUROC (flipped labels)", xlim=(0, 1))
            ax.axvline(0.5, ls=":", color="grey")
        fig.tight_layout()
        fig.savefig(REPORT / "detection.png", dpi=100, metadata={"Software": None})
        plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[])
    parser.add_argument("--noise", action="append", type=float, default=[])
    parser.add_argument("--seed", action="append", type=int, default=[])
    parser.add_argument("--signal", default="aum", help="the signal the retrain drops by (train.drop_flagged)")
    parser.add_argument("--cleanlab", type=int, default=0, help="K for cleanlab's K-fold baseline (0: none)")
    parser.add_argument("--collect", action="store_true", help="only make the report from the kept runs")
    parser.add_argument("--retrain", help="retrain finished runs dropping by this signal instead")
    args = parser.parse_args()
    (REPORT / "runs").mkdir(parents=True, exist_ok=True)
    if args.retrain or (args.cleanlab and args.collect):
        for model in args.model or ["code2vec"]:
            for seed in args.seed or [0]:
                for noise in args.noise or [0.25, 0.5]:
                    more(model, noise, seed, args.retrain, args.cleanlab)
    elif not args.collect:
        for model in args.model or ["code2vec"]:
            for seed in args.seed or [0]:
                for noise in args.noise or [0.25, 0.5]:
                    result = run_one(model, noise, seed, args.signal, args.cleanlab if noise > 0 else 0)
                    (REPORT / "runs" / f"{model}-noise{noise:g}-seed{seed}.json").write_text(json.dumps(result, indent=1))
                    print(json.dumps({k: v for k, v in result.items() if k != "detection"}), flush=True)
    write_report(collect())
    print(f"wrote {REPORT / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
