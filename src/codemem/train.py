"""train: one explicit training loop for every model, measured after every epoch as the study does.

Each epoch (VarMisuse: each step of `train.samples_per_step` samples): reseed from (seed, epoch),
train on the noisy training labels, then let the task measure the model with dropout off (its
`Training.measure`: F1, Gini of the per-sample training loss, scores, CSR for MethodName; the four
accuracies and two Gini coefficients for VarMisuse). One row per epoch goes to plots/epochs.csv and
per-sample arrays to build/logs. A checkpoint after every epoch lets an interrupted run resume;
because every epoch reseeds, a resumed run ends with the same metrics as an uninterrupted one.

The per-sample training loss is measured in a separate pass after the epoch (dropout off, one fixed
model), not logged inside the training step as the authors' patch did; see ORIGINALS.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from codemem import io, task
from codemem.errors import DeviceError
from codemem.io import PROJECT, Layout, sha256_file
from codemem.models import count_trainable
from codemem.params import Params
from codemem.progress import log, progress_bar


def choose_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"train.device is {name!r} but torch sees no CUDA device; use `auto` or `cpu`")
    return torch.device(name)


# The code a checkpoint's numbers depend on: after a change to any of it DVC reruns train, which must
# then start over rather than resume the old code's run.
PACKAGE = Path(__file__).resolve().parent
TRAINING_CODE = ["train.py", "task.py", "io.py", "metrics.py", "methodname.py", "runners.py", "varmisuse.py",
                 "varmisuse_training.py", "models", "extract/great.py"]  # fmt: skip


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
                         model_settings, params.extract.max_contexts], sort_keys=True).encode())  # fmt: skip
    for f in files:
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def save_checkpoint(path: Path, state: dict) -> None:
    """Write a checkpoint atomically (temporary file, then rename): a kill never leaves half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path.with_suffix(".tmp"))
    os.replace(path.with_suffix(".tmp"), path)


def set_aside(path: Path, why: str) -> None:
    """Keep a checkpoint we will not resume (as `<name>.<why>`) instead of deleting someone's run."""
    aside = path.with_name(f"{path.name}.{why}")
    shutil.move(path, aside)
    log(f"train: {path} is {why} (kept as {aside}); starting over")


def load_checkpoint(path: Path, print_: str, epochs: int, device) -> dict | None:
    """The checkpoint's state if it belongs to this run (same fingerprint, not past `epochs`), else None.
    An unreadable checkpoint (a truncated copy, another torch's format) or one of another run is set
    aside, and the run starts over."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=False)
        if not isinstance(state, dict) or "fingerprint" not in state:
            raise ValueError("not a codemem checkpoint")
    except Exception:  # noqa: BLE001 -- whatever the reason, it cannot be resumed
        set_aside(path, "unreadable")
        return None
    if state["fingerprint"] != print_:
        set_aside(path, "foreign")  # written with other data, settings or code
        return None
    return state if state["epoch"] <= epochs else None


def run(params: Params, layout: Layout = PROJECT) -> list[dict]:
    if params.train.threads > 0:
        torch.set_num_threads(params.train.threads)
    device = choose_device(params.train.device)
    # Some CPU kernels (index_put with accumulation, in code2seq's backward) reduce in parallel in a
    # varying order; the deterministic variants make same params give the same metrics.
    torch.use_deterministic_algorithms(True, warn_only=True)
    spec = task.get(params.task)
    torch.manual_seed(params.seed)  # initialisation (data loading draws nothing from torch)
    training = spec.prepare(params, layout, device)
    model, optimizer, scheduler = training.model, training.optimizer, training.scheduler
    log(f"train: {params.model} on {device}, {training.describe()}, {count_trainable(model):,} parameters, "
        f"{params.epochs} {training.unit}s")  # fmt: skip

    print_ = fingerprint(params, training.input_files)
    history: list[dict] = []
    per_sample: dict[str, list[np.ndarray]] = {}
    start = 0
    if state := load_checkpoint(layout.checkpoint, print_, params.epochs, device):
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        history, per_sample, start = state["history"], state["per_sample"], state["epoch"]
        log(f"train: resuming after {training.unit} {start} from {layout.checkpoint}")

    for epoch in range(start, params.epochs):
        began = time.perf_counter()
        model.train()
        torch.manual_seed(params.seed * 100_003 + epoch)  # dropout, order, sampling: a function of (seed, epoch)
        total = 0.0
        for batch in progress_bar(training.batches(epoch), description=f"{training.unit} {epoch + 1}/{params.epochs}"):
            loss, size = training.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if training.clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), training.clip_norm)
            optimizer.step()
            total += loss.item() * size
        if scheduler is not None:
            scheduler.step()
        trained = time.perf_counter() - began  # the optimisation alone, apart from the measurements

        measured, logged = training.measure(epoch)
        row = {"epoch": epoch + 1, "train_loss": total / max(training.samples_per_epoch, 1), **measured,
               "train_seconds": round(trained, 3), "seconds": round(time.perf_counter() - began, 3)}  # fmt: skip
        history.append(row)
        for key, values in logged.items():
            per_sample.setdefault(key, []).append(values)
        log(f"{training.unit} {epoch + 1}: {training.summary(row)}  ({row['seconds']:.1f} s)")
        save_checkpoint(layout.checkpoint, {
            "fingerprint": print_, "epoch": epoch + 1, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler else None, "history": history, "per_sample": per_sample,
        })  # fmt: skip

    model_extra, arrays, counts = training.outputs()
    with io.atomic_dir(layout.model) as tmp:
        torch.save({"model": model.state_dict(), **model_extra}, tmp / "model.pt")
    with io.atomic_dir(layout.logs) as tmp:
        np.savez_compressed(tmp / "per_sample.npz", **{k: np.stack(v) for k, v in per_sample.items()}, **arrays)
        counts |= {"parameters": count_trainable(model), "device": str(device)}
        (tmp / "counts.json").write_text(json.dumps(counts, indent=2) + "\n")
    io.write_epochs_csv(history, layout.epochs_csv, spec.epoch_columns)
    return history
