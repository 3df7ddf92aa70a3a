"""repro/code2vec_oracle.py: the original code2vec's input files and log, on hand-made cases."""

import importlib.util
import pickle
from pathlib import Path

import numpy as np
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
    # stored training contexts (tokens a, b, c, var; paths 1, 2): more than the .c2v lines hold
    stored = np.array([[[0, 0, 1], [1, 1, 0], [3, 1, 0]], [[0, 0, 2], [-1, -1, -1], [-1, -1, -1]]], dtype=np.int32)
    np.savez(samples / "contexts.npz", c2v_tokens=np.array(["a", "b", "c", "var"]), c2v_paths=np.array(["1", "2"]),
             c2v_train_ctx=stored, c2v_test_ren_owner=np.array([0]),
             c2v_test_ren_ctx=np.array([[[0, 1, 3]]], dtype=np.int32), labels=np.array(["run"]),
             test_label=np.array([0]))  # fmt: skip
    return tmp_path


def test_write_inputs_takes_noisy_labels_and_counts_as_preprocess(tmp_path):
    run = _run(tmp_path, "sample\ttrue_label\tnoisy_label\tchanged\n0\tget\trun\t1\n1\trun\trun\t0\n")
    counts = oracle.write_inputs(run, str(tmp_path / "out" / "jdk"))
    # the first line's label is the noisy one; contexts and padding unchanged
    assert (tmp_path / "out" / "jdk.train.c2v").read_text() == "run a,1,b b,2,a  \nrun a,1,c  \n"
    assert (tmp_path / "out" / "jdk.test.c2v").read_text() == "run a,2,b  \n"
    with open(tmp_path / "out" / "jdk.dict.c2v", "rb") as f:
        words, paths, targets, examples = (pickle.load(f) for _ in range(4))
    # sources and targets of every stored training context, not only the .c2v lines' (var, path 2)
    assert words == {"a": 4, "b": 2, "c": 1, "var": 1}
    assert paths == {"1": 2, "2": 2}
    assert targets == {"run": 2}  # the noisy labels, not the true ones
    assert examples == 2 and counts["examples"] == 2
    assert (tmp_path / "out" / "jdk.variants.c2v").read_text() == "run a,2,var\n" and counts["variants"] == 1


def test_write_inputs_refuses_mismatched_labels(tmp_path):
    run = _run(tmp_path, "sample\ttrue_label\tnoisy_label\tchanged\n0\tget\trun\t1\n")
    with pytest.raises(SystemExit, match="rerun corrupt"):
        oracle.write_inputs(run, str(tmp_path / "out" / "jdk"))


def test_read_log_wrapped_lines():
    log = ("2026 INFO  After 1 epochs -- top10_acc: [0.6 0.7\n 0.8], precision: 0.7, recall: 0.8, F1: 0.65\n"
           "2026 INFO  Average loss at batch 100: 0.01\n"
           "2026 INFO  After 2 epochs -- top10_acc: [0.8], precision: 0.8, recall: 0.8, F1: 0.8108\n")
    assert oracle.read_log(log) == {1: 0.65, 2: 0.8108}


def test_write_variants_as_c2v_lines_under_the_true_name(tmp_path):
    rows = np.array([[[0, 1, 2], [-1, -1, -1]], [[2, 0, 0], [0, 1, 1]]], dtype=np.int32)  # (R=2, C=2, 3)
    np.savez(tmp_path / "contexts.npz", c2v_tokens=np.array(["a", "var", "b"]), c2v_paths=np.array(["7", "-9"]),
             c2v_test_ren_owner=np.array([1, 1]), c2v_test_ren_ctx=rows, labels=np.array(["get", "to|string"]),
             test_label=np.array([0, 1]))  # fmt: skip
    assert oracle.write_variants(tmp_path / "contexts.npz", str(tmp_path / "jdk")) == 2
    assert (tmp_path / "jdk.variants.c2v").read_text() == "to|string a,-9,b \nto|string b,7,a a,-9,var\n"
    assert (tmp_path / "jdk.variants.owner").read_text() == "1\n1\n"


def test_variant_csr_by_hand():
    # method 0: two variants, one changes; method 1: one variant, unchanged; method 2: none
    counts = oracle.variant_csr(["get", "run", "add"], ["get", "add", "run"], [0, 0, 1])
    assert counts["csr"] == pytest.approx(1 / 3)  # changed variants / variants
    assert counts["csr_samples"] == pytest.approx(1 / 2)  # methods with a changed variant / with a variant


def test_step_log_epochs_takes_the_gini_of_each_epochs_in_step_losses(tmp_path):
    # epoch 1: losses 0, 0, 3, 1 (Gini: sum over sorted (2i - n - 1) x / (n sum) = (1*1 + 3*3) / (4*4));
    # two of four argmaxes equal their targets
    (tmp_path / "saved_model_steplog_ep1.txt").write_text("0.0 3 3\n0.0 2 2\n3.0 1 2\n1.0 0 5\n")
    (tmp_path / "saved_model_steplog_ep2.txt").write_text("2.0 1 1\n2.0 4 4\n")
    (tmp_path / "other_steplog_ep1.txt").write_text("9.0 1 1\n")
    epochs = oracle.step_log_epochs(str(tmp_path / "saved_model"))
    assert list(epochs) == [1, 2]
    assert epochs[1]["lines"] == 4 and epochs[1]["mean_loss"] == 1.0 and epochs[1]["accuracy"] == 0.5
    assert epochs[1]["gini"] == pytest.approx(10 / 16)
    assert epochs[2]["gini"] == 0.0 and epochs[2]["accuracy"] == 1.0
