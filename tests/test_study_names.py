"""repro/study_names.py: our names swapped one for one for Java-Top10's, on hand-made cases."""

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

REPRO = Path(__file__).resolve().parents[1] / "repro"
sys.path.insert(0, str(REPRO))
spec = importlib.util.spec_from_file_location("study_names", REPRO / "study_names.py")
study_names = importlib.util.module_from_spec(spec)
spec.loader.exec_module(study_names)

OURS = ["write", "to|string", "hash|code", "equals", "get", "run", "add", "of", "contains", "accept"]


def test_shared_names_stay_and_the_rest_take_the_free_names_by_frequency():
    counts = Counter({"accept": 9, "contains": 5, "write": 5, "of": 3, "add": 1, "equals": 50})
    mapping = study_names.study_names(OURS, counts)
    assert sorted(mapping) == sorted(OURS) and sorted(mapping.values()) == sorted(study_names.JAVA_TOP10)
    for shared in ("to|string", "hash|code", "equals", "get", "run"):
        assert mapping[shared] == shared
    # free Java-Top10 names in its order: init, main, on|create, set|up, execute; contains/write tie: by name
    assert [mapping[n] for n in ("accept", "contains", "write", "of", "add")] == [
        "init", "main", "on|create", "set|up", "execute"]


def test_rename_rewrites_only_the_names_array(tmp_path):
    path = tmp_path / "contexts.npz"
    np.savez(path, labels=np.array(OURS), train_label=np.array([9, 9, 0, 1]), test_label=np.array([2]))
    mapping = study_names.rename(path)
    with np.load(path) as z:
        assert [str(n) for n in z["labels"]] == [mapping[n] for n in OURS]
        assert z["train_label"].tolist() == [9, 9, 0, 1] and z["test_label"].tolist() == [2]
    assert mapping["accept"] == "init" and not list(tmp_path.glob("*.renaming.npz"))


def test_a_label_set_of_another_size_is_refused():
    with pytest.raises(ValueError, match="top-10"):
        study_names.study_names(OURS[:9], Counter())
