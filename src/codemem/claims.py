"""claims: the study's claims checked against the kept runs, and a fresh run against the baseline.

`python -m codemem claims` reads the runs that `python -m codemem report` keeps (`plots/runs/`,
`plots/code2seq/runs/`, `plots/varmisuse/runs/`, or the folders given with `--runs`; one run of
each model, dataset, profile, noise and seed, the newest, as the report has them), lays them out as
one tidy frame (one row per run and epoch: model, dataset, profile, measure, noise, seed, epoch,
then the metrics; the run's final metrics from run.json on its last row, `final` = True) and checks
each claim of the README's claims table on every group of runs of one model, dataset and profile.
A claim's figures are final-epoch values, the mean over the seeds kept at each noise level.

Each claim is a pure function of such a frame, so it can be tested on a hand-made one. Its verdict:

- `holds`: every check of its rule passes;
- `does not hold`: one fails (the check says which level and by how much);
- `not enough runs`: the group lacks the runs the rule needs (noise 0 and noise 1 at least; a
  comparison with the study needs a level the study published).

"Monotone" allows a step the wrong way of up to `MONOTONE_TOLERANCE` (0.01) between neighbouring
levels: seeds alone move final-epoch F1 by ~0.01-0.03 at a level (two seeds).

`python -m codemem claims --baseline` compares a fresh run's `metrics/metrics.json` with the
committed one (`git show HEAD:metrics/metrics.json`, or `--against FILE`) within a stated tolerance
per metric (`BASELINE_TOLERANCE`): "reproduced within 0.005", or the metrics that differ and by how
much (exit 1).
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from codemem.errors import UserError
from codemem.report import PUBLISHED, Experiment, kept_runs, merge

HOLDS, FAILS, NOT_ENOUGH = "holds", "does not hold", "not enough runs"
MONOTONE_TOLERANCE = 0.01
ID_COLUMNS = ("model", "dataset", "profile", "measure", "noise", "seed", "epoch")
# The embedded corpora stand in for the study's datasets: jdk-top10 is built like Java-Top10 (the
# ten most frequent names) from the JDK's sources; stdlib-great like Py150-Great from CPython's.
STUDY_DATASET = {"jdk-top10": "java-top10", "java-top10": "java-top10",
                 "stdlib-great": "py150-great", "py150-great": "py150-great"}  # fmt: skip


class NoRunsError(UserError):
    """No kept run could be read: `claims` has nothing to check."""


# ---------------------------------------------------------------------------------------------
# The tidy frame


def tidy(experiments: list[Experiment]) -> pd.DataFrame:
    """One row per run and epoch (ID_COLUMNS, then every numeric column of epochs.csv); the run's
    final metrics (run.json) written over its last row, which has `final` = True. A run kept
    without epochs.csv is its final row alone (epoch = its `epochs` metric, if any)."""
    frames = []
    for e in experiments:
        metrics = {k: v for k, v in e.metrics.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ID_COLUMNS}  # fmt: skip
        epochs = e.epochs.copy() if e.epochs is not None and len(e.epochs) else None
        if epochs is None:
            epochs = pd.DataFrame([{"epoch": e.metrics.get("epochs", np.nan)}])
        elif "epoch" not in epochs:
            epochs.insert(0, "epoch", range(1, len(epochs) + 1))
        epochs = epochs.sort_values("epoch", kind="stable").reset_index(drop=True)
        epochs["final"] = False
        last = len(epochs) - 1
        epochs.loc[last, "final"] = True
        for k, v in metrics.items():
            if k not in epochs:
                epochs[k] = np.nan
            elif epochs[k].dtype.kind != "f":
                epochs[k] = epochs[k].astype(float)
            epochs.loc[last, k] = float(v)
        ids = {"model": e.model, "dataset": e.dataset, "profile": e.params.get("profile", e.metrics.get("profile", "cpu")),
               "measure": e.metrics.get("measure") or (e.params.get("train") or {}).get("measure") or "?",
               "noise": float(e.noise), "seed": int(e.seed)}  # fmt: skip
        for i, (k, v) in enumerate(ids.items()):
            epochs.insert(i, k, v)
        frames.append(epochs)
    if not frames:
        return pd.DataFrame(columns=[*ID_COLUMNS, "final"])
    frame = pd.concat(frames, ignore_index=True)
    first = [*ID_COLUMNS, "final"]
    return frame[first + [c for c in frame.columns if c not in first]]


def final_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Each run's final row: where `final` is True, or (a hand-made frame without `final`) the row
    of its highest epoch."""
    if "final" in frame:
        return frame[frame["final"].astype(bool)]
    keys = [c for c in ("model", "dataset", "profile", "measure", "noise", "seed") if c in frame]
    if "epoch" not in frame:
        return frame
    return frame.sort_values("epoch").groupby(keys, dropna=False, sort=False).tail(1)


def level_means(frame: pd.DataFrame, column: str) -> pd.Series:
    """Final-epoch `column` per noise level, the mean over the seeds that have it; sorted by noise."""
    finals = final_rows(frame)
    if column not in finals:
        return pd.Series(dtype=float)
    values = finals[["noise", column]].dropna()
    return values.groupby("noise")[column].mean().sort_index()


def level_seeds(frame: pd.DataFrame) -> dict[float, int]:
    finals = final_rows(frame)
    return {float(n): int(c) for n, c in finals.groupby("noise")["seed"].nunique().sort_index().items()}


# ---------------------------------------------------------------------------------------------
# Checks and outcomes


@dataclass
class Outcome:
    """What a claim function found: its status, the checks it made (passed, text) and the figures
    behind them (metric -> {noise: mean over seeds}); `study`: the published values it compared."""

    status: str
    checks: list[tuple[bool, str]] = field(default_factory=list)
    figures: dict[str, dict[float, float]] = field(default_factory=dict)
    study: dict[str, dict[float, float]] = field(default_factory=dict)
    missing: str = ""


def _pct(noise: float) -> str:
    return f"{noise * 100:g} %"


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def _figures(frame: pd.DataFrame, *columns: str) -> dict[str, dict[float, float]]:
    return {c: {float(n): float(v) for n, v in level_means(frame, c).items()} for c in columns}


def _endpoints(*series: tuple[str, pd.Series]) -> str:
    """Why a rule cannot be checked: a metric without noise 0 or noise 1 (100 %). '' when all have both."""
    lacking = []
    for name, s in series:
        gaps = [_pct(n) for n in (0.0, 1.0) if not any(math.isclose(n, x) for x in s.index)]
        if gaps:
            lacking.append(f"{name} at {' and '.join(gaps)}")
    return ("no final " + "; ".join(lacking)) if lacking else ""


def monotone(series: pd.Series, name: str, falling: bool, tolerance: float = MONOTONE_TOLERANCE) -> tuple[bool, str]:
    """One check: `series` (by noise) non-increasing (falling) or non-decreasing, each step the wrong
    way at most `tolerance`, and its last value strictly beyond its first (a net fall / rise)."""
    values = list(series.items())
    wrong = [(a, b, vb - va) for (a, va), (b, vb) in itertools.pairwise(values)
             if (vb - va > tolerance if falling else va - vb > tolerance)]  # fmt: skip
    net = values[-1][1] - values[0][1]
    net_ok = net < 0 if falling else net > 0
    if not wrong and net_ok:
        return True, (f"{name} {'non-increasing' if falling else 'non-decreasing'} (no step back over "
                      f"{tolerance:g}), net {'fall' if falling else 'rise'} {abs(net):.3f}")  # fmt: skip
    what = [f"{'rises' if falling else 'falls'} {abs(d):.3f} from {_pct(a)} to {_pct(b)}" for a, b, d in wrong]
    if not net_ok:
        what.append(f"no net {'fall' if falling else 'rise'} from {_pct(values[0][0])} to {_pct(values[-1][0])} "
                    f"({_fmt(values[0][1])} -> {_fmt(values[-1][1])})")  # fmt: skip
    return False, f"{name} " + "; ".join(what)


def _decide(checks: list[tuple[bool, str]], figures, study=None) -> Outcome:
    checks = [(bool(ok), text) for ok, text in checks]
    return Outcome(HOLDS if all(ok for ok, _ in checks) else FAILS, checks, figures, study or {})


# ---------------------------------------------------------------------------------------------
# The claims: each a pure function of one group's tidy frame (one model, dataset and profile)


def memorizes(frame: pd.DataFrame, train_floor: float = 0.95, chance: float = 0.10,
              tolerance: float = MONOTONE_TOLERANCE) -> Outcome:  # fmt: skip
    """Claim: "code2vec memorizes: train F1 stays high under noise while test F1 falls to chance".

    Rule: the mean train F1 is at least `train_floor` (0.95) at every noise level; test F1 is
    monotone non-increasing in noise (within `tolerance`, 0.01) with a net fall; at 100 % noise test
    F1 is at most `chance` (0.10: the study's .035, a constant guess of the most frequent name of ten
    scores about that). Needs noise 0 and 100 %."""
    train, test = level_means(frame, "train_f1"), level_means(frame, "test_f1")
    figures = _figures(frame, "train_f1", "test_f1")
    missing = _endpoints(("train F1", train), ("test F1", test))
    if missing:
        return Outcome(NOT_ENOUGH, figures=figures, missing=missing)
    low = train[train < train_floor]
    checks = [(low.empty, f"train F1 >= {train_floor:g} at every level (lowest {_fmt(train.min())} at "
                          f"{_pct(train.idxmin())})" if low.empty else
               f"train F1 below {train_floor:g} at " + ", ".join(f"{_pct(n)} ({_fmt(v)})" for n, v in low.items())),
              monotone(test, "test F1", falling=True, tolerance=tolerance)]  # fmt: skip
    top = test.iloc[-1]
    checks.append((top <= chance, (f"test F1 at 100 % is {_fmt(top)} ({'<=' if top <= chance else '>'} "
                                   f"{chance:g}, chance)")))  # fmt: skip
    return _decide(checks, figures)


def cannot_fit_noise(frame: pd.DataFrame, train_ceiling: float = 0.5,
                     tolerance: float = MONOTONE_TOLERANCE) -> Outcome:  # fmt: skip
    """Claim: "code2seq cannot fit noisy names: train F1, Gini fall; CSR rises".

    Rule: train F1 monotone non-increasing in noise (within `tolerance`, 0.01) with a net fall, and
    below `train_ceiling` (0.5) at 100 % noise (code2vec, which memorizes, stays above 0.95); the
    Gini of the per-sample training loss monotone non-increasing with a net fall; the CSR monotone
    non-decreasing with a net rise. Needs noise 0 and 100 %."""
    train, gini, csr = (level_means(frame, c) for c in ("train_f1", "gini", "csr"))
    figures = _figures(frame, "train_f1", "gini", "csr")
    missing = _endpoints(("train F1", train), ("Gini", gini), ("CSR", csr))
    if missing:
        return Outcome(NOT_ENOUGH, figures=figures, missing=missing)
    top = train.iloc[-1]
    checks = [monotone(train, "train F1", falling=True, tolerance=tolerance),
              (top < train_ceiling, (f"train F1 at 100 % is {_fmt(top)} ({'<' if top < train_ceiling else '>='} "
                                     f"{train_ceiling:g}: {'not fitted' if top < train_ceiling else 'fitted'})")),
              monotone(gini, "Gini", falling=True, tolerance=tolerance),
              monotone(csr, "CSR", falling=False, tolerance=tolerance)]  # fmt: skip
    return _decide(checks, figures)


def _monotone_claim(frame: pd.DataFrame, column: str, name: str, label: str, falling: bool,
                    tolerance: float) -> Outcome:
    """The mean final `column` monotone in noise (within `tolerance`) with a net change from noise 0
    to 100 %; not enough runs without both ends."""
    means = level_means(frame, column)
    figures = _figures(frame, column)
    missing = _endpoints((name, means))
    if missing:
        return Outcome(NOT_ENOUGH, figures=figures, missing=missing)
    return _decide([monotone(means, label, falling=falling, tolerance=tolerance)], figures)


def csr_rises(frame: pd.DataFrame, tolerance: float = MONOTONE_TOLERANCE) -> Outcome:
    """Claim: "CSR rises with noise" (the critical sample ratio: the share of test samples whose
    prediction a semantics-preserving variable renaming changes).

    Rule: the mean final CSR is monotone non-decreasing in noise (within `tolerance`, 0.01) with a
    net rise from noise 0 to 100 %. Needs noise 0 and 100 %."""
    return _monotone_claim(frame, "csr", "CSR", "CSR", falling=False, tolerance=tolerance)


def gini_falls(frame: pd.DataFrame, column: str = "gini", tolerance: float = MONOTONE_TOLERANCE) -> Outcome:
    """Claim: "The Gini of training loss falls with noise" (the Gini coefficient of the per-sample
    training losses: high when few samples carry the loss).

    Rule: the mean final Gini (`column`) is monotone non-increasing in noise (within `tolerance`,
    0.01) with a net fall from noise 0 to 100 %. Needs noise 0 and 100 %."""
    return _monotone_claim(frame, column, "Gini", "Gini", falling=True, tolerance=tolerance)


def scores_fall(frame: pd.DataFrame, tolerance: float = MONOTONE_TOLERANCE) -> Outcome:
    """Claim: "Predicted scores fall with noise" (the study's sorted-score curves: a noisier model
    is less sure of its test predictions).

    Rule: the mean predicted score of the test samples (`test_score`, the mean of scores.csv) is
    monotone non-increasing in noise (within `tolerance`, 0.01) with a net fall from noise 0 to
    100 %. Needs noise 0 and 100 %."""
    return _monotone_claim(frame, "test_score", "test score", "mean test score", falling=True, tolerance=tolerance)


def localization_collapses(frame: pd.DataFrame, learned: float = 0.10, collapsed: float = 0.05,
                           tolerance: float = MONOTONE_TOLERANCE) -> Outcome:  # fmt: skip
    """Claim: "GREAT's localization collapses under noise, its Gini falls" (and "GGNN collapses the
    same way").

    Rule: localization accuracy at noise 0 is at least `learned` (0.10; a pointer guessing among a
    function's ~88 tokens scores ~0.01), it is monotone non-increasing in noise (within `tolerance`,
    0.01) and at most `collapsed` (0.05) at 100 % (the study's GREAT: .001); the Gini of the
    location loss (`gini_loc`) is monotone non-increasing with a net fall. Needs noise 0 and 100 %."""
    loc, gini = level_means(frame, "loc_acc"), level_means(frame, "gini_loc")
    figures = _figures(frame, "loc_acc", "gini_loc")
    missing = _endpoints(("localization", loc), ("Gini of location loss", gini))
    if missing:
        return Outcome(NOT_ENOUGH, figures=figures, missing=missing)
    first, top = loc.iloc[0], loc.iloc[-1]
    checks = [(first >= learned, (f"localization at 0 % is {_fmt(first)} ({'>=' if first >= learned else '<'} "
                                  f"{learned:g}: {'learned' if first >= learned else 'not learned'})")),
              monotone(loc, "localization", falling=True, tolerance=tolerance),
              (top <= collapsed, (f"localization at 100 % is {_fmt(top)} ({'<=' if top <= collapsed else '>'} "
                                  f"{collapsed:g})")),
              monotone(gini, "Gini of location loss", falling=True, tolerance=tolerance)]  # fmt: skip
    return _decide(checks, figures)


def matches_study(frame: pd.DataFrame, published: pd.DataFrame | None, metric: str = "test_f1",
                  tolerance: float = 0.05) -> Outcome:  # fmt: skip
    """Claim: "test F1 within 0.05 of the study's published value at each level" (README: "test
    F1 within 0.04 of the study's"; issue 24: "within 0.05 ... at every level"). With metric="csr",
    tolerance=0.10: issue 24's target "code2vec CSR ... within 0.10 of the study's at each level".

    Rule: at every noise level where the study published `metric` (repro/published.csv, for the
    frame's model on the study's dataset or the corpus standing in for it) and the group has runs,
    |mean over seeds - study| <= `tolerance`. Needs noise 0 and 100 %; the figures name the levels
    not run."""
    ours = level_means(frame, metric)
    figures = _figures(frame, metric)
    models = set(frame["model"]) if "model" in frame else set()
    datasets = {STUDY_DATASET.get(d, d) for d in frame["dataset"]} if "dataset" in frame else set()
    study: dict[float, float] = {}
    if published is not None and len(models) == 1:
        rows = published[(published["model"] == next(iter(models))) & (published["metric"] == metric)
                         & (published["dataset"].isin(datasets) if datasets else True)]  # fmt: skip
        if not rows.empty:
            for column in rows.columns:
                if column.startswith("noise_") and pd.notna(rows.iloc[0][column]):
                    study[int(column[len("noise_"):]) / 100] = float(rows.iloc[0][column])
    if not study:
        return Outcome(NOT_ENOUGH, figures=figures, missing=f"the study published no {metric} for this model and dataset")
    missing = _endpoints((metric, ours))
    if missing:
        return Outcome(NOT_ENOUGH, figures=figures, study={metric: study}, missing=missing)
    checks, close = [], []
    for noise, value in study.items():
        match = [n for n in ours.index if math.isclose(n, noise)]
        if not match:
            continue
        diff = float(ours[match[0]]) - value
        if abs(diff) <= tolerance + 1e-12:
            close.append((noise, diff))
        else:
            checks.append((False, (f"{metric} at {_pct(noise)}: {_fmt(ours[match[0]])} vs the study's "
                                   f"{_fmt(value)} ({diff:+.3f}, beyond {tolerance:g})")))  # fmt: skip
    if close:
        worst = max(close, key=lambda c: abs(c[1]))
        checks.insert(0, (True, (f"{metric} within {tolerance:g} at {', '.join(f'{n * 100:g}' for n, _ in close)} % "
                                 f"(largest: {worst[1]:+.3f} at {_pct(worst[0])})")))  # fmt: skip
    not_run = [_pct(n) for n in study if not any(math.isclose(n, x) for x in ours.index)]
    if not_run:
        checks.append((True, f"not run: {', '.join(not_run)} (not checked)"))
    return _decide(checks, figures, {metric: study})


# ---------------------------------------------------------------------------------------------
# The registry: the README's claims table


@dataclass(frozen=True)
class Claim:
    id: str
    text: str  # the claim as the README's claims table states it
    rule: str  # the rule, short
    models: tuple[str, ...]  # the models it is about; () = every model with the metrics
    check: Callable[[pd.DataFrame, pd.DataFrame | None], Outcome]
    how: str  # how to make the runs it needs


CODE2VEC_SWEEP = "python repro/sweep.py --model code2vec --seed 0 --seed 1, then python -m codemem report"
CODE2SEQ_SWEEP = ("python repro/sweep.py --model code2seq --seed 0 --seed 1, then "
                  "python -m codemem report --plots plots/code2seq")  # fmt: skip
VARMISUSE_SWEEP = "the reduced sweep of docs/results.md, then python -m codemem report --plots plots/varmisuse"

CLAIMS: tuple[Claim, ...] = (
    Claim("memorizes", "code2vec memorizes: train F1 stays high under noise while test F1 falls to chance",
          "train F1 >= 0.95 at every level; test F1 non-increasing (tol 0.01), <= 0.10 at 100 %",
          ("code2vec",), lambda f, p: memorizes(f), CODE2VEC_SWEEP),
    Claim("cannot-fit", "code2seq cannot fit noisy names: train F1 and Gini fall, CSR rises",
          "train F1 non-increasing (tol 0.01), < 0.5 at 100 %; Gini non-increasing; CSR non-decreasing",
          ("code2seq",), lambda f, p: cannot_fit_noise(f), CODE2SEQ_SWEEP),
    Claim("csr-rises", "CSR rises with noise", "CSR non-decreasing in noise (tol 0.01), net rise",
          ("code2vec", "code2seq"), lambda f, p: csr_rises(f), CODE2VEC_SWEEP),
    Claim("gini-falls", "The Gini of training loss falls with noise",
          "Gini non-increasing in noise (tol 0.01), net fall",
          ("code2vec", "code2seq"), lambda f, p: gini_falls(f), CODE2VEC_SWEEP),
    Claim("scores-fall", "Predicted scores fall with noise",
          "mean test score non-increasing in noise (tol 0.01), net fall",
          (), lambda f, p: scores_fall(f), CODE2VEC_SWEEP),
    Claim("localization-collapses", "GREAT's localization collapses under noise, its Gini falls (GGNN the same way)",
          "localization >= 0.10 at 0 %, non-increasing (tol 0.01), <= 0.05 at 100 %; location-loss Gini "
          "non-increasing", ("great", "ggnn"), lambda f, p: localization_collapses(f), VARMISUSE_SWEEP),
    Claim("test-f1-vs-study", "Test F1 within 0.05 of the study's published value at each level",
          "|ours - study| <= 0.05 at each level run", ("code2vec", "code2seq"),
          lambda f, p: matches_study(f, p, "test_f1", 0.05), CODE2VEC_SWEEP),
    Claim("csr-vs-study", "code2vec CSR within 0.10 of the study's at each level (issue 24's target)",
          "|ours - study| <= 0.10 at each level run", ("code2vec",),
          lambda f, p: matches_study(f, p, "csr", 0.10), CODE2VEC_SWEEP),
)  # fmt: skip


@dataclass
class Verdict:
    claim: str
    text: str
    rule: str
    runs: str  # the group: "code2vec jdk-top10 (cpu, measure study)", or the model with no runs
    status: str
    checks: list[tuple[bool, str]]
    figures: dict[str, dict[float, float]]
    study: dict[str, dict[float, float]]
    seeds: dict[float, int]
    missing: str = ""


def _groups(frame: pd.DataFrame) -> list[tuple[tuple, pd.DataFrame]]:
    return [(key, group) for key, group in frame.groupby(["model", "dataset", "profile"], sort=True)]


def check_all(frame: pd.DataFrame, published: pd.DataFrame | None, claims=CLAIMS) -> list[Verdict]:
    """Every claim on every group of runs of a model it is about; a claim whose models have no runs
    at all gets one `not enough runs` verdict saying how to make them."""
    verdicts = []
    groups = _groups(frame) if len(frame) else []
    for claim in claims:
        mine = [(k, g) for k, g in groups if not claim.models or k[0] in claim.models]
        for (model, dataset, profile), group in mine:
            outcome = claim.check(group, published)
            if not claim.models and not any(outcome.figures.values()):
                continue  # a claim about every model, and this one has none of its metrics
            measures = "/".join(sorted(str(m) for m in set(group["measure"])))
            verdicts.append(Verdict(claim.id, claim.text, claim.rule, f"{model} {dataset} ({profile}, measure {measures})",
                                    outcome.status, outcome.checks, outcome.figures, outcome.study,
                                    level_seeds(group), outcome.missing))  # fmt: skip
        if not any(v.claim == claim.id for v in verdicts):
            who = ", ".join(claim.models) or "any model"
            verdicts.append(Verdict(claim.id, claim.text, claim.rule, f"{who}: no kept runs", NOT_ENOUGH, [], {}, {}, {},
                                    f"no kept runs of {who}; make them: {claim.how}"))  # fmt: skip
    return verdicts


# ---------------------------------------------------------------------------------------------
# Reading the kept runs


def default_runs_dirs(plots: Path = Path("plots")) -> list[Path]:
    """plots/runs and every plots/<name>/runs that holds a kept run (a folder with run.json)."""
    candidates = [plots / "runs", *sorted(plots.glob("*/runs"))]
    return [d for d in candidates if d.is_dir() and any(d.glob("*/run.json"))]


def load(runs_dirs: list[Path]) -> tuple[pd.DataFrame, list[Experiment], list[str]]:
    """The kept runs of runs_dirs (report.kept_runs; of one point kept twice, the newest) as a tidy
    frame, and the problems met. Raises NoRunsError when no run can be read."""
    missing = [d for d in runs_dirs if not d.is_dir()]
    if missing:
        raise NoRunsError(f"no such folder: {', '.join(map(str, missing))} (--runs takes a folder of kept runs, "
                          f"as `python -m codemem report` writes them: plots/runs, plots/code2seq/runs)")  # fmt: skip
    if not runs_dirs:
        raise NoRunsError("no kept runs under plots/ (plots/runs/<run>/run.json, plots/code2seq/runs/...): run in "
                          "the project's folder, or make them with `python repro/sweep.py` and `python -m codemem "
                          "report`, or point --runs at a folder of kept runs")  # fmt: skip
    experiments, problems = [], []
    for d in runs_dirs:
        kept, unreadable = kept_runs(d)
        experiments += kept
        problems += unreadable
    if not experiments:
        raise NoRunsError(f"no readable kept run in {', '.join(map(str, runs_dirs))}: each run is a folder with "
                          f"run.json (and epochs.csv, scores.csv) as `python -m codemem report` keeps it"
                          + (f"; {'; '.join(problems)}" if problems else ""))  # fmt: skip
    experiments = merge(experiments, [])
    return tidy(experiments), experiments, problems


def published_values(path: Path = PUBLISHED) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.exists() else None


# ---------------------------------------------------------------------------------------------
# Output


def _cell(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "    -"
    text = f"{value:.3f}"
    return f"{text[1:] if text.startswith('0.') else text:>5}"


def _figure_lines(v: Verdict) -> str:
    """A small grid: one column per noise level, one line per metric (and the study's under it)."""
    levels = sorted({n for values in [*v.figures.values(), *v.study.values()] for n in values})
    if not levels:
        return ""
    width = max(len(m) for m in [*v.figures, "noise"]) + 1
    at = lambda values, n: next((x for k, x in values.items() if math.isclose(k, n)), None)
    lines = ["noise".ljust(width) + " ".join(f"{(f'{n:g}'[1:] if 0 < n < 1 else f'{n:g}'):>5}" for n in levels)]
    for metric, values in v.figures.items():
        lines.append(metric.ljust(width) + " ".join(_cell(at(values, n)) for n in levels))
        if metric in v.study:
            lines.append("  study".ljust(width) + " ".join(_cell(at(v.study[metric], n)) for n in levels))
    return "\n".join(lines)


def _runs_cell(v: Verdict) -> str:
    if not v.seeds:
        return v.runs
    model_data, _, rest = v.runs.partition(" (")
    counts = sorted(set(v.seeds.values()))
    seeds = f"{counts[0]} seed{'s' if counts[0] > 1 else ''} a level" if len(counts) == 1 else \
        "seeds " + "/".join(str(c) for c in v.seeds.values())
    return f"{model_data}\n{rest.rstrip(')')}\n{seeds}"


def render(verdicts: list[Verdict], console) -> None:
    """A rich table (one row per claim and group of runs); below 110 columns, where the figures'
    grid would not fit in a table, the same as one block per row."""
    from rich.markup import escape
    from rich.table import Table

    style = {HOLDS: "bold green", FAILS: "bold red", NOT_ENOUGH: "yellow"}
    rows = []
    for v in verdicts:
        why = "\n".join(("✓ " if ok else "✗ ") + text for ok, text in v.checks) if v.checks else v.missing
        rows.append((v, escape(_figure_lines(v)), escape(why)))
    if console.width >= 110:
        table = Table(title="The study's claims on the kept runs", show_lines=True)
        table.add_column("claim (rule) and runs", ratio=2)
        table.add_column("verdict", ratio=1)
        table.add_column("figures (final epoch, mean over seeds) and why", ratio=4)
        for v, figures, why in rows:
            table.add_row(f"{escape(v.text)}\n[dim]{escape(v.rule)}[/]\n[cyan]{escape(_runs_cell(v))}[/]",
                          f"[{style[v.status]}]{v.status}[/]", (f"{figures}\n" if figures else "") + why)  # fmt: skip
        console.print(table)
    else:
        console.print("[bold]The study's claims on the kept runs[/] (figures: final epoch, mean over seeds)")
        for v, figures, why in rows:
            console.print(f"\n[{style[v.status]}]{v.status}[/]: [bold]{escape(v.text)}[/]\n"
                          f"  [cyan]{escape(_runs_cell(v).replace(chr(10), ', '))}[/]\n  [dim]rule: {escape(v.rule)}[/]")  # fmt: skip
            for line in [*(figures.splitlines() if figures else []), *why.splitlines()]:
                console.print("  " + line, soft_wrap=True)
    counts = {s: sum(v.status == s for v in verdicts) for s in (HOLDS, FAILS, NOT_ENOUGH)}
    console.print(", ".join(f"{n} {s}" for s, n in counts.items()))


def to_json(verdicts: list[Verdict], runs_dirs: list[Path], problems: list[str]) -> dict:
    def plain(v: Verdict) -> dict:
        d = asdict(v)
        d["checks"] = [{"ok": bool(ok), "text": text} for ok, text in v.checks]
        d["figures"] = {m: {f"{n:g}": x for n, x in vals.items()} for m, vals in v.figures.items()}
        d["study"] = {m: {f"{n:g}": x for n, x in vals.items()} for m, vals in v.study.items()}
        d["seeds"] = {f"{n:g}": c for n, c in v.seeds.items()}
        return d

    return {"runs_dirs": [str(d) for d in runs_dirs], "skipped": problems,
            "counts": {s: sum(v.status == s for v in verdicts) for s in (HOLDS, FAILS, NOT_ENOUGH)},
            "verdicts": [plain(v) for v in verdicts]}  # fmt: skip


def run(runs_dirs: list[Path] | None, console, json_path: Path | None = None) -> list[Verdict]:
    """Check every claim on the kept runs in runs_dirs (default: default_runs_dirs()), print the
    table (and write json_path). Raises NoRunsError when no run can be read."""
    dirs = list(runs_dirs) if runs_dirs else default_runs_dirs()
    frame, _, problems = load(dirs)
    from codemem.progress import console as stderr

    for problem in problems:
        stderr.print(f"[yellow]claims: skipped {problem}[/]", soft_wrap=True)
    verdicts = check_all(frame, published_values())
    console.print(f"Kept runs read: {len(frame[frame['final']])} from {', '.join(map(str, dirs))}")
    render(verdicts, console)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(to_json(verdicts, dirs, problems), indent=1) + "\n")
    return verdicts


# ---------------------------------------------------------------------------------------------
# A fresh run against the committed baseline

# Absolute tolerance per metric of metrics/metrics.json. Same params on the same kind of CPU give
# bitwise the same metrics; across CPUs the README measured Intel Xeon against AMD EPYC at test F1
# 0.909203 / 0.914038 (0.0048 apart: 3 of 619 test names' sub-tokens), Gini 0.969394 / 0.969465,
# CSR equal. 0.005 covers that and no more; a GPU (not bitwise) lands within it too.
BASELINE_TOLERANCE = {"test_f1": 0.005, "train_f1": 0.005, "precision": 0.005, "recall": 0.005,
                      "gini": 0.005, "csr": 0.005, "test_score": 0.005, "train_score": 0.005}  # fmt: skip
DEFAULT_TOLERANCE = 0.005  # every other float (detection's AUROC etc., VarMisuse's accuracies)
# What makes two runs the same run: compared exactly, and a mismatch is not a reproduction failure
# but a different experiment (the params were changed).
IDENTITY = ("model", "dataset", "noise", "seed", "epochs", "profile", "measure")


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@dataclass
class Comparison:
    tolerance: float  # the largest tolerance applied (what "reproduced within" states)
    compared: int
    differ: list[tuple[str, object, object, float | None, float]]  # metric, fresh, baseline, |diff|, tolerance
    absent: list[str]  # in the baseline, not in the fresh metrics
    new: list[str]  # in the fresh metrics only
    identity: list[tuple[str, object, object]]  # identity keys that differ: a different experiment

    @property
    def reproduced(self) -> bool:
        return not self.differ and not self.absent and not self.identity


def compare(fresh: dict, baseline: dict, tolerances: dict | None = None, default: float = DEFAULT_TOLERANCE) -> Comparison:
    """Metric by metric (nested dicts flattened as a.b): floats within their absolute tolerance,
    integers and strings exactly. IDENTITY keys that differ mean another experiment."""
    tolerances = BASELINE_TOLERANCE if tolerances is None else tolerances
    f, b = _flatten(fresh), _flatten(baseline)
    differ, identity, used = [], [], []
    for key in sorted(set(f) & set(b)):
        fv, bv = f[key], b[key]
        if key in IDENTITY:
            if fv != bv:
                identity.append((key, fv, bv))
            continue
        numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (fv, bv))
        if numeric and (isinstance(fv, float) or isinstance(bv, float)):
            tol = tolerances.get(key, default)
            used.append(tol)
            if math.isnan(fv) and math.isnan(bv):
                continue
            diff = abs(float(fv) - float(bv))
            if not diff <= tol + 1e-12:
                differ.append((key, fv, bv, diff, tol))
        elif fv != bv:
            differ.append((key, fv, bv, abs(fv - bv) if numeric else None, 0.0))
    return Comparison(max(used, default=default), len((set(f) & set(b)) - set(IDENTITY)), differ,
                      sorted(set(b) - set(f)), sorted(set(f) - set(b)), identity)  # fmt: skip


def committed_metrics(path: str = "metrics/metrics.json", rev: str = "HEAD") -> dict:
    """`git show REV:PATH` as a dict; UserError with how to fix it when git cannot give it."""
    try:
        shown = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise UserError(f"git is not installed, so the committed {path} cannot be read: pass the baseline "
                        f"file with --against FILE") from None  # fmt: skip
    if shown.returncode != 0:
        raise UserError(f"`git show {rev}:{path}` failed ({shown.stderr.strip() or 'no output'}): run in the "
                        f"project's git checkout, or pass the baseline file with --against FILE")  # fmt: skip
    try:
        return json.loads(shown.stdout)
    except ValueError as e:
        raise UserError(f"the committed {path} ({rev}) is not JSON: {e}") from None


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise UserError(f"cannot read {what} {path}: {e.strerror}") from None
    except ValueError as e:
        raise UserError(f"{what} {path} is not JSON ({e}): run the pipeline again (`dvc repro`)") from None


def fresh_metrics(path: Path, explicit: bool, build: Path = Path("build")) -> dict:
    """The fresh run's metrics. Unless the path was given (`explicit`), only if this tree ran the
    pipeline: in a fresh clone metrics/metrics.json is the committed file itself, and comparing it
    with itself would say nothing. The evaluate stage reads build/logs, so without it no run made
    the metrics here."""
    if not path.exists():
        raise UserError(f"no fresh metrics: {path} does not exist; run the pipeline first (`make run`, or "
                        f"`dvc repro`), or give the file with --fresh FILE")  # fmt: skip
    if not explicit and not (build / "logs").exists():
        raise UserError(f"no fresh metrics: {path} is the committed file (no {build / 'logs'}: the pipeline has "
                        f"not run in this folder); run `make run` (or `dvc repro`) first, or give another run's "
                        f"metrics with --fresh FILE")  # fmt: skip
    return _read_json(path, "the fresh metrics")


def describe(c: Comparison) -> list[str]:
    """The lines to print: the verdict first."""
    if c.identity:
        what = ", ".join(f"{k} {fv!r} (baseline {bv!r})" for k, fv, bv in c.identity)
        return [(f"not the baseline's experiment: {what}; restore the committed params (`git checkout -- "
                 f"params.yaml`, then `dvc repro`) to compare")]  # fmt: skip
    if c.reproduced:
        lines = [f"reproduced within {c.tolerance:g} ({c.compared} metrics compared; counts and names exactly)"]
        if c.new:
            lines.append(f"not in the baseline (not compared): {', '.join(c.new)}")
        return lines
    lines = [(f"not reproduced: {len(c.differ) + len(c.absent)} of {c.compared + len(c.absent)} metrics differ "
              f"beyond tolerance")]  # fmt: skip
    for key, fv, bv, diff, tol in c.differ:
        if diff is None:
            by = "(differs)"
        else:
            by = f"by {diff:g}" if isinstance(fv, int) and isinstance(bv, int) else f"by {diff:.6f}"
        lines.append(f"  {key}: fresh {fv} vs baseline {bv}, {by} (tolerance {tol:g})")
    for key in c.absent:
        lines.append(f"  {key}: in the baseline, missing from the fresh metrics")
    return lines


def baseline(fresh_path: Path, explicit: bool, against: Path | None) -> tuple[Comparison, list[str]]:
    fresh = fresh_metrics(fresh_path, explicit)
    base = _read_json(against, "the baseline") if against is not None else committed_metrics()
    comparison = compare(fresh, base)
    return comparison, describe(comparison)
