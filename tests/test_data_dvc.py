"""Versioned data with the real `dvc`: the downloaded archive is pushed to a DVC remote (a local folder
here), and a fresh clone pulls it and reproduces the pipeline with the original host gone."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from lookalike import Server, java_archive
from ruamel.yaml import YAML
from test_pipeline import ROOT, make_repo, sh

pytestmark = pytest.mark.e2e


def java_small_params(url: str) -> dict:
    params = YAML().load((ROOT / "params.yaml").read_text())
    params["dataset"] = "java-small"
    params["fetch"]["url"] = url
    params["fetch"]["retries"] = 0
    params["extract"].update(max_contexts=20, max_contexts_stored=40)
    params["train"]["epochs"] = 1
    return params


def test_push_then_pull_in_a_fresh_clone_reproduces_without_the_host(tmp_path, jdk_src_zip):
    archive = tmp_path / "java-small.tar.gz"
    java_archive(jdk_src_zip, archive)
    first, clone, store = tmp_path / "first", tmp_path / "clone", tmp_path / "dvc-remote"
    first.mkdir()
    with Server() as server:
        server.files["/java-small.tar.gz"] = archive.read_bytes()
        repo = make_repo(first, java_small_params(server.url))
        sh(repo, "dvc", "repro", "extract")  # download, verify, extract (the clone goes on to train)
        assert len(server.requests) == 1
    report = json.loads((repo / "build/samples/report.json").read_text())
    checksums = json.loads((repo / "data.checksums.json").read_text())
    assert checksums["java-small.tar.gz"]["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()

    # Version the verified bytes and push them to a DVC remote.
    sh(repo, "dvc", "add", "data")
    sh(repo, "dvc", "remote", "add", "-d", "store", str(store))
    sh(repo, "git", "add", "data.dvc", ".gitignore", "data.checksums.json", ".dvc/config")
    sh(repo, "git", "commit", "-qm", "java-small, versioned")
    sh(repo, "dvc", "push")

    # Elsewhere, with the host gone (the server is shut down): clone, pull, reproduce.
    sh(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    sh(clone, "dvc", "pull", "data.dvc")
    assert (clone / "data/java-small.tar.gz").read_bytes() == archive.read_bytes()
    out = sh(clone, "dvc", "repro")
    assert "Running stage 'fetch'" in out and "Running stage 'extract'" in out, out
    assert json.loads((clone / "build/samples/report.json").read_text()) == report
    assert json.loads((clone / "build/raw/manifest.json").read_text())["origin"].startswith("data/")
    metrics = json.loads((clone / "metrics/metrics.json").read_text())
    with np.load(clone / "build/samples/contexts.npz") as z:  # code2vec (measure: study) trains on the
        written = int(z["train_code_line"].sum())  # methods its extractor writes: those with a code line
    assert metrics["dataset"] == "java-small" and metrics["train_samples"] == written <= report["samples_train"]
    assert (clone / "plots/epochs.csv").read_text().count("\n") == 2  # header + one epoch
