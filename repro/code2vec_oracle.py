"""Run the original TensorFlow code2vec on this pipeline's data: write its inputs, read its results.

    python repro/code2vec_oracle.py write RUN_DIR OUT_PREFIX     # OUT_PREFIX.{train,val,test,dict,variants}.c2v
    python repro/code2vec_oracle.py read ORACLE_LOG [--ours RUN/epochs.csv]   # its test F1 per epoch
    TF_PYTHON repro/code2vec_oracle.py predict CODE2VEC_DIR MODEL OUT_PREFIX  # its predictions (TensorFlow's python)
    python repro/code2vec_oracle.py score OUT_PREFIX              # its test F1 and CSR over the study's variants
    python repro/code2vec_oracle.py steps MODEL [--ours RUN/epochs.csv]  # its in-step loss Gini per epoch

RUN_DIR is a directory where the pipeline's fetch, extract and corrupt stages ran (build/samples,
build/noisy). `write` gives the original the samples ours trains on at that noise level and seed:
the extracted `.c2v` lines (code2vec's preprocessed format, 200 contexts a method) with the corrupt
stage's noisy training labels (also the few methods without a code line, which `train.measure:
study` leaves out of ours as code2vec's extractor would: 7 of 5,148 on jdk-top10 at seed 0), and
the dictionary file code2vec's `preprocess.py` would pickle (token and path counts over every stored
training context, target counts over the noisy labels, the number of training examples). The
vocabularies cover every training context, so preprocess.py's choice of 200 (known contexts first)
is a uniform sample, as the stored first 200 are.
The original is not part of this repository; with a checkout of tech-srl/code2vec and
TensorFlow 2 (CPU):

    # config.py set_defaults: NUM_TRAIN_EPOCHS = 50, TRAIN_BATCH_SIZE = 128 (the study's settings)
    python code2vec.py --data OUT_PREFIX --test OUT_PREFIX.test.c2v --save models/run/saved_model > oracle.log

`write` also writes the study's renaming variants of the test methods (re-extracted, as
`train.measure: study` measures CSR; extract's `c2v_test_ren_*` arrays) as OUT_PREFIX.variants.c2v,
one line each, and their test methods' line numbers in OUT_PREFIX.variants.owner. `predict` loads a
trained model of the original (MODEL: the `--save` path, the model after the last epoch, whose
test F1 the log does not print; `_iterN`: after epoch N) and writes the
first possible name of its top 10 for every line of the test and variants files (`.pred`); `score`
then takes its test F1 (`codemem.metrics.subtoken_f1`, code2vec's) and counts, as
`codemem.metrics.changed_variant_ratio` and `critical_sample_ratio` do, the variants whose
prediction differs from their method's.

`steps` reads per-sample losses logged inside the original's training step, as the study's patch
of `Code2VecModel.train` logged them (CI-Memorization `code/model_prediction/code2vec/
tensorflow_model.py`): in `_build_tf_training_graph` keep the per-sample
`sparse_softmax_cross_entropy_with_logits` before its sum and return it with the logits' argmax and
`target_index`; in `train`, fetch the three with the optimizer and append one line a sample,
`loss argmax target`, to `MODEL_steplog_epE.txt`, E = (batch_num - 1) // steps_per_epoch + 1. It
prints each epoch's Gini of those losses (`codemem.metrics.gini`, as `train.measure: study` takes
ours), their mean and the in-step top-1 accuracy.

`read` takes the original's log ("After N epochs -- ... F1: x") and prints its test F1 per epoch,
beside ours where an `epochs.csv` of a run on the same RUN_DIR's settings is given. docs/results.md
has what it showed.
"""

from __future__ import annotations

import argparse
import csv
import pickle
import re
import sys
from collections import Counter
from pathlib import Path

# codemem is imported inside the functions that use it: `predict` runs under TensorFlow's python.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def noisy_labels(run: Path) -> list[str]:
    """The corrupt stage's training labels, in training-file order."""
    with (run / "build" / "noisy" / "labels.tsv").open() as f:
        return [row["noisy_label"] for row in csv.DictReader(f, delimiter="\t")]


def write_inputs(run: Path, out: str) -> dict:
    """Write OUT.train.c2v (noisy labels), OUT.val.c2v, OUT.test.c2v, OUT.dict.c2v and the variants;
    return the counts. The dictionary counts tokens and paths over every stored training context
    (extract keeps up to `max_contexts_stored` a method), as code2vec's preprocess.sh builds its
    histograms from all extracted contexts and `train.measure: study` counts its vocabularies."""
    import numpy as np  # only here: `predict` runs under TensorFlow's python

    samples, labels = run / "build" / "samples", noisy_labels(run)
    lines = (samples / "train.c2v").read_text().splitlines()
    if len(lines) != len(labels):
        raise SystemExit(f"{run}: {len(lines)} training lines but {len(labels)} noisy labels; rerun corrupt")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with open(f"{out}.train.c2v", "w") as f:
        f.writelines(" ".join([label, *line.split(" ")[1:]]) + "\n" for line, label in zip(lines, labels))
    for split in ("val", "test"):
        Path(f"{out}.{split}.c2v").write_text((samples / f"{split}.c2v").read_text())
    with np.load(samples / "contexts.npz", allow_pickle=False) as z:
        tokens, paths, stored = z["c2v_tokens"], z["c2v_paths"], z["c2v_train_ctx"]
    valid = stored[..., 0] >= 0
    token_counts = np.bincount(stored[..., 0][valid], minlength=len(tokens)) + np.bincount(
        stored[..., 2][valid], minlength=len(tokens))
    path_counts = np.bincount(stored[..., 1][valid], minlength=len(paths))
    words = {str(tokens[i]): int(n) for i, n in enumerate(token_counts.tolist()) if n}
    path_dict = {str(paths[i]): int(n) for i, n in enumerate(path_counts.tolist()) if n}
    targets = dict(Counter(labels))
    with open(f"{out}.dict.c2v", "wb") as f:  # preprocess.py's order: words, paths, targets, examples
        for obj in (words, path_dict, targets, len(lines)):
            pickle.dump(obj, f)
    variants = write_variants(samples / "contexts.npz", out)
    return {"examples": len(lines), "tokens": len(words), "paths": len(path_dict), "targets": targets,
            "variants": variants}  # fmt: skip


def write_variants(contexts_npz: Path, out: str) -> int:
    """OUT.variants.c2v (each re-extracted variant as a .c2v line under its method's true name) and
    OUT.variants.owner (its test method's 0-based line in OUT.test.c2v); returns their number."""
    import numpy as np

    from codemem.methodname.java_tokens import c2v_line

    with np.load(contexts_npz, allow_pickle=False) as z:
        if "c2v_test_ren_owner" not in z.files:
            raise SystemExit(f"{contexts_npz}: no re-extracted renamings; extract again with this code")
        tokens, paths, owner, rows = z["c2v_tokens"], z["c2v_paths"], z["c2v_test_ren_owner"], z["c2v_test_ren_ctx"]
        names = z["labels"][z["test_label"]]
    width = rows.shape[1]
    with open(f"{out}.variants.c2v", "w") as f:
        for i, row in zip(owner.tolist(), rows):
            contexts = [f"{tokens[a]},{paths[p]},{tokens[b]}" for a, p, b in row.tolist() if a >= 0]
            f.write(c2v_line(str(names[i]), contexts, width) + "\n")
    Path(f"{out}.variants.owner").write_text("".join(f"{i}\n" for i in owner.tolist()))
    return len(owner)


AFTER = re.compile(r"After (\d+) epochs -- .*?F1: ([0-9.]+)", re.DOTALL)


def read_log(text: str) -> dict[int, float]:
    """{epoch: test F1} from the original's log (an evaluation's line may wrap over two)."""
    return {int(epoch): float(f1) for epoch, f1 in AFTER.findall(text)}


POSSIBLE_NAME = re.compile(r"^[a-zA-Z|]+$")  # code2vec common.filter_impossible_names, besides OOV


def predict(code2vec_dir: Path, model: str, out: str) -> None:
    """OUT.test.c2v.pred and OUT.variants.c2v.pred: the original model's first possible name of its
    top 10 for each line (one line each, in order; "" where none is possible)."""
    sys.path.insert(0, str(code2vec_dir))
    from config import Config
    from tensorflow_model import Code2VecModel

    config = Config(set_defaults=True)
    config.MODEL_LOAD_PATH, config.DL_FRAMEWORK = model, "tensorflow"
    code2vec = Code2VecModel(config)
    special = code2vec.vocabs.target_vocab.special_words
    for name in (f"{out}.test.c2v", f"{out}.variants.c2v"):
        lines = Path(name).read_text().splitlines()
        with open(f"{name}.pred", "w") as f:
            for result in code2vec.predict(lines):
                words = [w for w in result.topk_predicted_words if w != special.OOV and POSSIBLE_NAME.match(w)]
                f.write((words[0] if words else "") + "\n")
    code2vec.close_session()


def variant_csr(test_pred: list[str], variant_pred: list[str], owner: list[int]) -> dict:
    """CSR over variants (`metrics.changed_variant_ratio`, the study's count) and over samples
    (`metrics.critical_sample_ratio`, Arpit et al.)."""
    from codemem import metrics

    csr, changed, variants = metrics.changed_variant_ratio(test_pred, variant_pred, owner)
    csr_samples, critical, methods = metrics.critical_sample_ratio(test_pred, variant_pred, owner, len(test_pred))
    return {"variants": variants, "changed": changed, "csr": csr, "methods": methods, "critical": critical,
            "csr_samples": csr_samples}  # fmt: skip


def step_log_epochs(model: str) -> dict[int, dict]:
    """{epoch: lines, mean loss, Gini of the per-sample losses, top-1 accuracy} from the training
    step's per-sample log (MODEL_steplog_epE.txt, lines `loss argmax target`). An epoch of the
    original's reader is a window of the repeated, shuffled stream: a sample may appear 0-2 times."""
    from codemem.metrics import gini

    epochs = {}
    for path in Path(model).parent.glob(Path(model).name + "_steplog_ep*.txt"):
        rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
        loss = [float(r[0]) for r in rows]
        epochs[int(path.name.rsplit("_ep", 1)[1].removesuffix(".txt"))] = {
            "lines": len(rows), "mean_loss": sum(loss) / max(len(loss), 1), "gini": gini(loss),
            "accuracy": sum(r[1] == r[2] for r in rows) / max(len(rows), 1)}  # fmt: skip
    return dict(sorted(epochs.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="the original's input files from a run directory")
    w.add_argument("run", type=Path)
    w.add_argument("out")
    r = sub.add_parser("read", help="the original's test F1 per epoch")
    r.add_argument("log", type=Path)
    r.add_argument("--ours", type=Path, help="our run's epochs.csv, shown beside")
    p = sub.add_parser("predict", help="the original model's predictions (run with TensorFlow's python)")
    p.add_argument("code2vec", type=Path, help="a checkout of tech-srl/code2vec")
    p.add_argument("model", help="the saved model: the --save path (after the last epoch) or its _iterN")
    p.add_argument("out")
    c = sub.add_parser("score", help="test F1 and CSR over the variants from the .pred files")
    c.add_argument("out")
    st = sub.add_parser("steps", help="the Gini of the original's in-step per-sample losses, per epoch")
    st.add_argument("model", help="the --save path whose _steplog_epE.txt files the patched train wrote")
    st.add_argument("--ours", type=Path, help="our run's epochs.csv, its in-step Gini shown beside")
    args = parser.parse_args()
    if args.command == "predict":
        predict(args.code2vec, args.model, args.out)
        return
    if args.command == "score":
        from codemem.metrics import subtoken_f1

        test, variants, owner = (Path(f"{args.out}.{suffix}").read_text().splitlines()
                                 for suffix in ("test.c2v.pred", "variants.c2v.pred", "variants.owner"))
        names = [line.split(" ", 1)[0] for line in Path(f"{args.out}.test.c2v").read_text().splitlines()]
        f1 = subtoken_f1(names, [p or None for p in test])
        print({"test_f1": round(f1.f1, 4)} | variant_csr(test, variants, [int(i) for i in owner]))
        return
    if args.command == "write":
        print(write_inputs(args.run, args.out))
        return
    if args.command == "steps":
        ours = {}
        if args.ours:
            with args.ours.open() as f:
                ours = {int(row["epoch"]): row for row in csv.DictReader(f)}
        print("epoch   lines  mean loss  accuracy  Gini  | ours: Gini  mean loss")
        for epoch, e in step_log_epochs(args.model).items():
            mine = ours.get(epoch)
            print(f"{epoch:5d}  {e['lines']:6d}  {e['mean_loss']:9.4g}  {e['accuracy']:8.3f}  {e['gini']:.3f}  | "
                  + (f"      {float(mine['gini']):.3f}  {float(mine['train_loss']):9.4g}" if mine else "-"))
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
