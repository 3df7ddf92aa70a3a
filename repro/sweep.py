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
import subprocess
import sys
import time
from itertools import product

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


def queued(points: list[dict], extra: list[str], jobs: int) -> list[dict]:
    for point in points:
        done = run(["dvc", "exp", "run", "--queue", "-n", point["name"], *overrides(point, extra)])
        if done.returncode != 0:
            console.print(f"[red]could not queue[/] {point['name']}: {done.stderr.strip()}")
    began = time.perf_counter()
    try:
        start = run(["dvc", "queue", "start", "-j", str(jobs)])
        if start.returncode != 0:
            raise RuntimeError(start.stderr)
        with console.status("running queued experiments (dvc queue status)"):
            while True:
                listing = run(["dvc", "queue", "status"]).stdout
                if not any(word in listing for word in ("Queued", "Running")):
                    break
                time.sleep(5)
    finally:
        run(["dvc", "queue", "stop"])  # idle workers would otherwise stay alive
    listing = run(["dvc", "queue", "status"]).stdout
    results = []
    for point in points:
        line = next((x for x in listing.splitlines() if point["name"] in x), "")
        ok = "Success" in line
        results.append(point | {"ok": ok, "seconds": None, "error": "" if ok else line})
        if not ok:
            console.print(f"[red]FAILED[/] {point['name']}: {line or 'not in the queue listing'} "
                          f"(see `dvc queue logs {point['name']}`)")  # fmt: skip
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
