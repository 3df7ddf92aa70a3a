"""Data-parallel training (codemem.distributed): 2 gloo processes under torchrun against 1 process.

With dropout off, the 2-process run is the 1-process run up to float summation order: each rank's
share of a batch adds its term of the whole batch's loss (Training.shard_loss; VarMisuse's repair
mean is over the buggy samples of the whole batch). With dropout on, each rank draws its own masks:
the curves then agree within the noise of dropout (docs/scale-out.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lookalike import small_corpus

from codemem import corrupt, distributed, extract, fetch, train
from codemem.params import load

STDLIB = Path(sysconfig.get_paths()["stdlib"])
TINY_GREAT = {"hidden": 32, "num_layers": 1, "num_heads": 2, "attention_dim": 32, "ff_dim": 64}


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_params(path: Path, values: dict) -> None:
    path.write_text(json.dumps(values))  # JSON is YAML


def child_env() -> dict:
    """This codemem (its src first on the path), quiet, one thread a process."""
    path = os.pathsep.join(filter(None, [str(Path(train.__file__).parents[1]), os.environ.get("PYTHONPATH")]))
    return os.environ | {"CODEMEM_QUIET": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": path}


def torchrun(cwd: Path, processes: int = 2) -> None:
    env = child_env()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
           "-m", "codemem", "train"]  # fmt: skip
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == 0, f"torchrun failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def outputs() -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    return pd.read_csv("plots/epochs.csv"), dict(np.load("build/logs/per_sample.npz"))


def metric_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if not c.endswith("seconds")]


def one_then_two_processes(workdir, values):
    """The pipeline up to train in one process, then train again under torchrun with two."""
    write_params(workdir / "params.yaml", values)
    params = load("params.yaml")
    fetch.run(params)
    extract.run(params)
    corrupt.run(params)
    one = pd.DataFrame(train.run(params))
    one_logs = dict(np.load("build/logs/per_sample.npz"))
    shutil.rmtree("build/checkpoints")
    torchrun(workdir)
    return (one, one_logs, *outputs())


def test_shards_and_interleave_put_a_batch_back_in_order():
    group = distributed.Group(rank=1, world=3)
    batch = np.arange(10)
    assert distributed.shard(batch, group).tolist() == [1, 4, 7]
    pieces = [distributed.shard(batch, distributed.Group(r, 3)) for r in range(3)]
    assert distributed.interleave(pieces).tolist() == batch.tolist()
    assert distributed.shard(batch, distributed.SINGLE) is batch


def test_batch_share_gives_each_rank_whole_batches():
    assert distributed.batch_share(9, 4, distributed.Group(0, 2)).tolist() == [0, 1, 2, 3, 8]
    assert distributed.batch_share(9, 4, distributed.Group(1, 2)).tolist() == [4, 5, 6, 7]
    assert distributed.batch_share(3, 4, distributed.Group(1, 2)).tolist() == []
    shares = [distributed.batch_share(10, 3, distributed.Group(r, 3)) for r in range(3)]
    assert sorted(np.concatenate(shares).tolist()) == list(range(10))


def test_code2vec_two_processes_equal_one_and_resume(workdir, tiny_corpus):
    values = {
        "fetch": {"source": str(tiny_corpus)}, "noise": 0.5,
        "extract": {"top_names": 3, "per_name": 40, "split": [0.6, 0.2, 0.2], "workers": 1},
        "train": {"epochs": 2, "batch_size": 32, "threads": 1},
        "code2vec": {"dropout_keep": 1.0},  # dropout off: the same computation, split in two
    }  # fmt: skip
    one, one_logs, two, two_logs = one_then_two_processes(workdir, values)
    columns = metric_columns(one)
    # Float summation order only: the same predictions, losses equal to ~1e-6.
    pd.testing.assert_frame_equal(one[columns], two[columns], check_exact=False, atol=1e-5, rtol=1e-5)
    assert two_logs.keys() == one_logs.keys()
    for key, value in one_logs.items():  # the in-step losses of both ranks, gathered in place
        np.testing.assert_allclose(two_logs[key], value, atol=1e-5, rtol=1e-5, err_msg=key)
    assert json.loads(Path("build/logs/counts.json").read_text())["processes"] == 2

    # Resume: "killed" after epoch 1, then the 2-epoch run again: the uninterrupted run's numbers.
    shutil.rmtree("build/checkpoints")
    write_params(workdir / "params.yaml", values | {"train": values["train"] | {"epochs": 1}})
    torchrun(workdir)
    # ... through `train.processes: 2`: `python -m codemem train` starts itself under torchrun.
    write_params(workdir / "params.yaml", values | {"train": values["train"] | {"processes": 2}})
    done = subprocess.run([sys.executable, "-m", "codemem", "train"], cwd=workdir, env=child_env(), capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    resumed, resumed_logs = outputs()
    pd.testing.assert_frame_equal(two[columns], resumed[columns])
    assert all(np.array_equal(v, resumed_logs[k]) for k, v in two_logs.items())


def test_code2seq_two_processes_equal_one_measuring_in_halves(workdir, tiny_corpus):
    """code2seq's predictions depend on the evaluation batches (dynamic_decode runs each batch until
    its last sequence ends): each rank measures whole batches (every other one of 4 samples) and
    the gathered measurements are the one-process run's. Dropout off and no more stored contexts
    than the model takes (its per-step sampling then only reorders them): float order only."""
    values = {
        "model": "code2seq", "fetch": {"source": str(tiny_corpus)}, "noise": 0.5,
        "extract": {"top_names": 3, "per_name": 40, "split": [0.6, 0.2, 0.2], "workers": 1,
                    "max_contexts_stored": 200},
        "train": {"epochs": 1, "batch_size": 32, "eval_batch_size": 4, "threads": 1},
        "code2seq": {"embeddings_dropout_keep": 1.0, "rnn_dropout_keep": 1.0},
    }  # fmt: skip
    one, one_logs, two, two_logs = one_then_two_processes(workdir, values)
    columns = metric_columns(one)
    pd.testing.assert_frame_equal(one[columns], two[columns], check_exact=False, atol=1e-4, rtol=1e-4)
    for key, value in one_logs.items():
        np.testing.assert_allclose(two_logs[key], value, atol=1e-4, rtol=1e-4, err_msg=key)
    assert one_logs["test_score"].shape[1] % 4 and one_logs["test_score"].shape[1] > 8  # 3+ batches, one short


def test_great_two_processes_follow_one(workdir):
    values = {
        "dataset": "stdlib-great", "model": "great", "noise": 0.5,
        "fetch": {"source": str(small_corpus(workdir / "lib"))},
        "extract": {"split": [0.6, 0.0, 0.4]},
        "train": {"epochs": 2, "samples_per_step": 48, "measure_samples": 40, "heldout": "eval", "threads": 1},
        "great": TINY_GREAT | {"dropout": 0.0},
    }  # fmt: skip
    one, one_logs, two, two_logs = one_then_two_processes(workdir, values)
    # Each rank's term weights by the whole batch's counts (Training.shard_loss): float order only.
    pd.testing.assert_frame_equal(one[metric_columns(one)], two[metric_columns(one)], check_exact=False,
                                  atol=1e-4, rtol=1e-4)  # fmt: skip
    assert two_logs.keys() == one_logs.keys()
    assert two_logs["in_step_loc_loss"].shape == one_logs["in_step_loc_loss"].shape == (2, 48)
    for key, value in one_logs.items():  # the in-step losses of both ranks, gathered in batch order
        np.testing.assert_allclose(two_logs[key], value, atol=1e-4, rtol=1e-4, err_msg=key)
