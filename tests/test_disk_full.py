"""A full disk is the user's situation, not a bug: one line (where, how much, what to free), exit 2,
the stage's outputs as they were before it ran."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from lookalike import small_corpus
from typer.testing import CliRunner

from codemem.__main__ import app
from codemem.varmisuse import python_corpus

TINY_GREAT = {"hidden": 32, "num_layers": 1, "num_heads": 2, "attention_dim": 32, "ff_dim": 64}


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    settings = {"dataset": "stdlib-great", "model": "great", "fetch": {"source": str(small_corpus(tmp_path / "lib"))},
                "extract": {"split": [0.6, 0.0, 0.4]}, "great": TINY_GREAT,
                "train": {"epochs": 1, "samples_per_step": 16, "measure_samples": 8, "heldout": "eval"}}
    Path("params.yaml").write_text(json.dumps(settings))
    return tmp_path


def cli(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_full_disk_during_extract_is_one_line_and_leaves_the_samples_as_they_were(project, monkeypatch):
    assert cli("fetch").exit_code == 0 and cli("extract").exit_code == 0
    before = outputs(project / "build/samples")
    write_split = python_corpus._write_split

    def full_after_a_few_bytes(spill, out, keep_clean, keep_buggy):
        out.write_bytes(b'{"half a sample')
        raise OSError(errno.ENOSPC, "No space left on device", str(out))

    monkeypatch.setattr(python_corpus, "_write_split", full_after_a_few_bytes)
    result = cli("extract")
    assert result.exit_code == 2
    line = " ".join(result.output.split())  # the terminal may wrap it
    assert "no space left on the device while writing the balanced samples" in line
    assert "MiB free" in line and "dvc gc" in line and "extract" in line
    assert "Traceback" not in result.output
    assert outputs(project / "build/samples") == before  # as before the stage ran
    assert not [p for p in (project / "build").iterdir() if p.name.startswith(".samples")]  # no half-written copy
    monkeypatch.setattr(python_corpus, "_write_split", write_split)
    assert cli("extract").exit_code == 0 and outputs(project / "build/samples") == before


def test_too_small_a_disk_is_refused_before_the_work(project, monkeypatch):
    assert cli("fetch").exit_code == 0
    monkeypatch.setenv("CODEMEM_FREE_BYTES", str(1 << 20))
    result = cli("extract")
    line = " ".join(result.output.split())
    assert result.exit_code == 2 and "stdlib-great's samples and their spills needs about" in line
    assert "1 MiB free" in line and not Path("build/samples").exists()

    monkeypatch.delenv("CODEMEM_FREE_BYTES")
    assert cli("extract").exit_code == 0 and cli("corrupt").exit_code == 0
    monkeypatch.setenv("CODEMEM_FREE_BYTES", "1000")
    result = cli("train")
    line = " ".join(result.output.split())
    assert result.exit_code == 2 and "the training checkpoint needs about" in line and "dvc gc" in line
    assert not Path("build/checkpoints/train.pt").exists() and not Path("build/model").exists()
