"""End to end: the real `dvc` on the real pipeline, in a temporary git repository, tiny profile."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ruamel.yaml import YAML

from codemem.metrics import gini

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


def make_repo(tmp_path: Path, params: dict) -> Path:
    """A git + DVC repository holding the pipeline, its code and `params`, committed."""
    for name in ("dvc.yaml", ".gitignore", ".dvcignore"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "params.yaml", "w") as f:
        YAML().dump(params, f)
    sh(tmp_path, "git", "init", "-q")
    sh(tmp_path, "git", "config", "user.name", "codemem test")
    sh(tmp_path, "git", "config", "user.email", "test@localhost")
    sh(tmp_path, "dvc", "init", "-q")
    sh(tmp_path, "git", "add", "-A")
    sh(tmp_path, "git", "commit", "-qm", "tiny profile")
    return tmp_path


@pytest.fixture
def repo(tmp_path, tiny_corpus) -> Path:
    return make_repo(tmp_path, tiny_params(tiny_corpus))


def tiny_varmisuse_params() -> dict:
    """The repository's params (MethodName defaults, fetch.source auto) with a tiny VarMisuse profile:
    40 stdlib files, two steps of 32 samples, a one-layer GREAT of width 32."""
    yaml = YAML()
    params = yaml.load((ROOT / "params.yaml").read_text())
    params["extract"]["max_files"] = 40
    params["train"].update(epochs=2, samples_per_step=32, measure_samples=32)
    params["great"].update(hidden=32, num_layers=1, num_heads=2, attention_dim=32, ff_dim=64)
    return params


def assert_plots_page_is_clean(repo: Path) -> None:
    """`dvc plots show`: one panel per figure dvc.yaml defines, no default plots added, no warnings."""
    out = sh(repo, "dvc", "plots", "show", "--json")
    assert "WARNING" not in out, out
    shown = json.loads(out)
    assert not shown.get("errors"), shown["errors"]
    shown = shown["data"]
    defined = YAML(typ="safe").load((repo / "dvc.yaml").read_text())["plots"]
    names = [next(iter(p)) if isinstance(p, dict) else p for p in defined]
    assert sorted(shown) == sorted(names)
    assert all(len(panels) == 1 for panels in shown.values()), {k: len(v) for k, v in shown.items()}


def uncovered_imports(repo: Path, log: Path, model: str, drop: str = "") -> list[tuple[str, str]]:
    """(stage, file) for every codemem file a stage imported (`CODEMEM_RECORD_IMPORTS`) that is not
    among its dvc.yaml deps (less `drop`): editing it would leave `dvc repro` saying all is up to date."""
    stages = YAML(typ="safe").load((repo / "dvc.yaml").read_text())["stages"]
    missing = []
    for line in log.read_text().splitlines():
        record = json.loads(line)
        deps = [str(d).split()[0].replace("${model}", model).rstrip("/") for d in stages[record["stage"]]["deps"]]
        deps = [d for d in deps if d != drop]
        missing += [(record["stage"], f) for f in record["files"]
                    if not any(f == d or f.startswith(d + "/") for d in deps)]
    return sorted(set(missing))


def test_repro_then_noise_experiment(repo, monkeypatch):
    imports = repo.parent / f"{repo.name}-imports.jsonl"  # outside the repository: not committed
    monkeypatch.setenv("CODEMEM_RECORD_IMPORTS", str(imports))
    out = sh(repo, "dvc", "repro")
    # Every stage's dvc.yaml deps cover the code it ran (MethodName here, VarMisuse below).
    assert uncovered_imports(repo, imports, "code2vec") == []
    # ... and the check sees a dep that goes missing.
    for stage, dropped in [("train", "src/codemem/methodname/code2vec.py"), ("extract", "src/codemem/params.py")]:
        assert (stage, dropped) in uncovered_imports(repo, imports, "code2vec", drop=dropped)
    assert {json.loads(x)["stage"] for x in imports.read_text().splitlines()} == {
        "fetch", "extract", "corrupt", "train", "evaluate"}
    monkeypatch.delenv("CODEMEM_RECORD_IMPORTS")
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
    # The final metrics are the last epoch's, recomputed here from the per-sample logs.
    logs = np.load(repo / "build/logs/per_sample.npz")
    assert metrics["gini"] == pytest.approx(gini(logs["train_loss"][-1]), abs=1e-6)
    assert metrics["test_score"] == pytest.approx(float(logs["test_score"][-1].mean()), abs=1e-6)
    assert metrics["train_samples"] == logs["train_loss"].shape[1] == len(logs["train_kept"])
    ranked = pd.read_csv(repo / "plots/scores.csv")["score"].to_numpy()
    assert np.allclose(ranked, np.sort(logs["test_score"].mean(0))[::-1], atol=1e-6)
    assert_plots_page_is_clean(repo)

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
    # Every training label wrong: the model learns the wrong names, test F1 falls.
    assert changed["test_f1"]["new"] < changed["test_f1"]["old"]

    # Another model's section is not this run's setting: nothing reruns.
    out = sh(repo, "dvc", "exp", "run", "-S", "ggnn.dropout=0.2", "-S", "code2seq.rnn_size=128")
    assert "Running stage" not in out, out

    # Which labels are wrong: at noise 0.5 every signal is scored against the flips; then clean and
    # retrain: the flagging pass, half the training samples dropped by AUM, a second training.
    sh(repo, "dvc", "exp", "run", "-S", "noise=0.5")
    half = json.loads((repo / "metrics/metrics.json").read_text())
    assert half["detection"]["flipped"] > 0 and 0 <= half["detection"]["aum"]["auroc"] <= 1
    assert pd.read_csv(repo / "plots/detection.csv")["signal"].tolist()[:3] == ["loss", "in_step_loss", "aum"]
    sh(repo, "dvc", "exp", "run", "-S", "noise=0.5", "-S", "train.drop_flagged=aum")
    retrained = json.loads((repo / "metrics/metrics.json").read_text())
    dropped = retrained["retrain"]["dropped"]
    assert dropped == round(0.5 * half["train_samples"]) and retrained["train_samples"] == half["train_samples"] - dropped
    assert retrained["retrain"]["dropped_flipped"] > dropped / 2  # AUM finds more flips than chance
    assert (repo / "build/checkpoints/flagging/build/logs/per_sample.npz").exists()


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


def test_varmisuse_experiment_offline(tmp_path, monkeypatch):
    repo = make_repo(tmp_path, tiny_varmisuse_params())
    imports = tmp_path.parent / f"{tmp_path.name}-imports.jsonl"  # outside the repository: not committed
    monkeypatch.setenv("CODEMEM_RECORD_IMPORTS", str(imports))
    sh(repo, "dvc", "exp", "run", "-S", "dataset=stdlib-great", "-S", "model=great")
    assert uncovered_imports(repo, imports, "great") == []
    monkeypatch.delenv("CODEMEM_RECORD_IMPORTS")
    metrics = json.loads((repo / "metrics/metrics.json").read_text())
    assert (metrics["dataset"], metrics["model"], metrics["epochs"]) == ("stdlib-great", "great", 2)
    for key in ("loc_acc", "repair_acc", "joint_acc", "no_bug_acc", "gini_loc", "gini_repair", "test_score",
                "train_loc_acc", "train_repair_acc", "train_joint_acc", "train_no_bug_acc"):  # fmt: skip
        assert metrics[key] is None or 0.0 <= metrics[key] <= 1.0, key
    epochs = (repo / "plots/epochs.csv").read_text().splitlines()
    assert epochs[0].startswith("epoch,samples_seen,train_loss") and len(epochs) == 3
    assert (repo / "plots/scores.csv").read_text().startswith("rank,score")
    assert (repo / "plots/curves.png").stat().st_size > 0
    assert_plots_page_is_clean(repo)
    manifest = json.loads((repo / "build/raw/manifest.json").read_text())
    assert manifest["version"] == platform.python_version() and len(manifest["source_sha256"]) == 64
    for split in ("train", "dev", "eval"):
        assert (repo / f"build/samples/{split}.jsonl").exists()

    # Noise reruns only corrupt, train and evaluate.
    out = sh(repo, "dvc", "exp", "run", "-S", "noise=0.5")
    for kept in ("fetch", "extract"):
        assert f"Stage '{kept}' didn't change, skipping" in out, out
    assert json.loads((repo / "build/noisy/summary.json").read_text())["changed"] > 0

    # A model of the other task fails at once, saying why.
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    bad = subprocess.run(["dvc", "exp", "run", "-S", "model=code2vec"], cwd=repo, env=env,
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert bad.returncode != 0
    assert "does not fit dataset `stdlib-great`" in bad.stdout + bad.stderr


def cache_is_sound(cache: Path) -> int:
    """Every object in a DVC 3 cache hashes to its own name (a torn or mixed-up write would not).
    Returns how many were checked."""
    import hashlib

    checked = 0
    for path in (cache / "files" / "md5").rglob("*"):
        if path.is_file():
            name = path.parent.name + path.name.removesuffix(".dir")
            assert hashlib.md5(path.read_bytes()).hexdigest() == name, path
            checked += 1
    return checked


def test_two_clones_sharing_one_cache_reproduce_at_once(repo, tmp_path_factory):
    """Two checkouts of one project, one DVC cache, `dvc repro` in both at the same time: both finish
    with the same numbers as one alone, the shared cache holds only sound objects, and each clone's
    own build/ (checkpoints, extraction scratch) stays its own."""
    other = tmp_path_factory.mktemp("clone") / "other"
    sh(repo.parent, "git", "clone", "-q", str(repo), str(other))
    sh(other, "dvc", "cache", "dir", "--local", str(repo / ".dvc" / "cache"))
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "CODEMEM_QUIET": "1"}
    runs = [subprocess.Popen(["dvc", "repro"], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True) for cwd in (repo, other)]
    for run in runs:
        out, _ = run.communicate(timeout=900)
        assert run.returncode == 0, out
    first, second = (json.loads((r / "metrics/metrics.json").read_text()) for r in (repo, other))
    drop = ("seconds", "train_seconds")
    assert {k: v for k, v in first.items() if k not in drop} == {k: v for k, v in second.items() if k not in drop}
    assert cache_is_sound(repo / ".dvc" / "cache") > 5
    for r in (repo, other):
        assert "up to date" in sh(r, "dvc", "status")
    assert not (other / ".dvc" / "cache").exists()  # the clone wrote into the shared cache only
