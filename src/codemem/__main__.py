"""`python -m codemem <stage>`: one command per pipeline stage (dvc.yaml runs these).

Each stage reads params.yaml from the current folder, writes its outputs atomically and prints a
one-line summary. Errors in the user's input (params, sources) print what is wrong and how to fix
it, and exit with status 2 (codemem.errors.UserError; a full disk is one too); a run stopped by
SIGTERM / SIGINT exits with 128 + the signal's number after saving what it could and saying how to
resume. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import atexit
import json
import os
from pathlib import Path

import typer

from codemem.progress import console

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help=(
        "codemem: memorization vs generalization in neural models of code (Rabin et al., IST 2022).\n\n"
        "Pipeline stages, in order (run them all with `dvc repro`): fetch -> extract -> corrupt -> train -> evaluate. "
        "Every stage reads params.yaml in the current folder."
    ),
)


FILE_STAGES = {"fetch", "extract", "corrupt", "claims"}  # no floating point worth flushing: they never import torch


@app.callback()
def _process_setup(ctx: typer.Context) -> None:
    # Runs before every command, before torch has started any thread: see codemem.runtime.
    if ctx.invoked_subcommand in FILE_STAGES:
        return
    from codemem import runtime

    runtime.flush_denormals()


PARAMS = typer.Option(Path("params.yaml"), "--params", "-p", help="The params file to read.")
PLOTS = typer.Option(Path("plots"), help="Where to write the figures and report.md.")


def _stop_on_signals() -> None:
    """SIGTERM / SIGINT end a stage with one line and 128 + the signal's number. What a stage has
    finished survives (downloads' `.part` files, extraction's finished splits and resume points, the
    last checkpoint): the line says to run it again. `train` puts its own handler in place while it
    trains (finish the step, save it, then stop).

    Forked worker processes get the default action back at once: a Python handler runs only between
    bytecodes, so a worker blocked in C (a lock held at fork time) would ignore `Pool.terminate()`'s
    SIGTERM and hang the stage."""
    import signal

    from codemem.errors import Interrupted

    def stop(signum, _frame):
        raise Interrupted(f"stopped by {signal.Signals(signum).name}; what was finished is kept, so running "
                          f"the stage again (`dvc repro`, or the same `dvc exp run`) goes on from there", signum)

    def default_in_child():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)

    os.register_at_fork(after_in_child=default_in_child)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)


def _record_imports(name: str, log: Path) -> None:
    """Append this stage's codemem files (as `src/codemem/...`) to `log`, one JSON line a stage."""
    import sys

    package = Path(__file__).resolve().parent
    files = sorted({f"src/codemem/{Path(m.__file__).resolve().relative_to(package).as_posix()}"
                    for m in list(sys.modules.values())
                    if getattr(m, "__file__", None) and Path(m.__file__).resolve().is_relative_to(package)})
    with open(log, "a") as f:
        f.write(json.dumps({"stage": name, "files": files}) + "\n")


def stage(fn):
    """Load params, run the stage, print a user error as one line with exit code 2."""

    def wrapper(params: Path = PARAMS):
        import errno

        from codemem import storage
        from codemem.errors import UserError
        from codemem.params import load

        _stop_on_signals()
        if os.environ.get("CODEMEM_RECORD_IMPORTS"):  # the deps test: what code each stage really ran
            atexit.register(_record_imports, fn.__name__, Path(os.environ["CODEMEM_RECORD_IMPORTS"]))
        try:
            try:
                result = fn(load(params))
            except OSError as e:  # a full disk where no writer said what it was writing
                if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                with storage.writing(Path(e.filename or "build"), "a stage output"):
                    raise
        except UserError as e:
            console.print(f"[bold red]error[/] ({fn.__name__}): {e}", soft_wrap=True)  # one line, however long
            raise typer.Exit(getattr(e, "exit_code", 2)) from None
        if result is not None:
            console.print_json(json.dumps(result, default=str))

    # Not functools.wraps: typer would then read the inner signature instead of --params.
    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


@app.command()
@stage
def fetch(p):
    """Put the raw corpus of `dataset` into build/raw (corpus.zip + manifest.json)."""
    from codemem import fetch as stage_module

    return stage_module.run(p)


@app.command()
@stage
def extract(p):
    """Parse the corpus into samples: path-contexts (MethodName) or GREAT JSON lines (VarMisuse)."""
    from codemem import extract as stage_module

    return stage_module.run(p)


@app.command()
@stage
def corrupt(p):
    """Inject the study's label noise (share `noise`) into the training split; write the flips."""
    from codemem import corrupt as stage_module

    return stage_module.run(p)


@app.command()
@stage
def train(p):
    """Train `model`, measuring it after every epoch (VarMisuse: step) into plots/epochs.csv."""
    from codemem import train as stage_module

    history = stage_module.run(p)
    return history[-1] if history else None


@app.command()
@stage
def evaluate(p):
    """Write metrics/metrics.json, plots/scores.csv and the run's PNG figures."""
    from codemem import evaluate as stage_module

    return stage_module.run(p)


@app.command()
def report(
    plots: Path = PLOTS,
    keep: bool = typer.Option(True, help="Keep each finished experiment's params, metrics and CSVs in "
                              "PLOTS/runs/ (commit it): the report survives `dvc exp gc`, a fresh clone or "
                              "a sweep split over machines."),
):
    """Draw the study's figures and table from the DVC experiments run so far (dvc exp show) and the
    runs kept in plots/runs/ by earlier reports; of several runs of one model, dataset, profile,
    noise and seed, the newest."""
    from codemem import report as report_module
    from codemem.errors import UserError

    try:
        result = report_module.run(plots, keep=keep)
    except UserError as e:
        console.print(f"[bold red]error[/] (report): {e}", soft_wrap=True)
        raise typer.Exit(2) from None
    console.print_json(json.dumps(result))


CLAIMS_HELP = (
    "Check the study's claims (the README's claims table) on the kept runs, or (--baseline) a fresh run's "
    "metrics against the committed ones.\n\n"
    "Reads the runs `python -m codemem report` keeps (plots/runs/, plots/code2seq/runs/, plots/varmisuse/runs/, "
    "or --runs) and prints, for each claim and each model, dataset and profile with runs: holds / does not hold / "
    "not enough runs, with the final-epoch figures behind it (mean over seeds per noise level, the study's published "
    "value under ours). Exit 0 unless no kept run can be read (2).\n\n"
    "--baseline: compare metrics/metrics.json (a fresh `make run`) with the committed one (git show "
    "HEAD:metrics/metrics.json, or --against FILE), floats within 0.005 absolute, counts exactly: prints "
    "'reproduced within 0.005' (exit 0) or the metrics that differ and by how much (exit 1); exit 2 when there are "
    "no fresh metrics or they are of another experiment (params changed)."
)


CLAIMS_RUNS = typer.Option(None, "--runs", help="A folder of kept runs (repeatable); default: plots/runs and every "
                           "plots/*/runs holding one.")
CLAIMS_JSON = typer.Option(None, "--json", help="Also write the verdicts, checks and figures here as JSON.")
CLAIMS_FRESH = typer.Option(None, "--fresh", help="--baseline: the fresh metrics (default metrics/metrics.json, "
                            "which counts only if the pipeline ran here: build/logs).")
CLAIMS_AGAINST = typer.Option(None, "--against", help="--baseline: the baseline metrics file (default: git show "
                              "HEAD:metrics/metrics.json).")


@app.command(help=CLAIMS_HELP)
def claims(
    runs: list[Path] = CLAIMS_RUNS,
    json_path: Path = CLAIMS_JSON,
    baseline: bool = typer.Option(False, "--baseline", help="Compare a fresh run's metrics with the committed "
                                  "baseline instead of checking the claims."),
    fresh: Path = CLAIMS_FRESH,
    against: Path = CLAIMS_AGAINST,
):
    import sys

    from rich.console import Console

    from codemem import claims as claims_module
    from codemem.errors import UserError

    # Into a file or a pipe rich would assume 80 columns: the table reads better wider there.
    out = Console(width=None if os.environ.get("COLUMNS") or sys.stdout.isatty() else 140)
    try:
        if baseline:
            comparison, lines = claims_module.baseline(fresh or Path("metrics/metrics.json"), fresh is not None, against)
            for line in lines:
                out.print(line, markup=False, highlight=False, soft_wrap=True)
            if comparison.identity:
                raise typer.Exit(2)
            raise typer.Exit(0 if comparison.reproduced else 1)
        claims_module.run(runs or None, out, json_path)
    except UserError as e:
        console.print(f"[bold red]error[/] (claims): {e}", soft_wrap=True)
        raise typer.Exit(2) from None


CROSSVAL_HELP = (
    "Baseline for mislabel detection: cleanlab's confident learning on K-fold out-of-sample probabilities. "
    "MethodName only (code2vec, code2seq); VarMisuse is not covered.\n\n"
    "Splits the kept training samples into K folds (stratified by noisy label, seeded from `seed`), trains "
    "`model` K times for `epochs` on the other K-1 folds with the train stage's code and settings, and predicts "
    "each held-out fold's probabilities over the training set's names (code2seq: each name's teacher-forced "
    "sequence likelihood, normalised over the names). cleanlab's find_label_issues and label quality scores are "
    "then rated against the labels the corrupt stage flipped (AUROC, AUPRC, precision at k, precision of the "
    "flagged issues), as `evaluate` rates the training-dynamics signals.\n\n"
    "Cost: K trainings on (K-1)/K of the data each, about K-1 times one run's training time (4x at K = 5; "
    "less the run's per-epoch measurements, which crossval skips). Needs fetch, extract and corrupt "
    "(`dvc repro corrupt`); not a DVC stage. Writes plots/detection_cleanlab.json and "
    "build/crossval/out_of_sample.npz, and prints the JSON."
)


@app.command(help=CROSSVAL_HELP)
def crossval(
    folds: int = typer.Option(5, "--folds", "-k", min=2, help="K: the number of folds, and of models trained."),
    params: Path = PARAMS,
):
    """K-fold out-of-sample probabilities -> cleanlab's label issues, rated against the flipped labels."""
    from codemem import crossval as crossval_module
    from codemem.errors import UserError
    from codemem.params import load

    _stop_on_signals()
    try:
        result = crossval_module.run(load(params), folds=folds)
    except UserError as e:
        console.print(f"[bold red]error[/] (crossval): {e}", soft_wrap=True)
        raise typer.Exit(getattr(e, "exit_code", 2)) from None
    console.print_json(json.dumps(result))


@app.command()
def check(params: Path = PARAMS):
    """Validate params.yaml and print the resolved settings, torch's threads and whether they flush denormals."""
    from dataclasses import asdict

    from codemem import runtime
    from codemem.params import ParamsError, load

    try:
        p = load(params)
    except ParamsError as e:
        console.print(f"[bold red]error[/]: {e}")
        raise typer.Exit(2) from None
    import torch

    if p.train.threads > 0:
        torch.set_num_threads(p.train.threads)
    # What a stage started the same way would compute with: its threads, and whether they all flush
    # denormals (0 = every thread does; see codemem.runtime).
    process = {"torch_threads": torch.get_num_threads(), "denormal_outputs": runtime.denormal_outputs()}
    console.print_json(json.dumps(asdict(p) | {"task": p.task, "model_config": asdict(p.model_config()),
                                               "process": process}))


if __name__ == "__main__":
    app()
