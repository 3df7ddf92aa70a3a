"""train: one explicit training loop, measured after every epoch the way the study measures it.

Each epoch: shuffle (seeded by seed and epoch), train on the noisy training labels, then with
dropout off compute for every training sample its loss and predicted score (Gini of the losses,
training F1 against the labels it trained on) and for every test sample its prediction and score
(test F1, mean score) and the critical sample ratio over its renaming variants. One row per epoch
goes to plots/epochs.csv and per-sample arrays to build/logs. A checkpoint after every epoch lets an
interrupted run resume; because every epoch reseeds from (seed, epoch) a resumed run ends with the
same metrics as an uninterrupted one.

The per-sample training loss is measured in a separate pass after the epoch (dropout off, one fixed
model), not logged inside the training step as the authors' patch did; see ORIGINALS.md.

This module is MethodName's loop; VarMisuse has its own (`codemem.varmisuse`, steps of N samples,
token-budget batches), which `run` hands over to and which shares the helpers below.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from codemem import corrupt, io, metrics
from codemem.io import sha256_file
from codemem.params import Params
from codemem.progress import log, progress_bar
from codemem.runners import RUNNERS

EPOCH_COLUMNS = [
    "epoch", "train_loss", "train_f1", "train_precision", "train_recall", "test_f1", "test_precision",
    "test_recall", "gini", "csr", "csr_critical", "csr_transformable", "test_score", "train_score", "train_seconds", "seconds",
]  # fmt: skip


def count_trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def choose_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"train.device is {name!r} but torch sees no CUDA device; use `auto` or `cpu`")
    return torch.device(name)


# The code a checkpoint's numbers depend on (the train stage's code deps in dvc.yaml): after a change
# to any of it DVC reruns train, which must then start over rather than resume the old code's run.
PACKAGE = Path(__file__).resolve().parent
TRAINING_CODE = ["train.py", "runners.py", "varmisuse.py", "metrics.py", "models", "extract/great.py"]


def training_code_digest() -> str:
    h = hashlib.sha256()
    for name in TRAINING_CODE:
        path = PACKAGE / name
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(f"{name}:{f.relative_to(path) if path.is_dir() else ''}".encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def fingerprint(params: Params, files: list[Path]) -> str:
    """What a checkpoint must match to be resumed: the inputs, every setting that shapes training and
    the training code."""
    h = hashlib.sha256(training_code_digest().encode())
    # Not epochs (a longer run may extend a shorter one), nor what cannot change the numbers.
    ignored = ("epochs", "device", "threads", "eval_batch_size")
    settings = {k: v for k, v in asdict(params.train).items() if k not in ignored}
    model_settings = {k: v for k, v in asdict(params.model_config()).items() if k != "epochs"}
    h.update(json.dumps([params.model, params.seed, params.noise, settings,
                         model_settings, params.extract.max_contexts], sort_keys=True).encode())
    for f in files:
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def save_checkpoint(path: Path, state: dict) -> None:
    """Write a checkpoint atomically (temporary file, then rename): a kill never leaves half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path.with_suffix(".tmp"))
    os.replace(path.with_suffix(".tmp"), path)


def load_checkpoint(path: Path, print_: str, epochs: int, device) -> dict | None:
    """The checkpoint's state if it belongs to this run (same fingerprint, not past `epochs`), else None."""
    if not path.exists():
        return None
    state = torch.load(path, map_location=device, weights_only=False)
    if state.get("fingerprint") != print_:
        log(f"train: {path} was written with other data, settings or code: starting over")
        return None
    return state if state["epoch"] <= epochs else None


def run(params: Params, samples_dir=Path("build/samples"), noisy_dir=Path("build/noisy"),
        model_dir=Path("build/model"), logs_dir=Path("build/logs"), checkpoint=Path("build/checkpoints/train.pt"),
        epochs_csv=Path("plots/epochs.csv")) -> list[dict]:  # fmt: skip
    if params.task == "varmisuse":
        from codemem import varmisuse

        return varmisuse.run(params, samples_dir, noisy_dir, model_dir, logs_dir, checkpoint, epochs_csv)
    if params.train.threads > 0:
        torch.set_num_threads(params.train.threads)
    device = choose_device(params.train.device)
    # Some CPU kernels (index_put with accumulation, in code2seq's backward) reduce in parallel
    # in a varying order; the deterministic variants make same params give the same metrics.
    torch.use_deterministic_algorithms(True, warn_only=True)
    config = params.model_config()
    samples = io.load_samples(samples_dir, formats=(RUNNERS[params.model].fmt,))  # only the model's: RAM at scale
    noisy = corrupt.load_noisy_labels(noisy_dir)
    torch.manual_seed(params.seed)
    runner = RUNNERS[params.model](samples, noisy, params.extract.max_contexts, device, config)
    model, optimizer, scheduler = runner.model, runner.optimizer, runner.scheduler
    n_train = len(runner.train_names)
    log(
        f"train: {params.model} on {device}, {n_train} training / {len(runner.true_test_names)} test samples, "
        f"vocab {runner.vocab}, {count_trainable(model):,} parameters"
    )

    print_ = fingerprint(params, [samples_dir / "contexts.npz", noisy_dir / "labels.tsv"])
    history: list[dict] = []
    per_sample: dict[str, list[np.ndarray]] = {k: [] for k in ("train_loss", "train_score", "test_score")}
    start_epoch = 0
    if state := load_checkpoint(checkpoint, print_, params.epochs, device):
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        history, per_sample, start_epoch = state["history"], state["per_sample"], state["epoch"]
        log(f"train: resuming after epoch {start_epoch} from {checkpoint}")

    bs = params.train.eval_batch_size
    for epoch in range(start_epoch, params.epochs):
        began = time.perf_counter()
        model.train()
        torch.manual_seed(params.seed * 100_003 + epoch)  # dropout, order, sampling: a function of (seed, epoch)
        order = torch.randperm(n_train)
        batches = [order[i : i + params.train.batch_size] for i in range(0, n_train, params.train.batch_size)]
        total = 0.0
        for idx in progress_bar(batches, description=f"epoch {epoch + 1}/{params.epochs}"):
            loss = runner.train_loss(idx)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        if scheduler is not None:
            scheduler.step()
        trained = time.perf_counter() - began  # the optimisation alone, apart from the measurements

        train_loss, train_score, train_pred = runner.measure("train", bs)
        _, test_score, test_pred = runner.measure("test", bs)
        train_f1 = runner.f1(runner.train_names, train_pred)
        test_f1 = runner.f1(runner.true_test_names, test_pred)
        csr = (float("nan"), 0, 0)
        if params.train.csr and len(runner.variant_owner):
            _, _, variant_pred = runner.measure("variants", bs)
            csr = metrics.critical_sample_ratio(test_pred, variant_pred, runner.variant_owner, len(test_pred))
        row = {
            "epoch": epoch + 1,
            "train_loss": total / max(n_train, 1),
            "train_f1": train_f1.f1, "train_precision": train_f1.precision, "train_recall": train_f1.recall,
            "test_f1": test_f1.f1, "test_precision": test_f1.precision, "test_recall": test_f1.recall,
            "gini": metrics.gini(train_loss),
            "csr": csr[0], "csr_critical": csr[1], "csr_transformable": csr[2],
            "test_score": float(test_score.mean()) if len(test_score) else 0.0,
            "train_score": float(train_score.mean()) if len(train_score) else 0.0,
            "train_seconds": round(trained, 3), "seconds": round(time.perf_counter() - began, 3),
        }  # fmt: skip
        history.append(row)
        for key, values in zip(per_sample, (train_loss, train_score, test_score)):
            per_sample[key].append(values)
        log(
            f"epoch {epoch + 1}: train F1 {row['train_f1']:.3f}  test F1 {row['test_f1']:.3f}  "
            f"gini {row['gini']:.3f}  CSR {row['csr']:.3f}  score {row['test_score']:.3f}  ({row['seconds']:.1f} s)"
        )
        state = {"fingerprint": print_, "epoch": epoch + 1, "model": model.state_dict(),
                 "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict() if scheduler else None,
                 "history": history, "per_sample": per_sample}  # fmt: skip
        save_checkpoint(checkpoint, state)

    with io.atomic_dir(model_dir) as tmp:
        torch.save({"model": model.state_dict(), "config": asdict(config), "vocab": runner.vocab}, tmp / "model.pt")
    with io.atomic_dir(logs_dir) as tmp:
        arrays = {k: np.stack(v) for k, v in per_sample.items()}
        np.savez_compressed(tmp / "per_sample.npz", **arrays, train_kept=runner.train_kept)
        (tmp / "counts.json").write_text(json.dumps({
            "train_samples": n_train, "test_samples": len(runner.true_test_names),
            "train_dropped_no_context": len(noisy) - n_train, "vocab": runner.vocab,
            "parameters": count_trainable(model), "device": str(device),
        }, indent=2) + "\n")  # fmt: skip
    io.write_epochs_csv(history, epochs_csv, EPOCH_COLUMNS)
    return history
