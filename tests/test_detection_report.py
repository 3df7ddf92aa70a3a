"""repro/detection_report.py: the committed report draws on the detection runs and on the noise
sweep's kept runs, one row set per (model, noise, seed)."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_report_module():
    spec = importlib.util.spec_from_file_location("detection_report", ROOT / "repro" / "detection_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kept_run(folder: Path, model: str, noise: float, seed: int, auroc: float, flipped: int) -> None:
    folder.mkdir(parents=True)
    detection = {"flipped": flipped, "measured": 100, "loss": {"auroc": auroc, "auprc": 0.5, "precision_at_k": 0.4}}
    metrics = {"model": model, "noise": noise, "seed": seed, "test_f1": 0.5, "detection": detection}
    (folder / "run.json").write_text(json.dumps({"model": model, "noise": noise, "seed": seed, "metrics": metrics}))


def test_sweep_runs_feed_the_report_where_no_detection_run_exists(tmp_path, monkeypatch):
    report = load_report_module()
    sweep, detection_dir = tmp_path / "runs", tmp_path / "detection"
    kept_run(sweep / "c2v-n025-s0", "code2vec", 0.25, 0, auroc=0.61, flipped=25)  # a detection run exists
    kept_run(sweep / "c2v-n025-s1", "code2vec", 0.25, 1, auroc=0.81, flipped=25)
    kept_run(sweep / "c2v-n000-s1", "code2vec", 0.0, 1, auroc=0.99, flipped=0)  # nothing to detect
    (detection_dir / "runs").mkdir(parents=True)
    own = {"model": "code2vec", "noise": 0.25, "seed": 0, "noisy_test_f1": 0.6, "retrained_test_f1": 0.7,
           "dropped": 25, "dropped_flipped": 20, "drop_signal": "loss",
           "detection": {"loss": {"auroc": 0.91, "auprc": 0.8, "precision_at_k": 0.7}}}  # fmt: skip
    (detection_dir / "runs" / "code2vec-noise0.25-seed0.json").write_text(json.dumps(own))
    monkeypatch.setattr(report, "REPORT", detection_dir)

    assert [r["seed"] for r in report.sweep_runs(sweep)] == [0, 1]
    table = report.collect(sweep)
    loss = table[table["signal"] == "loss"].set_index("seed")["auroc"]
    assert loss.to_dict() == {0: 0.91, 1: 0.81}  # seed 0 from the detection run, not the sweep's 0.61
    assert len(table[table["signal"].str.startswith("retrain")]) == 1


def test_each_model_runs_on_its_tasks_corpus_and_is_judged_by_its_measure():
    report = load_report_module()
    assert report.dataset_for("great") == report.dataset_for("ggnn") == "stdlib-great"
    assert report.dataset_for("code2seq") == "jdk-top10"  # params.yaml's MethodName corpus
    assert report.HEADLINE[report.task_of("great")][:2] == ("loc_acc", "test_loc_acc")
    assert report.HEADLINE[report.task_of("code2vec")][:2] == ("test_f1", "test_f1")
