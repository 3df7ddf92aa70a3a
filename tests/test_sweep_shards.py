"""The grid across machines: two clones each run their `--shard i/2` and `dvc exp push` to a shared
bare git remote and a local DVC remote; a third clone `dvc exp pull`s and reports on both."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest
from test_pipeline import ROOT, make_repo, sh, tiny_params
from test_sweep_report import ENV, sweep_module

pytestmark = pytest.mark.e2e


def test_shards_are_a_partition_of_the_grid():
    sweep = sweep_module()
    points = sweep.grid(["code2vec", "code2seq"], ["jdk-top10"], [0.0, 0.5, 1.0], None)
    shares = [sweep.shard(points, i, 4) for i in range(1, 5)]
    assert sorted(p["name"] for s in shares for p in s) == sorted(p["name"] for p in points)
    assert sweep.parse_shard("2/4") == (2, 4)
    for bad in ("0/2", "3/2", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            sweep.parse_shard(bad)


def test_two_machines_push_their_shards_and_a_third_reports_on_both(tmp_path, tiny_corpus):
    (tmp_path / "origin").mkdir()
    origin = make_repo(tmp_path / "origin", tiny_params(tiny_corpus))
    storage, bare = tmp_path / "dvc-storage", tmp_path / "remote.git"
    sh(origin, "dvc", "remote", "add", "-d", "shared", str(storage))
    sh(origin, "dvc", "repro")  # the baseline every machine starts from
    sh(origin, "git", "add", "-A")
    sh(origin, "git", "commit", "-qm", "baseline")
    sh(origin, "dvc", "push")
    sh(tmp_path, "git", "clone", "-q", "--bare", str(origin), str(bare))

    def machine(name: str):
        sh(tmp_path, "git", "clone", "-q", str(bare), name)
        clone = tmp_path / name
        sh(clone, "git", "config", "user.name", "codemem test")
        sh(clone, "git", "config", "user.email", "test@localhost")
        sh(clone, "dvc", "pull", "-q")  # the baseline's outputs: fetch and extract are not rerun
        return clone

    sweep = [sys.executable, str(ROOT / "repro/sweep.py"), "--noise", "0", "--noise", "1",
             "--set", "train.epochs=1", "--push", "origin"]  # fmt: skip
    for i, extra in ((1, []), (2, ["--gpus", "0"])):  # machine 2 through a GPU queue worker (CPU here)
        clone = machine(f"machine{i}")
        done = subprocess.run([*sweep, "--shard", f"{i}/2", *extra], cwd=clone, env=ENV, capture_output=True,
                              text=True, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "1 of 1 experiments succeeded" in done.stderr and "pushed 1 experiments" in done.stderr
        if extra:
            assert sweep_module().live_workers(clone) == []

    reporter = machine("reporter")
    sh(reporter, "dvc", "exp", "pull", "origin")
    report = json.loads(sh(reporter, sys.executable, "-m", "codemem", "report"))
    assert report["experiments"] == 2
    table = (reporter / "plots/report.md").read_text()
    assert "| code2vec | jdk-top10 | 0.0 |" in table and "| code2vec | jdk-top10 | 1.0 |" in table
