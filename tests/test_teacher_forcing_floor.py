"""repro/teacher_forcing_floor.py against hand-computed cases."""

import importlib.util
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location(
    "teacher_forcing_floor", Path(__file__).resolve().parents[1] / "repro" / "teacher_forcing_floor.py")
floor = importlib.util.module_from_spec(spec)
spec.loader.exec_module(floor)


def test_floor_by_hand():
    # true `a` labelled `b|c`: `c` follows `b` (TP 1), the first sub-token wrong (FP 1, FN 1);
    # true `b|c` labelled `a`: FP 1, FN 1. TP 1, FP 2, FN 2: P = R = F1 = 1/3.
    assert floor.floor_f1({"a": 1, "b|c": 1}) == pytest.approx(1 / 3)
    assert floor.floor_f1({"a": 5, "b": 7}) == 0.0  # one-sub-token names: nothing to continue
    # Java-Top10: 4 two-sub-token names of 10, each label drawn from the other nine: 4 / 14.
    assert floor.floor_f1(dict.fromkeys(floor.JAVA_TOP10, 1000)) == pytest.approx(4 / 14)
