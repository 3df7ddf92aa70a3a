"""Run the original TensorFlow code2vec on this pipeline's data: write its inputs, read its log.

    python repro/code2vec_oracle.py write RUN_DIR OUT_PREFIX     # OUT_PREFIX.{train,val,test,dict}.c2v
    python repro/code2vec_oracle.py read ORACLE_LOG [--ours RUN/epochs.csv]   # its test F1 per epoch

RUN_DIR is a directory where the pipeline's fetch, extract and corrupt stages ran (build/samples,
build/noisy). `write` gives the original exactly the samples ours trains on at that noise level and
seed: the extracted `.c2v` lines (code2vec's preprocessed format, 200 contexts a method) with the
corrupt stage's noisy training labels, and the dictionary file code2vec's `preprocess.py` would
pickle (token, path and target counts over the training contexts, then the number of training
examples). The original is not part of this repository; with a checkout of tech-srl/code2vec and
TensorFlow 2 (CPU):

    # config.py set_defaults: NUM_TRAIN_EPOCHS = 50, TRAIN_BATCH_SIZE = 128 (the study's settings)
    python code2vec.py --data OUT_PREFIX --test OUT_PREFIX.test.c2v --save models/run/saved_model > oracle.log

`read` takes the original's log ("After N epochs -- ... F1: x") and prints its test F1 per epoch,
beside ours where an `epochs.csv` of a run on the same RUN_DIR's settings is given. docs/results.md
has what it showed.
"""

from __future__ import annotations

import argparse
import csv
import pickle
import re
from collections import Counter
from pathlib import Path


def noisy_labels(run: Path) -> list[str]:
    """The corrupt stage's training labels, in training-file order."""
    with (run / "build" / "noisy" / "labels.tsv").open() as f:
        return [row["noisy_label"] for row in csv.DictReader(f, delimiter="\t")]


def write_inputs(run: Path, out: str) -> dict:
    """Write OUT.train.c2v (noisy labels), OUT.val.c2v, OUT.test.c2v and OUT.dict.c2v; return the counts."""
    samples, labels = run / "build" / "samples", noisy_labels(run)
    lines = (samples / "train.c2v").read_text().splitlines()
    if len(lines) != len(labels):
        raise SystemExit(f"{run}: {len(lines)} training lines but {len(labels)} noisy labels; rerun corrupt")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    words, paths, targets = Counter(), Counter(), Counter()
    with open(f"{out}.train.c2v", "w") as f:
        for line, label in zip(lines, labels):
            _, *contexts = line.split(" ")
            targets[label] += 1
            for context in filter(None, contexts):  # padding is empty fields
                source, path, target = context.split(",")
                words.update((source, target))
                paths[path] += 1
            f.write(" ".join([label, *contexts]) + "\n")
    for split in ("val", "test"):
        Path(f"{out}.{split}.c2v").write_text((samples / f"{split}.c2v").read_text())
    with open(f"{out}.dict.c2v", "wb") as f:  # preprocess.py's order: words, paths, targets, examples
        for obj in (dict(words), dict(paths), dict(targets), len(lines)):
            pickle.dump(obj, f)
    return {"examples": len(lines), "tokens": len(words), "paths": len(paths), "targets": dict(targets)}


AFTER = re.compile(r"After (\d+) epochs -- .*?F1: ([0-9.]+)", re.DOTALL)


def read_log(text: str) -> dict[int, float]:
    """{epoch: test F1} from the original's log (an evaluation's line may wrap over two)."""
    return {int(epoch): float(f1) for epoch, f1 in AFTER.findall(text)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="the original's input files from a run directory")
    w.add_argument("run", type=Path)
    w.add_argument("out")
    r = sub.add_parser("read", help="the original's test F1 per epoch")
    r.add_argument("log", type=Path)
    r.add_argument("--ours", type=Path, help="our run's epochs.csv, shown beside")
    args = parser.parse_args()
    if args.command == "write":
        print(write_inputs(args.run, args.out))
        return
    oracle, ours = read_log(args.log.read_text()), {}
    if args.ours:
        with args.ours.open() as f:
            ours = {int(row["epoch"]): float(row["test_f1"]) for row in csv.DictReader(f)}
    print("epoch  original  ours")
    for epoch, f1 in sorted(oracle.items()):
        print(f"{epoch:5d}  {f1:8.3f}  " + (f"{ours[epoch]:.3f}" if epoch in ours else "-"))


if __name__ == "__main__":
    main()
