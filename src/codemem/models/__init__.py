"""Model registry: one name per model, the task it solves, and where its code lives.

Models are imported lazily so that `--help` and parameter validation stay fast.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    name: str
    task: str  # "methodname" | "varmisuse"
    module: str  # codemem.models.<module>
    class_name: str
    config_name: str

    @property
    def config_class(self):  # without the model's code (and torch): params validation needs only this
        from codemem.models import configs

        return getattr(configs, self.config_name)

    @property
    def model_class(self):
        return getattr(importlib.import_module(f"codemem.models.{self.module}"), self.class_name)


_REGISTRY = {
    spec.name: spec
    for spec in [
        ModelSpec("code2vec", "methodname", "code2vec", "Code2Vec", "Code2VecConfig"),
        ModelSpec("code2seq", "methodname", "code2seq", "Code2Seq", "Code2SeqConfig"),
        ModelSpec("transformer", "varmisuse", "transformer", "Transformer", "TransformerConfig"),
        ModelSpec("great", "varmisuse", "great", "GREAT", "GREATConfig"),
        ModelSpec("ggnn", "varmisuse", "ggnn", "GGNN", "GGNNConfig"),
    ]
}


def names(task: str | None = None) -> list[str]:
    return [n for n, s in _REGISTRY.items() if task is None or s.task == task]


def get(name: str) -> ModelSpec:
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; choose one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def count_trainable(model) -> int:
    """Trainable parameters, the number the study's Table 1 reports per model and dataset."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
