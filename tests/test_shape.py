"""The project's seams: paths in one place, user errors apart from bugs, checkpoints that are set
aside rather than trusted, atomic outputs, settings that are rejected rather than ignored."""

from __future__ import annotations

import collections

import pandas as pd
import pytest
import torch
from ruamel.yaml import YAML
from typer.testing import CliRunner

from codemem import storage, train
from codemem.__main__ import app
from codemem.errors import MissingInputError
from codemem.methodname.name_training import _vocabulary
from codemem.params import ParamsError, from_dict
from codemem.report import Experiment, table

ROOT = storage.Layout(storage.Path(__file__).resolve().parents[1])


def test_dvc_yaml_names_the_paths_of_layout():
    """Every build/, plots/ and metrics/ path dvc.yaml declares is one codemem.storage.Layout names (or a
    file in one of its folders), so a stage never writes where DVC does not look."""
    stages = YAML(typ="safe").load((ROOT.root / "dvc.yaml").read_text())["stages"]
    layout = storage.Layout()
    named = {str(getattr(layout, k)) for k in dir(storage.Layout) if isinstance(getattr(storage.Layout, k), property)}
    declared = set()
    for stage in stages.values():
        for group in ("deps", "outs", "metrics"):
            for entry in stage.get(group, []):
                path = next(iter(entry)) if isinstance(entry, dict) else entry
                if path.startswith(("build/", "plots/", "metrics/")):
                    declared.add(path)
    assert declared
    for path in declared:
        assert path in named or str(storage.Path(path).parent) in named, path


def test_atomic_dir_keeps_the_old_outputs_when_a_stage_fails(tmp_path):
    target = tmp_path / "out"
    with storage.atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("first")
    with pytest.raises(RuntimeError), storage.atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("killed mid-stage")
    assert (target / "a.txt").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left


def test_a_user_error_is_one_line_and_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("dataset: jdk-top10\n")
    runner = CliRunner()
    missing = runner.invoke(app, ["train"])
    assert missing.exit_code == 2
    assert missing.output.strip().splitlines() == [
        "error (train): build/samples/contexts.npz is missing: run the extract stage first (`dvc repro extract`)"]

    def bug(params, layout=None):
        raise KeyError("an internal bug")

    monkeypatch.setattr(train, "run", bug)
    crashed = runner.invoke(app, ["train"])
    assert crashed.exit_code == 1 and isinstance(crashed.exception, KeyError)  # not dressed up as bad input


def test_missing_inputs_name_the_stage_to_run(tmp_path):
    with pytest.raises(MissingInputError, match=r"labels.tsv is missing: run the corrupt stage"):
        storage.load_noisy_labels(tmp_path)


def test_unreadable_and_foreign_checkpoints_are_set_aside(tmp_path):
    path = tmp_path / "train.pt"
    path.write_bytes(b"PK\x03\x04 truncated")  # a zip header and nothing else, as after a cut copy
    assert train.load_checkpoint(path, "mine", 5, "cpu") is None
    assert not path.exists() and (tmp_path / "train.pt.unreadable").exists()

    train.save_checkpoint(path, {"fingerprint": "another run", "epoch": 1})
    assert train.load_checkpoint(path, "mine", 5, "cpu") is None
    assert not path.exists() and (tmp_path / "train.pt.foreign").exists()

    train.save_checkpoint(path, {"fingerprint": "mine", "epoch": 2, "model": torch.zeros(1)})
    assert train.load_checkpoint(path, "mine", 5, "cpu")["epoch"] == 2
    assert train.load_checkpoint(path, "mine", 1, "cpu") is None  # past a shorter run's end: not resumed


def test_settings_that_would_do_nothing_are_rejected():
    with pytest.raises(ParamsError, match=r"code2seq.max_contexts"):
        from_dict({"model": "code2seq", "code2seq": {"max_contexts": 100}})
    assert from_dict({"model": "code2seq", "code2seq": {"target_vocab_max_size": 5}}).model_config().target_vocab_max_size == 5


def test_code2seq_vocabularies_keep_the_most_frequent_entries():
    uses = collections.Counter({"get": 5, "set": 5, "run": 3, "zap": 1, "add": 1})
    assert _vocabulary(uses, 10) == ["add", "get", "run", "set", "zap"]  # under the cap: all, by name
    assert _vocabulary(uses, 3) == ["get", "run", "set"]
    assert _vocabulary(uses, 4) == ["add", "get", "run", "set"]  # a tie at the cut goes by name


def test_report_table_averages_seeds_and_quotes_the_study():
    def run(seed, f1):
        return Experiment(name=f"s{seed}", rev="r", model="code2vec", dataset="jdk-top10", noise=1.0, seed=seed,
                          metrics={"test_f1": f1, "gini": 0.5}, epochs=None, scores=None)  # fmt: skip

    published = pd.DataFrame([{"model": "code2vec", "dataset": "java-top10", "metric": "test_f1",
                               "noise_0": 0.854, "noise_100": 0.035}])  # fmt: skip
    markdown = table([run(0, 0.1), run(1, 0.3)], published)
    row = next(line for line in markdown.splitlines() if line.startswith("| code2vec"))
    assert "| 2 |" in row and "0.200 ± 0.100 (0.035)" in row and "| 0.500 ± 0.000 |" in row
    assert table([], published) == "No finished experiments.\n"
