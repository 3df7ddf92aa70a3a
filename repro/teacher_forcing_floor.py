"""The train F1 a code2seq that memorizes nothing still scores under teacher forcing, at 100 % noise.

    python repro/teacher_forcing_floor.py                    # build/samples/methods.jsonl's training names
    python repro/teacher_forcing_floor.py --study            # Java-Top10's ten names, ~1,000 each

The study's code2seq train F1 comes from the training step's teacher-forced argmax (docs/fidelity.md).
Under 100 % noise a sample's label is another of the ten names, drawn uniformly. A model that has
memorized none of them gets the first sub-token of the label wrong, but, fed the label's true
sub-tokens, predicts the rest of a multi-sub-token name (`to` -> `string`, `hash` -> `code`): per
sample TP = m - 1, FP = 1, FN = 1 for a label of m sub-tokens, summed over the training set as the
F1 counts them. The floor depends only on the names: more two-sub-token names, a higher floor.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

JAVA_TOP10 = ("init", "main", "equals", "run", "on|create", "set|up", "to|string", "hash|code", "execute", "get")


def floor_f1(counts: dict[str, int]) -> float:
    """Expected sub-token F1 (summed TP / FP / FN) of the teacher-forced prediction when every label
    is replaced by a uniformly drawn other name and the model knows only how names continue."""
    tp = fp = fn = 0.0
    for true_name, n in counts.items():
        others = [name for name in counts if name != true_name]
        for label in others:
            share = n / len(others)
            tp, fp, fn = tp + share * (len(label.split("|")) - 1), fp + share, fn + share
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return 2 * precision * recall / (precision + recall) if tp else 0.0


def training_names(methods: Path) -> Counter:
    with methods.open() as f:
        return Counter(row["label"] for row in map(json.loads, f) if row["split"] == "train")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", type=Path, default=Path("build/samples/methods.jsonl"))
    parser.add_argument("--study", action="store_true", help="Java-Top10's names, 1,000 training methods each")
    args = parser.parse_args()
    counts = dict.fromkeys(JAVA_TOP10, 1000) if args.study else training_names(args.methods)
    for name, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"{name:>12} {n:6d}")
    print(f"teacher-forced train F1 floor at 100 % noise: {floor_f1(counts):.3f}")


if __name__ == "__main__":
    main()
