"""train: one explicit training loop for every model, measured after every epoch as the study does.

Each epoch (VarMisuse: each step of `train.samples_per_step` samples): reseed from (seed, epoch),
train on the noisy training labels, then let the task measure the model with dropout off (its
`Training.measure`: F1, Gini of the per-sample training loss, scores, CSR for MethodName; the four
accuracies and two Gini coefficients for VarMisuse). One row per epoch goes to plots/epochs.csv and
per-sample arrays to build/logs. A checkpoint after every epoch lets an interrupted run resume;
because every epoch reseeds, a resumed run ends with the same metrics as an uninterrupted one.
SIGTERM or SIGINT (a scheduler, `docker stop`, Ctrl-C) lets the current step finish, then writes a
checkpoint of the epoch so far (the step, the random state, the task's in-step records) and exits
with 128 + the signal's number, saying how to resume; a second signal stops at once.

The Gini's per-sample training loss is the one logged inside the steps (`train.measure: study`, as the
authors' patch logged it) or from a separate pass after the epoch (`clean`: dropout off, one fixed model).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from codemem import distributed, storage, task
from codemem.errors import DeviceError, InputError, Interrupted
from codemem.params import Params
from codemem.progress import log, progress_bar
from codemem.storage import PROJECT, Layout, sha256_file
from codemem.task import count_trainable


def choose_device(name: str) -> torch.device:
    if distributed.env_world() > 1 and name in ("auto", "cuda"):  # under torchrun: this rank's GPU
        name = distributed.local_device_name() if name == "auto" or torch.cuda.is_available() else name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"train.device is {name!r} but torch sees no CUDA device; use `auto` or `cpu`")
    return torch.device(name)


PACKAGE = Path(__file__).resolve().parent


def training_code() -> list[Path]:
    """The code a checkpoint's numbers depend on: every codemem source file this process has loaded
    once the run is prepared (its task, training and model modules and what they import), and the
    package's data (the VarMisuse vocabulary). Derived, not listed: the end-to-end tests check that
    the train stage's dvc.yaml deps hold every file a training imports, so a change that makes DVC
    rerun train also makes the run start over rather than resume the old code's checkpoint."""
    loaded = {Path(m.__file__).resolve() for m in list(sys.modules.values()) if getattr(m, "__file__", None)}
    data = {f for f in (PACKAGE / "data").rglob("*") if f.is_file() and "__pycache__" not in f.parts}
    return sorted({f for f in loaded if f.is_relative_to(PACKAGE) and f.suffix == ".py"} | data)


def training_code_digest(code: list[Path]) -> str:
    h = hashlib.sha256()
    for f in code:
        name = f.relative_to(PACKAGE).as_posix() if f.is_relative_to(PACKAGE) else f.name
        h.update(name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def fingerprint(params: Params, files: list[Path], world: int = 1, code: list[Path] | None = None) -> str:
    """What a checkpoint must match to be resumed: the inputs, every setting that shapes training and
    the training code (`training_code()` unless given)."""
    h = hashlib.sha256(training_code_digest(training_code() if code is None else code).encode())
    # Not epochs (a longer run may extend a shorter one), nor what cannot change the numbers. The
    # measurement batch can (code2seq's decoding depends on it), so it is in.
    ignored = ("epochs", "device", "threads", "processes")  # processes: `world` below
    settings = {k: v for k, v in asdict(params.train).items() if k not in ignored}
    model_settings = {k: v for k, v in asdict(params.model_config()).items() if k != "epochs"}
    h.update(json.dumps([params.model, params.seed, params.noise, settings,
                         model_settings, params.extract.max_contexts], sort_keys=True).encode())  # fmt: skip
    if world > 1:  # a data-parallel run's numbers depend on its number of processes (within a tolerance)
        h.update(f"world={world}".encode())
    for f in files:
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def _nbytes(obj) -> int:
    """The bytes of the tensors and arrays in a (nested) checkpoint state: about its size on disk."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(v) for v in obj)
    return 0


def save_checkpoint(path: Path, state: dict) -> None:
    """Write a checkpoint atomically (temporary file, then rename): a kill never leaves half of one,
    a full disk neither (refused first when the free space is known to be short)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    storage.require_space(tmp, _nbytes(state) + (1 << 20), "the training checkpoint")
    try:
        with storage.writing(tmp, "the training checkpoint"):
            torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class StopSignal:
    """SIGTERM / SIGINT during training: noted, acted on after the current step (the loop asks
    `requested`); the handler then steps aside, so a second signal acts at once."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signum, self.previous = 0, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            self.previous = {sig: signal.signal(sig, self._note) for sig in self.SIGNALS}
        return self

    def _note(self, signum, _frame) -> None:
        self.signum = signum
        signal.signal(signum, self.previous.get(signum, signal.SIG_DFL))

    # Under torchrun the ranks must agree before stopping: a collective, which on a GPU also waits for
    # the device, so they compare notes every this many steps (and after every epoch), not every step.
    AGREE_EVERY = 16

    def requested(self, group: distributed.Group, device, step: int | None = None) -> int:
        """The signal to stop for (0: none) after `step` (None: after the epoch); under torchrun the
        ranks agree, so all stop at the same step."""
        if not group.active:
            return self.signum
        if step is not None and (step + 1) % self.AGREE_EVERY:
            return 0
        anyone = distributed.sum_scalar(float(self.signum), group, device) > 0
        return self.signum or (signal.SIGTERM if anyone else 0)

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def _stopped(signum: int, where: str, path: Path) -> Interrupted:
    return Interrupted(f"stopped by {signal.Signals(signum).name} {where}; the checkpoint {path} holds the run "
                       "so far. Run `dvc repro` (or the same `dvc exp run`) again to resume from it: the finished "
                       "run's numbers are those of an uninterrupted one", signum)


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
    """Train; under torchrun (WORLD_SIZE > 1) data-parallel, see codemem.distributed: every rank runs
    this loop on its share of every global batch, gradients summed across ranks, only rank 0 writes
    outputs and returns the history (the other ranks return [])."""
    if params.train.processes > 1 and distributed.env_world() <= 1:
        return launch(params, layout)
    if params.train.threads > 0:
        torch.set_num_threads(params.train.threads)
    device = choose_device(params.train.device)
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)
    group = distributed.init(device)
    # No `finally`: a rank that fails must exit, not wait at a barrier the others never reach; torchrun
    # then stops the other ranks.
    with StopSignal() as stop:
        drop = flag(params, layout, device, group, stop) if params.train.drop_flagged != "none" else None
        history = _run(params, layout, device, group, stop, drop=drop)
    distributed.finish(group)
    return history


@dataclasses.dataclass(frozen=True)
class FlaggingLayout(Layout):
    """Clean-and-retrain's first pass reads the run's samples and noisy labels and keeps everything
    it writes (model, logs, epochs, checkpoint) in build/checkpoints/flagging/, which DVC leaves in
    place between runs: a second retrain with another signal reuses it."""

    inputs: Layout = PROJECT

    @property
    def samples(self) -> Path:
        return self.inputs.samples

    @property
    def noisy(self) -> Path:
        return self.inputs.noisy

    @property
    def encoded(self) -> Path:
        return self.inputs.encoded


def flag(params: Params, layout: Layout, device: torch.device, group: distributed.Group,
         stop: StopSignal) -> dict:
    """train.drop_flagged: the same noisy training without dropping, then the training samples its
    signal (codemem.detection) ranks most suspicious: `drop_share` of them (0: the noise share).
    Only samples with logged dynamics can be ranked: MethodName measures every training sample,
    VarMisuse the `train.measure_samples` of them it measures after each step, so there the share is
    of those (`ranked` in the counts). Returns their positions in the per-sample logs and, for
    metrics.json, how many were ranked and dropped and how many of them were flipped."""
    from codemem import detection

    plain = dataclasses.replace(params, train=dataclasses.replace(params.train, drop_flagged="none", drop_share=0.0))
    flagging = FlaggingLayout(layout.checkpoints / "flagging", inputs=layout)
    log(f"train: flagging pass (the noisy run without dropping, in {flagging.root})")
    _run(plain, flagging, device, group, stop)
    distributed.barrier(group)  # rank 0 wrote the logs
    with np.load(flagging.logs / "per_sample.npz") as z:
        dynamics = {k: z[k] for k in (*detection.DYNAMICS, "in_step_loss") if k in z}
        flipped = z["flipped"].astype(bool)
    found = detection.signals(dynamics)
    if params.train.drop_flagged not in found:  # params.validate refuses what a model cannot give; a guard
        raise InputError(f"{flagging.logs / 'per_sample.npz'} holds no input for train.drop_flagged = "
                         f"{params.train.drop_flagged!r}; the run logged the signals {', '.join(found)}")  # fmt: skip
    scores = found[params.train.drop_flagged]
    share = params.train.drop_share or params.noise
    drop = np.argsort(-scores, kind="stable")[: round(share * len(scores))]
    caught = int(flipped[drop].sum())
    log(f"train: dropping {len(drop)} of the {len(scores)} measured training samples flagged by "
        f"{params.train.drop_flagged} ({caught} of them flipped), then training again")  # fmt: skip
    counts = {"drop_signal": params.train.drop_flagged, "ranked": len(scores), "dropped": len(drop),
              "dropped_flipped": caught, "flipped_before": int(flipped.sum())}  # fmt: skip
    return {"positions": np.sort(drop), "counts": counts}


def launch(params: Params, layout: Layout) -> list[dict]:
    """`train.processes` > 1: rerun this very command (`python -m codemem train [-p FILE]`) under
    torchrun with that many processes on this machine, and return the history rank 0 wrote."""
    argv0 = Path(sys.argv[0])
    if not (argv0.name == "__main__.py" and argv0.parent.name == "codemem"):
        raise DeviceError("train.processes > 1 starts `python -m codemem train` under torchrun; "
                          "call it that way (or torchrun yourself) rather than codemem.train.run")  # fmt: skip
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={params.train.processes}", "-m", "codemem", *sys.argv[1:]]  # fmt: skip
    log(f"train: {params.train.processes} processes: {' '.join(cmd[1:])}")
    if subprocess.run(cmd, check=False).returncode != 0:
        raise DeviceError(f"the {params.train.processes} training processes under torchrun failed (their log above)")
    import pandas as pd

    return pd.read_csv(layout.epochs_csv).to_dict("records")


def _rng_state(device: torch.device) -> dict:
    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if state["cuda"] is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


def _run(params: Params, layout: Layout, device: torch.device, group: distributed.Group,
         stop: StopSignal | None = None, drop: dict | None = None) -> list[dict]:
    stop = stop or StopSignal()
    say = log if group.main else (lambda _message: None)
    # Some CPU kernels (index_put with accumulation, in code2seq's backward) reduce in parallel in a
    # varying order; the deterministic variants make same params give the same metrics.
    torch.use_deterministic_algorithms(True, warn_only=True)
    spec = task.get(params.task)
    torch.manual_seed(params.seed)  # initialisation (data loading draws nothing from torch)
    training = spec.prepare(params, layout, device)
    if drop is not None:  # clean-and-retrain: without the flagged samples (`flag`)
        training.drop_train(drop["positions"])
    model, optimizer, scheduler = training.model, training.optimizer, training.scheduler
    ddp = distributed.data_parallel(model, group)  # None with one process
    if group.active:
        training.group = group  # the tasks split their per-epoch measurements across the ranks
    where = f"{device} x {group.world} processes" if group.active else f"{device}"
    say(f"train: {params.model} on {where}, {training.describe()}, {count_trainable(model):,} parameters, "
        f"{params.epochs} {training.unit}s")  # fmt: skip

    if group.main:  # the checkpoint: the model and Adam's two moments (refused now, not after an epoch)
        storage.require_space(layout.checkpoint, 3 * _nbytes(model.state_dict()), "the training checkpoint")
    print_ = fingerprint(params, training.input_files, group.world)
    history: list[dict] = []
    per_sample: dict[str, list[np.ndarray]] = {}
    start, partial = 0, None
    state = None
    if group.main:  # rank 0 reads (or sets aside) the checkpoint; the others get its state from rank 0
        state = load_checkpoint(layout.checkpoint, print_, params.epochs, "cpu" if group.active else device)
    if state := distributed.broadcast_object(state, group):
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        history, per_sample, start = state["history"], state["per_sample"], state["epoch"]
        partial = state.get("partial")  # a run stopped by a signal mid-epoch
        where = f"step {partial['step']} of {training.unit} {start + 1}" if partial else f"{training.unit} {start}"
        say(f"train: resuming after {where} from {layout.checkpoint}")

    for epoch in range(start, params.epochs):
        began = time.perf_counter()
        model.train()
        torch.manual_seed(params.seed * 100_003 + epoch)  # dropout, order, sampling: a function of (seed, epoch)
        total = 0.0
        batches = training.batches(epoch)
        if group.active:  # every rank drew the same batches; dropout and sampling differ between ranks
            torch.manual_seed((params.seed * 100_003 + epoch) * 1_009 + group.rank + 1)
        done_steps = 0
        if partial and partial["epoch"] == epoch:  # go on after the last finished step, as if never stopped
            mine = partial["ranks"][group.rank]
            training.load_step_state(mine["in_step"])
            _set_rng_state(mine["rng"], device)
            total, done_steps, partial = mine["total"], partial["step"], None
        description = f"{training.unit} {epoch + 1}/{params.epochs}"
        todo = batches[done_steps:]
        for step, batch in enumerate(progress_bar(todo, description=description) if group.main else todo, done_steps):
            optimizer.zero_grad(set_to_none=True)
            if ddp is not None:
                with distributed.forward_through(training, ddp):
                    total += _shard_backward(training, batch, group)
            else:
                loss, size = training.loss(batch)
                loss.backward()
                total += loss.item() * size
            if training.clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), training.clip_norm)
            optimizer.step()
            if signum := stop.requested(group, device, step):
                ranks = distributed.all_gather_objects(
                    {"in_step": training.step_state(), "rng": _rng_state(device), "total": total}, group)
                if group.main:
                    save_checkpoint(layout.checkpoint, {
                        "fingerprint": print_, "epoch": epoch, "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict() if scheduler else None,
                        "history": history, "per_sample": per_sample,
                        "partial": {"epoch": epoch, "step": step + 1, "ranks": ranks},
                    })  # fmt: skip
                raise _stopped(signum, f"after step {step + 1} of {training.unit} {epoch + 1}", layout.checkpoint)
        # Every step starts from no gradients anyway: dropped now, they are not held through the
        # measurements (code2vec at Java-Small's size: ~0.9 GiB).
        optimizer.zero_grad(set_to_none=True)
        if scheduler is not None:
            scheduler.step()
        total = distributed.sum_scalar(total, group, device)
        training.gather_in_step(group)  # the in-step per-sample losses of every rank, on every rank
        trained = time.perf_counter() - began  # the optimisation alone, apart from the measurements

        # Every rank holds the same model (the same updates everywhere): each measures its share of the
        # measured samples (MethodName: every world-th evaluation batch; VarMisuse: every world-th
        # sample) and every rank gathers the whole.
        measured, logged = training.measure(epoch)
        row = {"epoch": epoch + 1, "train_loss": total / max(training.samples_per_epoch, 1), **measured,
               "train_seconds": round(trained, 3), "seconds": round(time.perf_counter() - began, 3)}  # fmt: skip
        history.append(row)
        for key, values in logged.items():
            per_sample.setdefault(key, []).append(values)
        say(f"{training.unit} {epoch + 1}: {training.summary(row)}  ({row['seconds']:.1f} s)")
        if group.main:
            save_checkpoint(layout.checkpoint, {
                "fingerprint": print_, "epoch": epoch + 1, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict() if scheduler else None,
                "history": history, "per_sample": per_sample,
            })  # fmt: skip
        if (signum := stop.requested(group, device)) and epoch + 1 < params.epochs:  # arrived while measuring
            raise _stopped(signum, f"after {training.unit} {epoch + 1}", layout.checkpoint)

    if not group.main:  # only rank 0 writes the outputs (and returns the history, which the CLI prints)
        return []
    model_extra, arrays, counts = training.outputs()
    with storage.atomic_dir(layout.model) as tmp:
        torch.save({"model": model.state_dict(), **model_extra}, tmp / "model.pt")
    with storage.atomic_dir(layout.logs) as tmp:
        np.savez_compressed(tmp / "per_sample.npz", **{k: np.stack(v) for k, v in per_sample.items()}, **arrays)
        counts |= {"parameters": count_trainable(model), "device": str(device)}
        if drop is not None:
            counts["retrain"] = drop["counts"]
        if group.active:
            counts["processes"] = group.world
        (tmp / "counts.json").write_text(json.dumps(counts, indent=2) + "\n")
    storage.write_epochs_csv(history, layout.epochs_csv, spec.epoch_columns)
    return history


def _shard_backward(training: task.Training, batch, group: distributed.Group) -> float:
    """This rank's share of one global batch: its term of the batch's loss (`Training.shard_loss`,
    the terms of all ranks summing to the loss of the whole batch, so the gradients summed over the
    ranks are the whole batch's), backward. Returns the term times the batch size (the ranks' sum:
    the epoch's train_loss numerator, as one process adds it). A rank whose share is empty (a batch
    smaller than the world) still runs DDP's backward, which every rank must: a zero term on the
    batch's first sample, whose in-step records are put back as they were."""
    part = distributed.shard(batch, group)
    if len(part) == 0:
        records = training.step_state()
        (training.shard_loss(batch[:1], batch) * 0.0).backward()
        training.load_step_state(records)
        return 0.0
    term = training.shard_loss(part, batch)
    term.backward()
    return term.item() * len(batch)
