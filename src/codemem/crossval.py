"""crossval: a confident-learning baseline for mislabel detection (`python -m codemem crossval`).

codemem.detection scores the training labels from one run's training dynamics. The usual baseline
for that is confident learning (Northcutt et al. 2021, "Confident Learning: Estimating Uncertainty in
Dataset Labels", as cleanlab implements it), which needs out-of-sample predicted probabilities for
every training sample. So, MethodName only (code2vec, code2seq):

1. The kept training samples (those the model trains on; `Training.train_kept`) are split into K
   folds, stratified by their noisy label and seeded from `seed` (`assign_folds`).
2. For each fold, the configured model is prepared as the train stage prepares it
   (`task.get(params.task).prepare`, seeded as codemem.train seeds it), its training set restricted
   to the other K - 1 folds (`hold_out`) and trained for `epochs` with train.py's one-process loop
   (`fit`: reseeded from (seed, epoch) before every epoch's batches). It then gives the held-out fold
   its class probabilities over the candidate names: the distinct noisy names of the kept training
   samples (`probabilities`). code2vec: its softmax restricted to those names (no OOV column);
   code2seq: each name's teacher-forced sequence likelihood (its sub-tokens and end token),
   normalised over the names.
3. `cleanlab.filter.find_label_issues` (ranked by self-confidence) flags label issues and
   `cleanlab.rank.get_label_quality_scores` scores every label; 1 - quality is the suspicion score,
   rated against the labels the corrupt stage flipped with codemem.detection's AUROC, AUPRC and
   precision at k, as evaluate rates the training-dynamics signals.

It trains K models on (K - 1) / K of the data each: about K x (K - 1) / K the training time of one
run (less the run's per-epoch measurements), e.g. 4x at K = 5. Not a DVC stage: run it after
fetch, extract and corrupt (`dvc repro corrupt`). Writes plots/detection_cleanlab.json (the numbers)
and build/crossval/out_of_sample.npz (each training sample's fold, probabilities and scores).

The vocabularies (tokens, paths, names) are those of the whole noisy training set, as in the run
being compared with; the held-out fold's labels shape only which classes exist, never the weights.
The probabilities are a (samples x names) matrix: fine for the Top-N datasets (10 names), not for
every distinct name of Java-Small.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import torch

from codemem import detection, storage, task
from codemem.errors import UserError
from codemem.params import Params
from codemem.progress import log, progress_bar
from codemem.storage import PROJECT, Layout


def assign_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each sample's fold (0 .. folds - 1): shuffled (np.random.default_rng([seed, 7])), then dealt
    round-robin within each label, so every fold holds about 1 / folds of every label."""
    labels = np.asarray(labels)
    order = np.random.default_rng([seed, 7]).permutation(len(labels))
    order = order[np.argsort(labels[order], kind="stable")]  # grouped by label, shuffled within
    fold = np.empty(len(labels), dtype=np.int64)
    fold[order] = np.arange(len(labels)) % folds
    return fold


def hold_out(training, held: np.ndarray) -> dict:
    """Restrict a MethodName training to its kept training samples not at positions `held` (as
    `drop_train` would, the vocabularies unchanged); returns the held-out samples' inputs and labels."""
    keep = np.setdiff1d(np.arange(len(training.train_names)), held)
    held_rows, keep_rows = torch.from_numpy(held), torch.from_numpy(keep)
    out = {"inputs": training.inputs["train"][held_rows], "labels": training.labels["train"][held_rows]}
    training.inputs["train"] = training.inputs["train"][keep_rows]
    training.labels["train"] = training.labels["train"][keep_rows]
    training.train_names = [training.train_names[i] for i in keep.tolist()]
    training.train_kept = training.train_kept[keep]
    return out


def fit(training, params: Params, fold: str) -> None:
    """codemem.train's one-process loop, without its measurements and checkpoints."""
    model, optimizer = training.model, training.optimizer
    for epoch in range(params.epochs):
        model.train()
        torch.manual_seed(params.seed * 100_003 + epoch)  # as codemem.train: a function of (seed, epoch)
        description = f"{fold} {training.unit} {epoch + 1}/{params.epochs}"
        for batch in progress_bar(training.batches(epoch), description=description):
            optimizer.zero_grad(set_to_none=True)
            loss, _ = training.loss(batch)
            loss.backward()
            if training.clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), training.clip_norm)
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if training.scheduler is not None:
            training.scheduler.step()


@torch.no_grad()
def probabilities(training, held: dict, classes: list[str], batch_size: int) -> np.ndarray:
    """(held-out samples, classes) probabilities of each candidate name, dropout off."""
    training.model.eval()
    inputs, out = held["inputs"], []
    if training.fmt == "c2v":  # code2vec: the softmax over the candidate names' logits only
        columns = torch.tensor([training.name_id[c] for c in classes], device=training.device)
        for start in range(0, len(inputs), batch_size):
            logits = training.model(inputs[start : start + batch_size].to(training.device))
            out.append(torch.softmax(logits[:, columns].double(), -1).cpu())
    else:  # code2seq: each name's teacher-forced log-likelihood, normalised over the names
        from codemem.methodname import code2seq

        unk, width = code2seq.UNK_ID, training.config.max_target_parts + 1
        target_id = {s: i for i, s in enumerate(training.targets)}
        rows = torch.zeros(len(classes), width, dtype=torch.long, device=training.device)
        for i, name in enumerate(classes):  # as Code2SeqTraining's labels: sub-tokens, then the end (PAD)
            ids = [target_id.get(p, unk) for p in name.split("|")][: training.config.max_target_parts]
            rows[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        for start in range(0, len(inputs), batch_size):
            batch = training._batch(inputs[start : start + batch_size, : training.max_contexts])
            mask = batch[-1].bool()
            contexts = training.model.encode(*batch[:-1], mask)
            nll = torch.stack([training.model._teacher_forced(contexts, mask, row.expand(len(mask), -1), "sum")
                               for row in rows], dim=1)  # fmt: skip
            out.append(torch.softmax(-nll.double(), -1).cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, len(classes)))


def _finite(x: float) -> float | None:
    return round(float(x), 6) if math.isfinite(x) else None


def run(params: Params, layout: Layout = PROJECT, folds: int = 5) -> dict:
    """Out-of-sample probabilities from `folds` trainings, cleanlab's label issues, and how well they
    find the flipped labels: plots/detection_cleanlab.json (returned)."""
    import cleanlab.filter
    import cleanlab.rank

    from codemem.train import choose_device

    if params.task != "methodname":
        raise UserError(f"crossval covers MethodName's models (code2vec, code2seq), not {params.model} "
                        f"({params.task}); set `model` to code2vec or code2seq")  # fmt: skip
    if folds < 2:
        raise UserError(f"--folds must be at least 2, not {folds}")
    storage.require(layout.noisy / "labels.tsv", "corrupt")
    began = time.perf_counter()
    if params.train.threads > 0:
        torch.set_num_threads(params.train.threads)
    device = choose_device(params.train.device)
    torch.use_deterministic_algorithms(True, warn_only=True)  # as codemem.train
    spec = task.get(params.task)
    fold = probs = flipped = classes = labels = None
    for k in range(folds):
        torch.manual_seed(params.seed)  # initialisation, as codemem.train
        training = spec.prepare(params, layout, device)
        if fold is None:  # the same kept samples every time: the fold assignment is made once
            names = training.train_names
            classes = sorted(set(names))
            index = {c: i for i, c in enumerate(classes)}
            labels = np.fromiter((index[n] for n in names), dtype=np.int64, count=len(names))
            flipped = np.fromiter((training.noisy_train_names[i] != training.true_train_names[i]
                                   for i in training.train_kept), dtype=bool, count=len(training.train_kept))  # fmt: skip
            if len(classes) < 2 or len(labels) < folds:
                raise UserError(f"crossval needs at least 2 names and {folds} training samples; the training "
                                f"set has {len(labels)} samples of {len(classes)} names")  # fmt: skip
            fold = assign_folds(labels, folds, params.seed)
            probs = np.full((len(labels), len(classes)), np.nan)
            log(f"crossval: {params.model}, {len(labels)} training samples of {len(classes)} names, "
                f"{folds} folds, {params.epochs} epochs each")  # fmt: skip
        held_positions = np.flatnonzero(fold == k)
        held = hold_out(training, held_positions)
        fit(training, params, f"fold {k + 1}/{folds}")
        probs[held_positions] = probabilities(training, held, classes, params.train.eval_batch_size)
        del training, held
    assert not np.isnan(probs).any(), "a training sample got no out-of-sample probabilities"

    issues = cleanlab.filter.find_label_issues(labels, probs, return_indices_ranked_by="self_confidence", n_jobs=1)
    scores = 1.0 - cleanlab.rank.get_label_quality_scores(labels, probs)
    caught = int(flipped[issues].sum())
    result = {
        "model": params.model, "dataset": params.dataset, "noise": params.noise, "seed": params.seed,
        "folds": folds, "epochs": params.epochs, "samples": len(labels), "classes": len(classes),
        "flipped": int(flipped.sum()),
        "auroc": _finite(detection.auroc(scores, flipped)), "auprc": _finite(detection.auprc(scores, flipped)),
        "precision_at_k": _finite(detection.precision_at_k(scores, flipped)),
        "issues": len(issues), "issues_flipped": caught,
        "issues_precision": _finite(caught / len(issues)) if len(issues) else None,
        "issues_recall": _finite(caught / flipped.sum()) if flipped.any() else None,
        "out_of_sample_accuracy": _finite(float((probs.argmax(1) == labels).mean())),
        "seconds": round(time.perf_counter() - began, 1),
    }  # fmt: skip
    out = layout.root / "build" / "crossval"
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "out_of_sample.npz", fold=fold, pred_probs=probs, labels=labels, classes=np.array(classes),
                        flipped=flipped, scores=scores, issues=issues)  # fmt: skip
    storage.atomic_write(layout.plots / "detection_cleanlab.json", json.dumps(result, indent=2) + "\n")
    return result
