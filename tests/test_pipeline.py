"""End to end: the real `dvc` on the real pipeline, in a temporary git repository, tiny profile."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e


def sh(cwd: Path, *args: str) -> str:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def tiny_params(corpus: Path) -> dict:
    yaml = YAML()
    params = yaml.load((ROOT / "params.yaml").read_text())
    params["fetch"]["source"] = str(corpus)
    params["extract"].update(top_names=4, per_name=60, split=[0.6, 0.2, 0.2])
    params["train"]["epochs"] = 2
    return params


@pytest.fixture
def repo(tmp_path, tiny_corpus) -> Path:
    for name in ("dvc.yaml", ".gitignore", ".dvcignore"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "params.yaml", "w") as f:
        YAML().dump(tiny_params(tiny_corpus), f)
    sh(tmp_path, "git", "init", "-q")
    sh(tmp_path, "git", "config", "user.name", "codemem test")
    sh(tmp_path, "git", "config", "user.email", "test@localhost")
    sh(tmp_path, "dvc", "init", "-q")
    sh(tmp_path, "git", "add", "-A")
    sh(tmp_path, "git", "commit", "-qm", "tiny profile")
    return tmp_path


def test_repro_then_noise_experiment(repo):
    out = sh(repo, "dvc", "repro")
    metrics = json.loads((repo / "metrics/metrics.json").read_text())
    for key in ("test_f1", "train_f1", "precision", "recall", "gini", "csr", "test_score",
                "train_samples", "test_samples"):  # fmt: skip
        assert key in metrics, key
    assert metrics["epochs"] == 2 and metrics["train_samples"] > 0
    epochs = (repo / "plots/epochs.csv").read_text().splitlines()
    assert epochs[0].startswith("epoch,train_loss,train_f1") and len(epochs) == 3
    assert (repo / "plots/scores.csv").read_text().startswith("rank,score")
    assert (repo / "plots/curves.png").stat().st_size > 0
    assert (repo / "build/samples/train.c2v").stat().st_size > 0

    # Nothing changed: the second repro does nothing.
    out = sh(repo, "dvc", "repro")
    assert "Data and pipelines are up to date" in out, out

    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "baseline")
    out = sh(repo, "dvc", "exp", "run", "-S", "noise=1.0")
    for kept in ("fetch", "extract"):
        assert f"Stage '{kept}' didn't change, skipping" in out, out
    for rerun in ("corrupt", "train", "evaluate"):
        assert f"Running stage '{rerun}'" in out, out
    noisy = json.loads((repo / "metrics/metrics.json").read_text())
    assert noisy["noise"] == 1.0
    diff = sh(repo, "dvc", "metrics", "diff", "--json")
    changed = json.loads(diff)["metrics/metrics.json"]
    assert changed["noise"]["old"] == 0.0 and changed["noise"]["new"] == 1.0
    assert "test_f1" in changed


def test_code2seq_experiment(repo):
    sh(repo, "dvc", "repro")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "baseline")
    out = sh(repo, "dvc", "exp", "run", "-S", "model=code2seq", "-S", "train.epochs=1")
    assert "Stage 'extract' didn't change, skipping" in out, out
    metrics = json.loads((repo / "metrics/metrics.json").read_text())
    assert metrics["model"] == "code2seq" and metrics["epochs"] == 1
    for key in ("test_f1", "train_f1", "gini", "csr", "test_score"):
        assert 0.0 <= metrics[key] <= 1.0, key
