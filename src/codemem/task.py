"""The Task interface: what the stages need from MethodName and VarMisuse, and nothing else.

The stages never branch on the task. `extract`, `corrupt` and `evaluate` call the `Task` of the
dataset (`get(params.task)`); `train` runs one loop (codemem.train) over the `Training` the task
prepares. Each task is a package (codemem.methodname, codemem.varmisuse) whose `__init__` holds its
`TaskSpec`: the Task, and each model's configuration, model and training. A new task is a package with
a spec, named in `TASKS`; a new model of a task is one more `ModelSpec` in its package's spec.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: params validation reads the specs here without numpy or torch
    import numpy as np
    import pandas as pd
    import torch

    from codemem.params import Params
    from codemem.storage import Layout


class Training(ABC):
    """One run's data, model and optimiser, as codemem.train's loop drives them.

    The loop reseeds torch from (seed, epoch) before `batches`, so everything random in an epoch is a
    function of the settings and the epoch: a resumed run ends with the same numbers.
    """

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    clip_norm: float | None = None  # global-norm gradient clipping, None = none
    unit: str = "epoch"  # what the task calls one pass (VarMisuse: a step of N samples)
    input_files: list[Path]  # the files whose bytes a checkpoint must match to be resumed
    samples_per_epoch: int  # the denominator of an epoch's mean training loss

    @abstractmethod
    def describe(self) -> str:
        """One line on the data: sample counts, vocabulary sizes."""

    @abstractmethod
    def batches(self, epoch: int) -> list:
        """The epoch's training batches, in order."""

    @abstractmethod
    def loss(self, batch) -> tuple[torch.Tensor, int]:
        """(the scalar to minimise, the number of samples it averages over)."""

    @abstractmethod
    def measure(self, epoch: int) -> tuple[dict, dict[str, np.ndarray]]:
        """After the epoch: (its row of plots/epochs.csv without epoch, train_loss and timings; the
        per-sample arrays to log, one value per measured sample)."""

    def shard_loss(self, part, batch) -> torch.Tensor:
        """Data-parallel training: this rank's term of the loss of the global `batch`, computed on its
        share `part` only, such that the ranks' terms sum to `loss(batch)`. This default is exact for
        a loss that is a mean over the batch's samples: the share's mean weighted by its size."""
        loss, size = self.loss(part)
        return loss * (size / len(batch))

    def gather_in_step(self, group) -> None:
        """Data-parallel training (codemem.distributed.Group, world > 1): after the epoch's steps, put
        every rank's in-step per-sample records together on every rank, before `measure`. A task
        that records nothing inside its steps has nothing to do."""

    def step_state(self) -> dict:
        """What the steps of the epoch so far recorded (in-step per-sample losses), for a checkpoint
        written mid-epoch when the run is stopped by a signal."""
        return {}

    def load_step_state(self, state: dict) -> None:
        """Put back `step_state()` after `batches(epoch)`, to go on from a mid-epoch checkpoint."""

    def drop_train(self, positions: np.ndarray) -> None:
        """Train without the training samples at `positions` (those `outputs()`' per-sample arrays are
        indexed by): clean-and-retrain (train.drop_flagged)."""
        raise NotImplementedError(f"{type(self).__name__} cannot drop training samples")

    @abstractmethod
    def summary(self, row: dict) -> str:
        """The epoch's row as one log line."""

    @abstractmethod
    def outputs(self) -> tuple[dict, dict[str, np.ndarray], dict]:
        """At the end: (extra entries for model.pt, extra arrays for per_sample.npz, counts.json)."""


class Task(ABC):
    name: str
    epoch_columns: tuple[str, ...]  # plots/epochs.csv's header, in order
    score_labels: dict[str, str]  # train.measure -> what the per-sample score in plots/scores.csv is
    # plots/study.csv column (codemem.evaluate.STUDY_COLUMNS) -> this task's epochs.csv column
    study_columns: dict[str, str]

    @abstractmethod
    def extract(self, params: Params, layout: Layout) -> dict:
        """build/raw -> build/samples; returns the summary the stage prints."""

    @abstractmethod
    def corrupt(self, params: Params, layout: Layout, rng: np.random.Generator) -> dict:
        """build/samples -> build/noisy: the study's label noise on the training split."""

    @abstractmethod
    def prepare(self, params: Params, layout: Layout, device: torch.device) -> Training:
        """Load the samples and build the model, its optimiser and its measurements."""

    @abstractmethod
    def final_metrics(self, last: pd.Series, counts: dict, params: Params) -> dict:
        """metrics/metrics.json from the last row of epochs.csv and the training counts."""

    @abstractmethod
    def draw(self, history: pd.DataFrame, title: str, plots_dir: Path) -> None:
        """plots/curves.png from epochs.csv."""


def _load(where: str):
    """`package.module:Name` -> the object, imported on first use (`--help` and params stay fast)."""
    module, _, name = where.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class ModelSpec:
    """One model: its name in params.yaml, its defaults (codemem.model_configs, without torch), the
    nn.Module and the Training that prepares its data and measures it."""

    name: str
    config: str  # codemem.model_configs.<config>
    model: str  # module:Class
    training: str  # module:Class

    @property
    def config_class(self):
        from codemem import model_configs

        return getattr(model_configs, self.config)

    @property
    def model_class(self):
        return _load(self.model)

    @property
    def training_class(self):
        return _load(self.training)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    task: str  # module:Name of the Task instance
    models: tuple[ModelSpec, ...]


TASKS = ("methodname", "varmisuse")  # each a package codemem.<name> holding SPEC


def spec(name: str) -> TaskSpec:
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    return importlib.import_module(f"codemem.{name}").SPEC


def get(name: str) -> Task:
    """The task's implementation, imported on first use."""
    return _load(spec(name).task)


def model_names(task: str | None = None) -> list[str]:
    return [m.name for t in TASKS if task in (None, t) for m in spec(t).models]


def model(name: str) -> ModelSpec:
    found = [m for t in TASKS for m in spec(t).models if m.name == name]
    if not found:
        raise KeyError(f"unknown model {name!r}; choose one of {', '.join(model_names())}")
    return found[0]


def task_of(model_name: str) -> str:
    return next(t for t in TASKS if any(m.name == model_name for m in spec(t).models))


def count_trainable(module) -> int:
    """Trainable parameters, the number the study's Table 1 reports per model and dataset."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
