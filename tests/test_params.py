"""params.yaml: defaults, YAML 1.2 floats, clear errors."""

import pytest

from codemem.params import ParamsError, from_dict, load


def test_repository_params_load():
    p = load("params.yaml")
    assert p.task == "methodname" and p.model_config().dropout_keep == 0.75


def test_yaml12_float_and_override(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("noise: 0.75\ncode2vec:\n  learning_rate: 1e-4\ntrain: {epochs: 3}\n")
    p = load(f)
    assert p.noise == 0.75 and p.model_config().learning_rate == 1e-4 and p.train.epochs == 3


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"noise": 1.5}, r"outside \[0, 1\]"),
        ({"noise": -0.1}, r"outside \[0, 1\]"),
        ({"model": "bert"}, "choose one of"),
        ({"dataset": "nope"}, "choose one of"),
        ({"train": {"epochz": 3}}, "valid keys under `train`"),
        ({"train": {"epochs": "many"}}, "train.epochs"),
        ({"extract": {"split": [0.5, 0.5]}}, "extract.split"),
        ({"code2vec": {"dropout": 0.1}}, "code2vec.dropout"),
        ({"whatever": 1}, "unknown top-level"),
        ({"model": "great"}, "does not fit dataset `jdk-top10`.*models for methodname: code2vec, code2seq"),
    ],
)
def test_bad_values_say_what_and_where(raw, message):
    with pytest.raises(ParamsError, match=message):
        from_dict(raw)


def test_clean_and_retrain_names_a_detection_signal_the_model_logs():
    from codemem.params import ParamsError, from_dict

    assert from_dict({"noise": 0.5, "train": {"drop_flagged": "aum", "drop_share": 0.3}}).train.drop_share == 0.3
    with pytest.raises(ParamsError, match="drop_flagged must be one of"):
        from_dict({"train": {"drop_flagged": "cleanlab"}})
    # VarMisuse retrains too (tests/test_varmisuse_retrain.py), but without the in-step signal.
    assert from_dict({"dataset": "stdlib-great", "model": "great", "train": {"drop_flagged": "loss"}})
    with pytest.raises(ParamsError, match="in_step_loss is not offered for model great"):
        from_dict({"dataset": "stdlib-great", "model": "great", "train": {"drop_flagged": "in_step_loss"}})
    with pytest.raises(ParamsError, match="aum is not offered for model code2seq"):
        from_dict({"model": "code2seq", "train": {"drop_flagged": "aum"}})
    with pytest.raises(ParamsError, match="train.drop_share"):
        from_dict({"train": {"drop_share": 0.2}})  # without a signal there is nothing to drop
