"""SIGTERM to a real `python -m codemem train`: the current step finishes, a mid-epoch checkpoint is
written, the exit code and message say what happened, and the resumed run ends with the numbers of
an uninterrupted one."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from lookalike import small_corpus

from codemem import corrupt, extract, fetch
from codemem.params import from_dict

TINY_GREAT = {"hidden": 32, "attention_dim": 32, "ff_dim": 64, "num_heads": 2, "num_layers": 2,
              "learning_rate": 1.0e-3, "max_batch_tokens": 400}  # fmt: skip


def settings(model: str, corpus: Path) -> dict:
    if model == "great":
        return {"dataset": "stdlib-great", "model": "great", "noise": 0.5, "fetch": {"source": str(corpus)},
                "extract": {"split": [0.6, 0.0, 0.4]}, "great": TINY_GREAT,
                "train": {"epochs": 4, "samples_per_step": 96, "measure_samples": 20, "heldout": "eval"}}
    return {"model": "code2vec", "noise": 0.5, "fetch": {"source": str(corpus)},
            "extract": {"top_names": 3, "per_name": 40, "split": [0.6, 0.2, 0.2], "workers": 1},
            "train": {"epochs": 4, "batch_size": 1, "csr": False}}  # many short steps: a signal lands in one


def train(cwd: Path, quiet: bool = True) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "CODEMEM_QUIET"} | ({"CODEMEM_QUIET": "1"} if quiet else {})
    return subprocess.Popen([sys.executable, "-m", "codemem", "train"], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


@pytest.mark.parametrize("model", ["code2vec", "great"])
def test_sigterm_checkpoints_mid_epoch_and_the_resumed_run_equals_an_uninterrupted_one(
        tmp_path, monkeypatch, tiny_corpus, model):
    corpus = small_corpus(tmp_path / "lib") if model == "great" else tiny_corpus
    raw = settings(model, corpus)
    first, second = tmp_path / "stopped", tmp_path / "whole"
    first.mkdir()
    monkeypatch.chdir(first)
    Path("params.yaml").write_text(json.dumps(raw))  # JSON is YAML
    params = from_dict(raw)
    fetch.run(params)
    extract.run(params)
    corrupt.run(params)
    shutil.copytree(first, second)

    checkpoint = first / "build/checkpoints/train.pt"
    for _ in range(2):  # a signal that lands while an epoch is measured stops after it: then once more
        saved = checkpoint.stat().st_mtime_ns if checkpoint.exists() else 0
        proc, deadline = train(first), time.time() + 300
        while (not checkpoint.exists() or checkpoint.stat().st_mtime_ns == saved) and time.time() < deadline:
            time.sleep(0.002)
        proc.send_signal(signal.SIGTERM)  # an epoch was just saved: the next one's steps are under way
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 128 + signal.SIGTERM, output
        assert "dvc repro" in output and str(checkpoint.relative_to(first)) in output and "Traceback" not in output
        if "stopped by SIGTERM after step" in output:
            break
        assert "stopped by SIGTERM after epoch" in output, output
    partial = torch.load(checkpoint, weights_only=False)["partial"]
    assert partial["epoch"] >= 1 and partial["step"] >= 1

    resumed = train(first, quiet=False)  # its log says where it resumed
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0 and f"resuming after step {partial['step']} of" in output, output
    whole = train(second)
    whole.communicate(timeout=300)
    assert whole.returncode == 0

    a, b = pd.read_csv(first / "plots/epochs.csv"), pd.read_csv(second / "plots/epochs.csv")
    columns = [c for c in a.columns if not c.endswith("seconds")]
    pd.testing.assert_frame_equal(a[columns], b[columns])
    logs_a, logs_b = np.load(first / "build/logs/per_sample.npz"), np.load(second / "build/logs/per_sample.npz")
    assert sorted(logs_a) == sorted(logs_b)
    assert [k for k in logs_a if not np.array_equal(logs_a[k], logs_b[k])] == [], (partial, output)
    model_a = torch.load(first / "build/model/model.pt", weights_only=False)["model"]
    model_b = torch.load(second / "build/model/model.pt", weights_only=False)["model"]
    assert all(torch.equal(model_a[k], model_b[k]) for k in model_b)


def test_sigterm_during_extract_is_one_line_and_the_next_run_goes_on(tmp_path, monkeypatch):
    import sysconfig

    corpus = tmp_path / "lib"
    corpus.mkdir()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.glob("*.py"))[:120]:
        shutil.copy(path, corpus / path.name)
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(json.dumps({"dataset": "stdlib-great", "model": "great",
                                               "fetch": {"source": str(corpus)}}))
    fetch.run(from_dict(json.loads(Path("params.yaml").read_text())))
    env = {k: v for k, v in os.environ.items() if k != "CODEMEM_QUIET"} | {"CODEMEM_QUIET": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "codemem", "extract"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + 120
    while not list(Path("build").glob("extract-work/*/incoming/*.jsonl")) and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, output
    assert "stopped by SIGTERM" in output and "dvc repro" in output and "Traceback" not in output
    assert not Path("build/samples").exists()  # nothing half-written under the output's name
    again = subprocess.run([sys.executable, "-m", "codemem", "extract"], capture_output=True, text=True, env=env,
                           check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(Path("build/samples/report.json").read_text())["samples"] > 0


def test_forked_workers_get_the_default_signal_action_back():
    """A stage's own SIGTERM handler is Python code, which a worker blocked in C (a lock held when it
    was forked) never runs: such a worker would ignore `Pool.terminate()` and hang the stage. Forked
    children must die of the signal at the kernel's hand."""
    code = textwrap.dedent("""
        import os, signal
        from codemem.__main__ import _stop_on_signals
        _stop_on_signals()
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None)
        pid = os.fork()
        if pid == 0:
            ok = all(signal.getsignal(s) == signal.SIG_DFL for s in (signal.SIGTERM, signal.SIGINT))
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "0", out.stdout + out.stderr
