"""The noise sweep and the report against a real DVC repository with tiny experiments."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from test_pipeline import ROOT, repo, sh  # noqa: F401  (repo is a fixture)

pytestmark = pytest.mark.e2e
ENV = os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}  # this environment's dvc


def test_sweep_report_and_offline_plots(repo):  # noqa: F811
    sh(repo, "dvc", "repro")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "baseline")
    sweep = [sys.executable, str(ROOT / "repro/sweep.py"), "--noise", "0", "--noise", "1", "--set", "train.epochs=1"]
    done = subprocess.run(sweep, cwd=repo, env=ENV, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "2 of 2 experiments succeeded" in done.stderr

    # A failing grid point is reported and does not stop the others.
    bad = [*sweep[:2], "--noise", "0.5", "--noise", "0.25", "--set", "train.epochs=1", "--model", "nosuchmodel"]
    failed = subprocess.run(bad, cwd=repo, env=ENV, capture_output=True, text=True, check=False)
    assert failed.returncode == 1 and "0 of 2 experiments succeeded" in failed.stderr, failed.stderr

    report = json.loads(sh(repo, sys.executable, "-m", "codemem", "report"))
    assert report["experiments"] == 2
    for kind in ("performance", "scores", "gini", "csr"):
        assert (repo / f"plots/report_{kind}.png").stat().st_size > 10_000, kind
    table = (repo / "plots/report.md").read_text()
    assert "| code2vec | jdk-top10 | 0.0 |" in table and "| code2vec | jdk-top10 | 1.0 |" in table
    assert "(0.854)" in table  # the study's code2vec test F1 at noise 0, side by side

    # The report kept both runs: with the experiments gone it draws the same table from plots/runs/.
    kept = sorted(p.name for p in (repo / "plots/runs").iterdir())
    assert kept == ["code2vec-jdk-top10-cpu-noise0-seed0", "code2vec-jdk-top10-cpu-noise1-seed0"]
    sh(repo, "dvc", "exp", "remove", "-A")
    again = json.loads(sh(repo, sys.executable, "-m", "codemem", "report"))
    assert again["experiments"] == 2 and again["live"] == 0
    assert (repo / "plots/report.md").read_text() == table

    # dvc plots render offline: the template inlines vega, no CDN script.
    shutil.copy(ROOT / "repro/plots-template.html", repo / "plots-template.html")
    sh(repo, "dvc", "config", "plots.html_template", "../plots-template.html")  # relative to .dvc/
    sh(repo, "dvc", "plots", "show", "-o", "page")
    html = (repo / "page/index.html").read_text()
    assert "cdn.jsdelivr" not in html and "vegaEmbed" in html


def sweep_module():
    spec = importlib.util.spec_from_file_location("sweep", ROOT / "repro/sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sweep_through_dvc_queue(repo):  # noqa: F811
    """`--jobs 2`: experiments go through DVC's queue with two workers, a failure is reported, the
    workers are stopped at the end and the successful experiments are there to report on."""
    sh(repo, "dvc", "repro")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "baseline")
    sweep = [sys.executable, str(ROOT / "repro/sweep.py"), "--jobs", "2", "--set", "train.epochs=1"]
    done = subprocess.run([*sweep, "--noise", "0", "--noise", "1"], cwd=repo, env=ENV, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2 of 2 experiments succeeded" in done.stderr
    assert list((repo / ".dvc/tmp/exps/celery").glob("dvc-exp-worker-*.pid")), "no DVC queue worker ran"
    assert sweep_module().live_workers(repo) == []  # ... and all were stopped

    failing = [*sweep, "--noise", "0.5", "--model", "nosuchmodel"]
    failed = subprocess.run(failing, cwd=repo, env=ENV, capture_output=True, text=True, check=False)
    assert failed.returncode == 1 and "0 of 1 experiments succeeded" in failed.stderr, failed.stderr
    assert "nosuchmodel-jdk-top10-n050: Failed" in failed.stderr
    assert sweep_module().live_workers(repo) == []

    report = json.loads(sh(repo, sys.executable, "-m", "codemem", "report"))
    assert report["experiments"] == 2


def test_report_leaves_out_unfinished_and_failed_experiments():
    """`dvc exp show --json` lists a queued or running experiment with the workspace's data (here the
    baseline's metrics): the report must not take those for its results."""
    from codemem.report import load_experiments

    def record(name, rev, data_rev, metrics, **extra):
        data = {"rev": data_rev, "params": {"params.yaml": {"data": {"model": "great", "noise": 0.5}}},
                "metrics": {"metrics/metrics.json": {"data": metrics}}} | extra  # fmt: skip
        return {"rev": rev, "name": name, "error": None, "data": data}

    finished = record("done", "a" * 40, "b" * 40, {"loc_acc": 0.3})
    running = record("running", "c" * 40, "workspace", {"test_f1": 0.79})
    failed = record("broken", "d" * 40, "e" * 40, {}, status="Failed")
    show = [{"rev": "workspace", "data": {}},
            {"rev": "f" * 40, "data": {}, "experiments": [{"name": "x", "revs": [finished]},
                                                          {"name": "y", "executor": {"state": "running"},
                                                           "revs": [running]},
                                                          {"name": "z", "revs": [failed]}]}]  # fmt: skip
    found, problems = load_experiments(show)
    assert [e.name for e in found] == ["done"]
    assert sorted(problems) == ["broken: failed", "running: not finished"]


def test_kept_runs_survive_and_a_live_run_replaces_its_kept_one(tmp_path):
    from codemem.report import Experiment, keep_runs, kept_runs, merge

    def experiment(noise, seed, test_f1, name, timestamp="2026-12-01T10:00:00"):
        epochs = pd.DataFrame({"epoch": [1, 2], "train_f1": [0.5, 0.9], "test_f1": [0.4, test_f1]})
        return Experiment(name=name, rev="a" * 40, model="code2seq", dataset="jdk-top10", noise=noise, seed=seed,
                          metrics={"test_f1": test_f1}, epochs=epochs, scores=None,
                          params={"profile": "cpu", "noise": noise, "seed": seed}, timestamp=timestamp)  # fmt: skip

    runs = tmp_path / "runs"
    keep_runs([experiment(0.25, 0, 0.7, "first"), experiment(0.75, 1, 0.2, "other")], runs)
    (runs / ".code2seq-jdk-top10-cpu-noise0.5-seed0.abc").mkdir()  # an interrupted keep: not a run
    kept, problems = kept_runs(runs)
    assert problems == [] and [e.key for e in kept] == ["code2seq-jdk-top10-cpu-noise0.25-seed0",
                                                        "code2seq-jdk-top10-cpu-noise0.75-seed1"]  # fmt: skip
    assert kept[0].epochs["test_f1"].tolist() == [0.4, 0.7] and kept[0].scores is None

    rerun = experiment(0.25, 0, 0.8, "second", timestamp="2026-12-01T11:00:00")
    assert [e.name for e in merge(kept, [rerun])] == ["second", "other"]
    # dvc exp show lists the newest first: an older live run of the point neither wins nor is kept.
    older = experiment(0.25, 0, 0.1, "older", timestamp="2026-12-01T09:00:00")
    assert [e.name for e in merge(kept, [rerun, older])] == ["second", "other"]
    keep_runs([rerun, older], runs)
    kept, _ = kept_runs(runs)
    assert [(e.name, e.metrics["test_f1"]) for e in kept] == [("second", 0.8), ("other", 0.2)]
    assert sorted(p.name for p in runs.iterdir() if p.name.startswith(".")) == [
        ".code2seq-jdk-top10-cpu-noise0.5-seed0.abc"]  # no staging or retired folder left behind

    (runs / "broken").mkdir()
    (runs / "broken/run.json").write_text("{not json")
    kept, problems = kept_runs(runs)
    assert len(kept) == 2 and len(problems) == 1 and "broken" in problems[0] and "delete or fix it" in problems[0]
    keep_runs([older], runs)  # an older run does not replace the newer one kept
    assert [e.name for e in kept_runs(runs)[0]] == ["second", "other"]
