"""Give a run directory's methods Java-Top10's ten names, to test how much of a gap the names make.

    python repro/study_names.py RUN_DIR        # rewrites RUN_DIR/build/samples/contexts.npz's names
    cd RUN_DIR && python -m codemem corrupt && python -m codemem train && python -m codemem evaluate

code2seq's in-step train F1 under noise is the teacher-forced argmax (docs/fidelity.md): fed a
label's true sub-tokens, a model that has memorized nothing still completes `to` -> `string`, so the
share of multi-sub-token names sets a floor under the train F1 (repro/teacher_forcing_floor.py).
jdk-top10 has two such names of ten, Java-Top10 four. This script swaps names one for one, the
names both sets share kept, the rest given Java-Top10's others in order of training frequency, so a
run on the result has the study's label set on our methods. Under 100 % noise every training label
is drawn from the other names whatever the method says, so the swap changes nothing but the names;
at lower noise the clean labels' link to the code is kept, under other words.

Run it after `extract` and before `corrupt` (it changes the names every later stage reads), in a
run directory of its own: the pipeline's own `dvc repro` would see the change and extract again.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from teacher_forcing_floor import JAVA_TOP10, floor_f1


def study_names(names: list[str], train_counts: Counter) -> dict[str, str]:
    """{our name: Java-Top10 name}, one for one: shared names kept, the others paired in order of
    training frequency (most frequent first, ties by name) with Java-Top10's unused names in its order."""
    if len(names) != len(JAVA_TOP10):
        raise ValueError(f"Java-Top10 has {len(JAVA_TOP10)} names, this run has {len(names)}: use a top-10 dataset")
    mapping = {name: name for name in names if name in JAVA_TOP10}
    free = [name for name in JAVA_TOP10 if name not in mapping]
    rest = sorted((n for n in names if n not in mapping), key=lambda n: (-train_counts[n], n))
    return mapping | dict(zip(rest, free))


def rename(contexts_npz: Path) -> dict[str, str]:
    """Rewrite the `labels` array of extract's contexts.npz (every split indexes into it) in place."""
    with np.load(contexts_npz) as z:
        arrays = {k: z[k] for k in z.files}
    names = [str(n) for n in arrays["labels"]]
    mapping = study_names(names, Counter(names[i] for i in arrays["train_label"]))
    arrays["labels"] = np.array([mapping[n] for n in names])
    tmp = contexts_npz.with_name(contexts_npz.stem + ".renaming.npz")
    np.savez(tmp, **arrays)
    tmp.replace(contexts_npz)
    return mapping


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run directory where extract ran (build/samples)")
    args = parser.parse_args()
    contexts = args.run / "build" / "samples" / "contexts.npz"
    with np.load(contexts) as z:
        before = Counter(str(z["labels"][i]) for i in z["train_label"])
    mapping = rename(contexts)
    for ours, theirs in mapping.items():
        print(f"{ours:>12} -> {theirs:<10} {before[ours]:6d} training methods")
    after = Counter({mapping[n]: c for n, c in before.items()})
    print(f"teacher-forced train F1 floor at 100 % noise: {floor_f1(before):.3f} -> {floor_f1(after):.3f}")


if __name__ == "__main__":
    main()
