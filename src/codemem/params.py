"""A typed, validated view of params.yaml.

`params.yaml` holds what a user changes, grouped by stage; every component owns its defaults in a
dataclass, and this module fills those dataclasses from the file. A bad value is a `ParamsError`
that says which key, what was wrong and what is allowed, never a traceback from deep inside a stage.

DVC's `-S key=value` rewrites params.yaml as YAML 1.2, so we read it with a YAML 1.2 reader
(ruamel.yaml): `1e-4` is a string in YAML 1.1 readers but a float here.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from codemem import datasets, task
from codemem.errors import UserError


class ParamsError(UserError):
    """A value in params.yaml that cannot be used; the message says where and how to fix it."""


@dataclass(frozen=True)
class FetchParams:
    source: str = "auto"  # "auto" (local JDK, else Debian's openjdk-17-source) or a path: zip / folder
    # Downloaded datasets (java-*, py150-great): `source` may name a local copy (the archive, or the
    # shards' folder); `url` a mirror serving the same file names (empty = the original host).
    url: str = ""
    shards: int = 0  # py150-great: download / use the first N shards of each split (0 = all 300)
    retries: int = 5  # failures in a row that bring no new byte before a download gives up
    timeout: float = 60.0  # seconds without a byte before a connection counts as lost
    time_limit: float = 86400.0  # seconds one file may take, retries included (0 = no limit)
    parallel: int = 4  # py150-great: shards downloaded at a time


@dataclass(frozen=True)
class ExtractParams:
    max_path_length: int = 8  # code2vec/code2seq JavaExtractor defaults
    max_path_width: int = 2
    max_contexts: int = 200  # contexts per sample fed to code2vec
    max_contexts_stored: int = 1000  # kept per training sample for code2seq's resampling
    top_names: int = 10  # Java-Top10: the 10 most frequent method names ...
    per_name: int = 1000  # ... at most 1,000 samples each (0 = no cap)
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train / val / test, by package
    max_file_bytes: int = 2_000_000
    workers: int = 0  # 0 = one per CPU core
    max_files: int = 0  # VarMisuse: build samples from the first N corpus files / shards only (0 = all)


@dataclass(frozen=True)
class TrainParams:
    epochs: int = 0  # 0 = the model's own default (its config's `epochs`)
    batch_size: int = 128  # the study's batch size (upstream code2vec: 1024)
    # Samples a measurement batch. 0 in params.yaml = the study's for the run (`study_eval_batch_size`):
    # code2seq under measure study measures in batches of 128 (the study's TEST_BATCH_SIZE = BATCH_SIZE),
    # which changes its greedy decoding; else 256.
    eval_batch_size: int = 256
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # torch CPU threads, 0 = torch's default
    # Data-parallel processes for one run (codemem.distributed): > 1 makes `python -m codemem train`
    # start itself under torchrun, one process per GPU (or CPU share). 1 = one process.
    processes: int = 1
    csr: bool = True  # critical sample ratio every epoch (MethodName)
    # What the per-epoch measurements are (each figure and metrics.json say which; docs/fidelity.md):
    # study: as the authors' logging patches: train F1 (VarMisuse: accuracies) from the training
    #   steps' own predictions (dropout on); Gini over the per-sample losses logged inside the steps
    #   (code2seq: over the first len(prediction) steps); score = the top-1 of a softmax over the
    #   top-10 logits; CSR over the study's renamings, each re-extracted; code2vec without methods
    #   that have no code line; training order through a 10,000-sample shuffle buffer; VarMisuse
    #   repair Gini over buggy samples, batches in stream order
    # clean: measurements from a pass after each epoch (dropout off, one model); score = the
    #   predicted name's probability under the full softmax (the paper's formula); CSR renamed in
    #   the sample's own contexts; a full permutation; VarMisuse repair Gini over buggy samples,
    #   upstream's length-sorted batches
    measure: str = "study"
    heldout: str = "dev"  # VarMisuse: the held-out split measured each step: dev (the study) | eval
    # VarMisuse: an "epoch" is a step of this many training samples, then a measurement pass (the
    # original's valid_interval, 250,000).
    samples_per_step: int = 250_000
    # VarMisuse: samples measured after each step, per split (a fixed seeded subset; 0 = all). The
    # original evaluates at most 25,000 held-out samples (max_valid_samples).
    measure_samples: int = 25_000
    # MethodName: which code computes code2vec and code2seq. fast (default): code2vec_fast.py and
    # code2seq_fast.py; reference: code2vec.py and code2seq.py, written as the originals compute
    # (nn.LSTM, bmm, nn.Dropout, code2vec's TF1Adam over whole tensors). The same models and parameters; dropout draws
    # differ, so the numbers agree within rounding only with dropout off (tests/test_reference_models.py).
    implementation: str = "fast"
    # Clean and retrain (codemem.detection): none, or a detection signal (loss, in_step_loss, aum,
    # forgetting, low_confidence; not in_step_loss for VarMisuse, nor aum for code2seq). Then train
    # first runs the same noisy training without dropping (its own checkpoint,
    # build/checkpoints/flagging/), drops the training samples that signal ranks most suspicious and
    # trains again on the rest: the outputs are the retrained run's. VarMisuse ranks (and so drops
    # from) only the `measure_samples` training samples it measures; the others all stay.
    drop_flagged: str = "none"
    drop_share: float = 0.0  # share of the (VarMisuse: measured) training samples dropped; 0 = the noise share


@dataclass(frozen=True)
class EvaluateParams:
    figures: bool = True


# A profile is a layer of defaults between the components' own (the originals' configuration and the
# study's run lengths: `study`) and what params.yaml sets explicitly. `cpu` is what a 2-core machine
# can show in about 15 minutes a run: code2seq for fewer epochs, and for VarMisuse smaller models
# (width 128, 4 heads, feed-forward 512; still 6 layers and all 24 edge types), Adam at 1e-3 and
# 3,000-token batches so that ~1,000 updates fit, on steps of 4,000 samples. These are our choices
# for a CPU, not the study's: figures say which profile made them.
_VARMISUSE_CPU = {"hidden": 128, "learning_rate": 1.0e-3, "max_batch_tokens": 3000, "epochs": 8}
_ATTENTION_CPU = _VARMISUSE_CPU | {"attention_dim": 128, "ff_dim": 512, "num_heads": 4}
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "study": {},
    "cpu": {
        "train": {"samples_per_step": 4000, "measure_samples": 500},
        "code2seq": {"epochs": 20},
        "transformer": _ATTENTION_CPU,
        "great": _ATTENTION_CPU,
        "ggnn": _VARMISUSE_CPU,
    },
}


@dataclass(frozen=True)
class Params:
    dataset: str = "jdk-top10"
    model: str = "code2vec"
    noise: float = 0.0
    seed: int = 0
    profile: str = "cpu"  # a key of PROFILES
    fetch: FetchParams = field(default_factory=FetchParams)
    extract: ExtractParams = field(default_factory=ExtractParams)
    train: TrainParams = field(default_factory=TrainParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    model_sections: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return datasets.get(self.dataset).task

    @property
    def epochs(self) -> int:
        """train.epochs when set, else the model's run length under the profile."""
        return self.train.epochs or self.model_config().epochs

    def model_config(self, name: str | None = None):
        """The chosen model's config dataclass: its defaults, overridden by params.yaml's section."""
        name = name or self.model
        return _build(task.model(name).config_class, self.model_sections.get(name, {}), name)


def _build(cls, values: dict[str, Any], where: str):
    """Fill dataclass `cls` from a mapping, checking names and types."""
    if not isinstance(values, dict):
        raise ParamsError(f"params.yaml: `{where}` must be a mapping, got {values!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ParamsError(
            f"params.yaml: unknown key(s) {', '.join(f'{where}.{k}' for k in unknown)}; "
            f"valid keys under `{where}`: {', '.join(known)}"
        )
    defaults = cls()
    kwargs = {}
    for name, value in values.items():
        kwargs[name] = _coerce(value, getattr(defaults, name), f"{where}.{name}")
    return dataclasses.replace(defaults, **kwargs)


def _coerce(value: Any, default: Any, key: str) -> Any:
    """Accept a value of the default's type (ints for floats too); anything else is an error."""
    expected = type(default)
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
        if value is not None and not isinstance(value, (dict, list)):
            return str(value)
    elif isinstance(default, tuple) and isinstance(value, (list, tuple)) and len(value) == len(default):
        return tuple(_coerce(v, d, f"{key}[{i}]") for i, (v, d) in enumerate(zip(value, default)))
    raise ParamsError(
        f"params.yaml: `{key}` = {value!r} should be {expected.__name__}"
        + (f" of length {len(default)}" if isinstance(default, tuple) else "")
        + f" (default {default!r})"
    )


def study_eval_batch_size(model: str, measure: str) -> int:
    """`train.eval_batch_size: 0`: code2seq under `measure: study` measures in the study's batches of
    128 (CI-Memorization `model/code2seq/config.py`: TEST_BATCH_SIZE = BATCH_SIZE = 128; upstream
    256). `dynamic_decode` runs a batch until its last sequence has ended, so the batch changes what
    code2seq predicts. Otherwise 256 (code2vec's predictions do not depend on the batch)."""
    return 128 if model == "code2seq" and measure == "study" else TrainParams.eval_batch_size


def from_dict(raw: dict[str, Any]) -> Params:
    raw = dict(raw or {})
    top = {f.name for f in fields(Params)} - {"model_sections"}
    profile = raw.get("profile", Params.profile)
    if profile not in PROFILES:
        raise ParamsError(f"params.yaml: profile `{profile}` is unknown; choose one of {', '.join(PROFILES)}")
    for key, defaults in PROFILES[profile].items():  # the file's own values win over the profile's
        if key in raw and not isinstance(raw[key], dict | None):
            continue  # _build reports the wrong type
        raw[key] = {**defaults, **(raw.get(key) or {})}
    train_raw = raw.get("train")
    if isinstance(train_raw, dict | None) and not (train_raw or {}).get("eval_batch_size"):  # absent or 0
        train_raw = dict(train_raw or {})
        train_raw["eval_batch_size"] = study_eval_batch_size(str(raw.get("model", Params.model)),
                                                             str(train_raw.get("measure", TrainParams.measure)))
        raw["train"] = train_raw
    sections = {n: raw.pop(n) for n in list(raw) if n in task.model_names()}
    unknown = sorted(set(raw) - top)
    if unknown:
        raise ParamsError(
            f"params.yaml: unknown top-level key(s) {', '.join(unknown)}; valid: "
            f"{', '.join(sorted(top | set(task.model_names())))}"
        )
    p = Params()
    scalars = {k: _coerce(raw[k], getattr(p, k), k) for k in ("dataset", "model", "noise", "seed", "profile")
               if k in raw}
    groups = {
        k: _build(type(getattr(p, k)), raw[k] or {}, k)
        for k in ("fetch", "extract", "train", "evaluate")
        if k in raw
    }
    params = dataclasses.replace(p, **scalars, **groups, model_sections=sections)
    validate(params)
    return params


def validate(p: Params) -> None:
    if p.dataset not in datasets.names():
        raise ParamsError(f"params.yaml: dataset `{p.dataset}` is unknown; choose one of {', '.join(datasets.names())}")
    if p.model not in task.model_names():
        raise ParamsError(f"params.yaml: model `{p.model}` is unknown; choose one of {', '.join(task.model_names())}")
    fitting = task.model_names(p.task)
    if p.model not in fitting:
        raise ParamsError(
            f"params.yaml: model `{p.model}` does not fit dataset `{p.dataset}` (task {p.task}); "
            f"models for {p.task}: {', '.join(fitting)}"
        )
    if not 0.0 <= p.noise <= 1.0:
        raise ParamsError(f"params.yaml: noise = {p.noise} is outside [0, 1]; it is the share of training labels replaced")
    checks = [
        (p.train.epochs >= 0, "train.epochs must be >= 0 (0 = the model's default)"),
        (p.train.batch_size >= 1, "train.batch_size must be >= 1"),
        (p.train.processes >= 1, "train.processes must be >= 1"),
        (p.train.eval_batch_size >= 1, "train.eval_batch_size must be >= 1"),
        (p.extract.max_contexts >= 1, "extract.max_contexts must be >= 1"),
        (p.extract.max_contexts_stored >= p.extract.max_contexts,
         "extract.max_contexts_stored must be >= extract.max_contexts"),
        (p.extract.top_names >= 1, "extract.top_names must be >= 1"),
        (p.extract.per_name >= 0, "extract.per_name must be >= 0 (0 = no cap)"),
        (p.extract.max_files >= 0, "extract.max_files must be >= 0 (0 = all files)"),
        (p.fetch.shards >= 0, "fetch.shards must be >= 0 (0 = all shards)"),
        (p.fetch.retries >= 0, "fetch.retries must be >= 0"),
        (p.fetch.timeout > 0, "fetch.timeout must be > 0 seconds"),
        (p.fetch.time_limit >= 0, "fetch.time_limit must be >= 0 seconds (0 = no limit)"),
        (p.fetch.parallel >= 1, "fetch.parallel must be >= 1 (shards downloaded at a time)"),
        (not p.fetch.url or p.fetch.url.startswith(("http://", "https://")),
         "fetch.url must be an http:// or https:// mirror (a local copy goes in fetch.source)"),
        (p.train.samples_per_step >= 1, "train.samples_per_step must be >= 1"),
        (p.train.measure_samples >= 0, "train.measure_samples must be >= 0 (0 = all)"),
        (all(s >= 0 for s in p.extract.split) and abs(sum(p.extract.split) - 1.0) < 1e-6 and p.extract.split[2] > 0,
         "extract.split must be three non-negative shares (train, val, test) summing to 1 with test > 0"),
        (p.train.measure in ("study", "clean"), "train.measure must be study or clean"),
        (p.train.drop_flagged in DROP_SIGNALS,
         f"train.drop_flagged must be one of {', '.join(DROP_SIGNALS)} (codemem.detection's signals)"),
        (0.0 <= p.train.drop_share < 1.0, "train.drop_share must be in [0, 1) (0 = the noise share)"),
        (p.train.heldout in ("dev", "eval"), "train.heldout must be dev (the study's) or eval"),
        (p.train.implementation in ("fast", "reference"), "train.implementation must be fast or reference"),
        (p.train.device == "auto" or p.train.device == "cpu" or p.train.device.startswith("cuda"),
         "train.device must be auto, cpu, cuda or cuda:N"),
    ]
    for ok, message in checks:
        if not ok:
            raise ParamsError(f"params.yaml: {message}")
    p.model_config()  # a bad model section fails here, before any stage starts
    refuse_inert(p)
    for signal, lacking, why in UNAVAILABLE_SIGNALS:
        if p.train.drop_flagged == signal and lacking(p):
            raise ParamsError(f"params.yaml: train.drop_flagged = {signal} is not offered for model {p.model} "
                              f"({why})")


def _varmisuse(p: Params) -> bool:
    return p.task == "varmisuse"


def _methodname(p: Params) -> bool:
    return p.task == "methodname"


DROP_SIGNALS = ("none", "loss", "in_step_loss", "aum", "forgetting", "low_confidence")

# Signals a model's run does not log the input of: (signal, for which runs, why). Refused here, not
# after the flagging pass has trained for hours (docs/detection.md).
UNAVAILABLE_SIGNALS = [
    ("in_step_loss", _varmisuse,
     ("a VarMisuse step trains on a slice of an endless stream, so each measured sample's in-step losses "
      "come from other steps, and other numbers of them, than the next one's: their mean would rank samples "
      "by when the stream drew them (docs/detection.md); use loss, the same loss measured after every step")),
    ("aum", lambda p: p.model == "code2seq",
     "code2seq predicts names as sequences and logs no label margin; use loss or low_confidence"),
]  # fmt: skip

# Settings that do nothing for some tasks or datasets: (setting, where it does nothing, what to do instead).
INERT = [
    ("train.batch_size", _varmisuse, "VarMisuse batches by tokens: set <model>.max_batch_tokens"),
    ("train.eval_batch_size", _varmisuse, "VarMisuse measures in token-budget batches (<model>.max_batch_tokens)"),
    ("train.samples_per_step", _methodname, "MethodName trains in epochs over the whole training split"),
    ("train.measure_samples", _methodname, "MethodName measures every training and test sample"),
    ("train.heldout", _methodname, "MethodName measures its test split"),
    ("train.drop_share", lambda p: p.train.drop_flagged == "none", "it is the share train.drop_flagged drops"),
    ("train.implementation", _varmisuse, "only code2vec and code2seq have a reference and a fast implementation"),
    *[(f"extract.{k}", _varmisuse, "it shapes MethodName's path-contexts only")
      for k in ("max_path_length", "max_path_width", "max_contexts", "max_contexts_stored", "top_names", "per_name")],
    ("extract.split", lambda p: datasets.get(p.dataset).kind in ("java-archive", "great-shards"),
     "the archive's (or shards') own training / validation / test folders are the splits"),
    ("extract.top_names", lambda p: datasets.get(p.dataset).kind == "java-archive",
     "java-top10 takes the study's ten names; java-small/med/large take every method"),
    ("fetch.shards", lambda p: p.dataset != "py150-great", "only py150-great is downloaded in shards"),
    ("fetch.parallel", lambda p: p.dataset != "py150-great", "only py150-great is downloaded in shards"),
]


def refuse_inert(p: Params) -> None:
    """A setting changed from its default (under the profile) where it does nothing is an error: whoever
    set it expects an effect."""
    for key, inert, instead in INERT:
        section, name = key.split(".")
        value = getattr(getattr(p, section), name)
        default = PROFILES[p.profile].get(section, {}).get(name, getattr(type(getattr(p, section))(), name))
        if value != default and inert(p):
            raise ParamsError(f"params.yaml: `{key}` = {value!r} does nothing for model {p.model} on dataset "
                              f"{p.dataset} ({instead}); remove it or set it back to {default!r}")


def load(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path} not found: run from the repository root (where dvc.yaml is)")
    yaml = YAML(typ="safe")
    try:
        raw = yaml.load(path.read_text())
    except Exception as e:  # ruamel raises several types; all mean the same to the user
        raise ParamsError(f"{path} is not valid YAML: {e}") from e
    return from_dict(raw or {})
