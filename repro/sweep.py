"""The study's noise sweep as DVC experiments.

    python repro/sweep.py                                   # model and dataset from params.yaml
    python repro/sweep.py --model code2vec --model code2seq # several models on the same data
    python repro/sweep.py --noise 0 --noise 1 --seed 0 --seed 1 --jobs 2
    python repro/sweep.py --set train.epochs=50             # any other -S override for every run

Each grid point is one `dvc exp run -S noise=.. -S model=.. [-S seed=..]`, named
`<model>-<dataset>-n<noise>[-s<seed>]`. By default experiments run one after another in the
foreground; `--jobs N` queues them and runs N DVC queue workers, which are stopped at the end (DVC
leaves them idle otherwise). A failed experiment is reported and the sweep goes on; the exit code
is non-zero when any failed. Afterwards `python -m codemem report` draws the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from itertools import product
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

STUDY_NOISE = (0.0, 0.25, 0.5, 0.75, 1.0)
console = Console(stderr=True)


def experiment_name(model: str, dataset: str, noise: float, seed: int | None) -> str:
    name = f"{model}-{dataset}-n{round(noise * 100):03d}"
    return name if seed is None else f"{name}-s{seed}"


def grid(models, datasets, noises, seeds) -> list[dict]:
    return [
        {"model": m, "dataset": d, "noise": n, "seed": s, "name": experiment_name(m, d, n, s)}
        for m, d, n, s in product(models, datasets, noises, seeds or [None])
    ]


def overrides(point: dict, extra: list[str]) -> list[str]:
    args = ["-S", f"model={point['model']}", "-S", f"dataset={point['dataset']}", "-S", f"noise={point['noise']}"]
    if point["seed"] is not None:
        args += ["-S", f"seed={point['seed']}"]
    for item in extra:
        args += ["-S", item]
    return args


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def current_params() -> dict:
    from codemem.params import load

    p = load()
    return {"model": p.model, "dataset": p.dataset}


def sequential(points: list[dict], extra: list[str]) -> list[dict]:
    results = []
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("sweep", total=len(points))
        for point in points:
            progress.update(task, description=f"sweep: {point['name']}")
            began = time.perf_counter()
            done = run(["dvc", "exp", "run", "--force", "-n", point["name"], *overrides(point, extra)])
            ok = done.returncode == 0
            results.append(point | {"ok": ok, "seconds": round(time.perf_counter() - began, 1),
                                    "error": "" if ok else (done.stderr or done.stdout).strip()[-2000:]})  # fmt: skip
            console.print(f"{'[green]done' if ok else '[red]FAILED'}[/] {point['name']} ({results[-1]['seconds']} s)")
            if not ok:
                console.print(results[-1]["error"])
            progress.advance(task)
    return results


def queue_tasks() -> dict[str, tuple[str, str]]:
    """`dvc queue status` as {task rev: (experiment name, status)}."""
    tasks = {}
    for line in run(["dvc", "queue", "status"]).stdout.splitlines():
        cells = line.split()
        if len(cells) >= 4 and cells[-1] in ("Queued", "Running", "Success", "Failed"):
            tasks[cells[0]] = (cells[1], cells[-1])
    return tasks


def live_workers(root: Path = Path(".")) -> list[int]:
    """Process ids of this repository's DVC queue workers that are still alive (from their pid files:
    `dvc queue status` can miss busy workers, its celery query times out under load)."""
    alive = []
    for pid_file in (root / ".dvc/tmp/exps/celery").glob("dvc-exp-worker-*.pid"):
        try:
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            continue
        except PermissionError:  # alive, under another user
            pass
        alive.append(pid)
    return alive


def stop_workers(timeout: float = 120) -> None:
    """Ask DVC's queue workers to stop and wait until none is left (idle workers would stay alive)."""
    run(["dvc", "queue", "stop"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not live_workers():
            return
        time.sleep(1)
    console.print(f"[yellow]DVC queue workers {live_workers()} still alive; `dvc queue stop --kill` ends them")


def queued(points: list[dict], extra: list[str], jobs: int) -> list[dict]:
    before = set(queue_tasks())  # tasks of earlier sweeps stay listed; ours are the new ones
    for point in points:
        done = run(["dvc", "exp", "run", "--queue", "-n", point["name"], *overrides(point, extra)])
        if done.returncode != 0:
            console.print(f"[red]could not queue[/] {point['name']}: {(done.stderr or done.stdout).strip()}")
    ours = {name: rev for rev, (name, _) in queue_tasks().items() if rev not in before}
    began = time.perf_counter()
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        start = run(["dvc", "queue", "start", "-j", str(jobs)])
        if start.returncode != 0:
            raise RuntimeError(f"dvc queue start failed: {start.stderr.strip()}")
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(f"sweep: {jobs} DVC queue workers", total=len(ours))
            while True:
                status = {rev: state for rev, (_, state) in queue_tasks().items() if rev in ours.values()}
                progress.update(task, completed=sum(s in ("Success", "Failed") for s in status.values()))
                if not any(s in ("Queued", "Running") for s in status.values()):
                    break
                time.sleep(5)
    finally:
        stop_workers()
    status = {rev: state for rev, (_, state) in queue_tasks().items()}
    results = []
    for point in points:
        state = status.get(ours.get(point["name"], ""), "not queued")
        ok = state == "Success"
        results.append(point | {"ok": ok, "seconds": None, "error": "" if ok else state})
        console.print(f"[green]done[/] {point['name']}" if ok else
                      f"[red]FAILED[/] {point['name']}: {state} (see `dvc queue logs {point['name']}`)")  # fmt: skip
    console.print(f"queue finished in {time.perf_counter() - began:.0f} s")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="model(s) to sweep (default: params.yaml's)")
    parser.add_argument("--dataset", action="append", help="dataset(s) (default: params.yaml's)")
    parser.add_argument("--noise", action="append", type=float, help=f"noise levels (default: {STUDY_NOISE})")
    parser.add_argument("--seed", action="append", type=int, help="seeds; each is its own experiment")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra -S override")
    parser.add_argument("--jobs", type=int, default=0, help="run through DVC's queue with N workers (0: sequential)")
    parser.add_argument("--dry-run", action="store_true", help="list the experiments and exit")
    args = parser.parse_args(argv)
    if shutil.which("dvc") is None:
        console.print("[red]error:[/] `dvc` is not on PATH: activate the environment first (`. .venv/bin/activate`)")
        return 2
    defaults = current_params()
    points = grid(args.model or [defaults["model"]], args.dataset or [defaults["dataset"]],
                  args.noise or list(STUDY_NOISE), args.seed)  # fmt: skip
    if args.dry_run:
        for point in points:
            print(point["name"], " ".join(overrides(point, args.set)))
        return 0
    results = queued(points, args.set, args.jobs) if args.jobs else sequential(points, args.set)
    failed = [r["name"] for r in results if not r["ok"]]
    console.print(f"{len(results) - len(failed)} of {len(results)} experiments succeeded"
                  + (f"; failed: {', '.join(failed)}" if failed else ""))  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
