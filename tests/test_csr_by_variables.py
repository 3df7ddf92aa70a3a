"""repro/csr_by_variables.py: hand-computed groupings, and on a tiny trained code2vec the ratio it
recomputes from build/model equals the one training logged for the last epoch."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from codemem import corrupt, extract, fetch, train
from codemem.params import from_dict

spec = importlib.util.spec_from_file_location(
    "csr_by_variables", Path(__file__).resolve().parents[1] / "repro" / "csr_by_variables.py")
by_variables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(by_variables)


def test_per_method_counts_variants_and_changes():
    # method 0: two variants, one changes; method 1: none; method 2: three variants, all change
    variants, changed = by_variables.per_method(["a", "b", "c"], ["a", "x", "y", "y", "z"], np.array([0, 0, 2, 2, 2]), 3)
    assert variants.tolist() == [2, 0, 3] and changed.tolist() == [1, 0, 3]
    assert by_variables.ratio_at_least(variants, changed, 1) == pytest.approx((4 / 5, 2, 2.5))
    assert by_variables.ratio_at_least(variants, changed, 3) == pytest.approx((1.0, 1, 3.0))
    assert by_variables.matching_k(variants, 2.5) == 1 and by_variables.matching_k(variants, 2.6) == 3


def test_recomputes_the_logged_csr_from_the_trained_model(tiny_corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    settings = {"model": "code2vec", "noise": 0.5, "fetch": {"source": str(tiny_corpus)},
                "extract": {"top_names": 3, "per_name": 40, "split": [0.6, 0.2, 0.2], "workers": 1},
                "train": {"epochs": 2, "batch_size": 32}}  # fmt: skip
    Path("params.yaml").write_text(json.dumps(settings))
    params = from_dict(settings)
    for stage in (fetch, extract, corrupt, train):
        stage.run(params)
    test_pred, variant_pred, owner, contexts, _, _ = by_variables.predictions(tmp_path)
    variants, changed = by_variables.per_method(test_pred, variant_pred, owner, len(test_pred))
    last = pd.read_csv("plots/epochs.csv").iloc[-1]
    assert variants.sum() == last["csr_variant_count"] > 0
    assert changed.sum() == last["csr_changed"]
    assert len(contexts) == len(test_pred) and contexts.min() > 0
    by_variables.report(tmp_path)
    printed = capsys.readouterr().out
    assert f"{variants.sum()} variants" in printed and f"CSR over variants {last['csr_variants']:.3f}" in printed
