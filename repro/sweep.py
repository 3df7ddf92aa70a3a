"""The study's noise sweep as DVC experiments.

    python repro/sweep.py                                   # model and dataset from params.yaml
    python repro/sweep.py --model code2vec --model code2seq # several models on the same data
    python repro/sweep.py --noise 0 --noise 1 --seed 0 --seed 1 --jobs 2
    python repro/sweep.py --set train.epochs=50             # any other -S override for every run
    python repro/sweep.py --gpus 0,1,2,3                    # one DVC queue worker per GPU
    python repro/sweep.py --shard 1/2 --push origin         # machine 1 of 2: its half, then push it

Many GPUs: `--gpus 0,1,...` queues the experiments and starts one DVC queue worker per listed GPU,
each seeing only its GPU (CUDA_VISIBLE_DEVICES), so N experiments train at once, one per GPU.
Many machines: every machine clones the same commit, runs `--shard i/n` (the i-th of n interleaved
shares of the grid, i = 1..n) and `--push <git remote>` (`dvc exp push`: the experiments' git refs
to the shared git remote, their cached outputs to the default DVC remote); on any machine
`dvc exp pull <git remote>` then `python -m codemem report` draws them together.

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


def queued(points: list[dict], extra: list[str], jobs: int, gpus: list[str] | None = None) -> list[dict]:
    before = set(queue_tasks())  # tasks of earlier sweeps stay listed; ours are the new ones
    for point in points:
        done = run(["dvc", "exp", "run", "--queue", "-n", point["name"], *overrides(point, extra)])
        if done.returncode != 0:
            console.print(f"[red]could not queue[/] {point['name']}: {(done.stderr or done.stdout).strip()}")
    ours = {name: rev for rev, (name, _) in queue_tasks().items() if rev not in before}
    began = time.perf_counter()
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        if gpus:
            start_gpu_workers(gpus)
        else:
            start = run(["dvc", "queue", "start", "-j", str(jobs)])
            if start.returncode != 0:
                raise RuntimeError(f"dvc queue start failed: {start.stderr.strip()}")
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(f"sweep: {jobs} DVC queue workers" + (f" on GPUs {','.join(gpus)}" if gpus else ""),
                                     total=len(ours))  # fmt: skip
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


def parse_shard(text: str) -> tuple[int, int]:
    """`i/n` (1 <= i <= n) -> (i, n)."""
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard takes i/n, e.g. 1/4, not {text!r}") from None
    if not 1 <= i <= n:
        raise argparse.ArgumentTypeError(f"--shard {text}: i must be 1..n")
    return i, n


def shard(points: list[dict], i: int, n: int) -> list[dict]:
    """The i-th of n interleaved shares (i = 1..n): every grid point in exactly one share, and each
    share a mix of models and noise levels, so shares take about as long."""
    return points[i - 1 :: n]


def start_gpu_workers(gpus: list[str]) -> None:
    """One DVC queue worker per GPU, each with CUDA_VISIBLE_DEVICES=<its GPU>: DVC's own worker
    processes (names and node names as `dvc queue start -j N` gives them, so `dvc queue status`/`stop`
    and `live_workers` see them), started one by one so each gets its own environment."""
    import hashlib

    from dvc.repo import Repo
    from dvc_task.proc.process import ManagedProcess

    wdir = Repo(".").experiments.celery_queue.wdir
    wdir_hash = hashlib.sha256(wdir.encode("utf-8")).hexdigest()[:6]
    for num, gpu in enumerate(gpus, start=1):
        cmd = ["dvc", "exp", "queue-worker", f"dvc-exp-{wdir_hash}-{num}@localhost"] + (["--clean"] if num == 1 else [])
        ManagedProcess.spawn(cmd, wdir=wdir, name=f"dvc-exp-worker-{num}", env=os.environ | {"CUDA_VISIBLE_DEVICES": gpu})
        console.print(f"DVC queue worker {num} on GPU {gpu}")


def push(results: list[dict], remote: str) -> bool:
    """`dvc exp push` the successful experiments: git refs to `remote`, outputs to the DVC remote."""
    names = [r["name"] for r in results if r["ok"]]
    if not names:
        return True
    done = run(["dvc", "exp", "push", "--force", remote, *names])
    if done.returncode != 0:
        console.print(f"[red]dvc exp push failed[/]: {(done.stderr or done.stdout).strip()[-2000:]}")
        return False
    console.print(f"pushed {len(names)} experiments to {remote}")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="model(s) to sweep (default: params.yaml's)")
    parser.add_argument("--dataset", action="append", help="dataset(s) (default: params.yaml's)")
    parser.add_argument("--noise", action="append", type=float, help=f"noise levels (default: {STUDY_NOISE})")
    parser.add_argument("--seed", action="append", type=int, help="seeds; each is its own experiment")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra -S override")
    parser.add_argument("--jobs", type=int, default=0, help="run through DVC's queue with N workers (0: sequential)")
    parser.add_argument("--gpus", help="comma-separated GPU ids: one DVC queue worker per GPU (e.g. 0,1,2,3)")
    parser.add_argument("--shard", type=parse_shard, metavar="I/N", help="run only the I-th of N shares of the grid")
    parser.add_argument("--push", metavar="GIT_REMOTE", help="afterwards `dvc exp push` the experiments there")
    parser.add_argument("--dry-run", action="store_true", help="list the experiments and exit")
    args = parser.parse_args(argv)
    if shutil.which("dvc") is None:
        console.print("[red]error:[/] `dvc` is not on PATH: activate the environment first (`. .venv/bin/activate`)")
        return 2
    defaults = current_params()
    points = grid(args.model or [defaults["model"]], args.dataset or [defaults["dataset"]],
                  args.noise or list(STUDY_NOISE), args.seed)  # fmt: skip
    if args.shard:
        points = shard(points, *args.shard)
    if args.dry_run:
        for point in points:
            print(point["name"], " ".join(overrides(point, args.set)))
        return 0
    gpus = [g.strip() for g in args.gpus.split(",") if g.strip()] if args.gpus else []
    if gpus:
        results = queued(points, args.set, len(gpus), gpus=gpus)
    else:
        results = queued(points, args.set, args.jobs) if args.jobs else sequential(points, args.set)
    failed = [r["name"] for r in results if not r["ok"]]
    console.print(f"{len(results) - len(failed)} of {len(results)} experiments succeeded"
                  + (f"; failed: {', '.join(failed)}" if failed else ""))  # fmt: skip
    pushed = push(results, args.push) if args.push else True
    return 1 if failed or not pushed else 0


if __name__ == "__main__":
    sys.exit(main())
