"""repro/code2vec_oracle.py: the original code2vec's input files and log, on hand-made cases."""

import importlib.util
import pickle
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location(
    "code2vec_oracle", Path(__file__).resolve().parents[1] / "repro" / "code2vec_oracle.py")
oracle = importlib.util.module_from_spec(spec)
spec.loader.exec_module(oracle)


def _run(tmp_path: Path, labels: str) -> Path:
    (tmp_path / "build" / "samples").mkdir(parents=True)
    (tmp_path / "build" / "noisy").mkdir(parents=True)
    samples = tmp_path / "build" / "samples"
    (samples / "train.c2v").write_text("get a,1,b b,2,a  \nrun a,1,c  \n")
    (samples / "val.c2v").write_text("get x,1,y  \n")
    (samples / "test.c2v").write_text("run a,2,b  \n")
    (tmp_path / "build" / "noisy" / "labels.tsv").write_text(labels)
    return tmp_path


def test_write_inputs_takes_noisy_labels_and_counts_as_preprocess(tmp_path):
    run = _run(tmp_path, "sample\ttrue_label\tnoisy_label\tchanged\n0\tget\trun\t1\n1\trun\trun\t0\n")
    counts = oracle.write_inputs(run, str(tmp_path / "out" / "jdk"))
    # the first line's label is the noisy one; contexts and padding unchanged
    assert (tmp_path / "out" / "jdk.train.c2v").read_text() == "run a,1,b b,2,a  \nrun a,1,c  \n"
    assert (tmp_path / "out" / "jdk.test.c2v").read_text() == "run a,2,b  \n"
    with open(tmp_path / "out" / "jdk.dict.c2v", "rb") as f:
        words, paths, targets, examples = (pickle.load(f) for _ in range(4))
    assert words == {"a": 3, "b": 2, "c": 1}  # sources and targets of every training context
    assert paths == {"1": 2, "2": 1}
    assert targets == {"run": 2}  # the noisy labels, not the true ones
    assert examples == 2 and counts["examples"] == 2


def test_write_inputs_refuses_mismatched_labels(tmp_path):
    run = _run(tmp_path, "sample\ttrue_label\tnoisy_label\tchanged\n0\tget\trun\t1\n")
    with pytest.raises(SystemExit, match="rerun corrupt"):
        oracle.write_inputs(run, str(tmp_path / "out" / "jdk"))


def test_read_log_wrapped_lines():
    log = ("2026 INFO  After 1 epochs -- top10_acc: [0.6 0.7\n 0.8], precision: 0.7, recall: 0.8, F1: 0.65\n"
           "2026 INFO  Average loss at batch 100: 0.01\n"
           "2026 INFO  After 2 epochs -- top10_acc: [0.8], precision: 0.8, recall: 0.8, F1: 0.8108\n")
    assert oracle.read_log(log) == {1: 0.65, 2: 0.8108}
