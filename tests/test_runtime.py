"""Denormals are flushed in every torch thread of a stage's process; glibc's mmap threshold can be
fixed for the memory benchmark (codemem.runtime).

Each check runs in a fresh Python process, since whether a worker thread flushes depends on when
the process set the flag relative to torch starting its threads.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE_SIZE = 1 << 22  # runtime.denormal_outputs() multiplies this many denormals


def python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def cpu_can_flush() -> None:
    if python("import torch; print(torch.set_flush_denormal(True))").strip() != "True":
        pytest.skip("this CPU has no flush-to-zero mode")


def test_a_stage_process_flushes_denormals_in_every_worker_thread(cpu_can_flush, tmp_path):
    # `codemem check` starts as every stage does (the app's callback), then uses 4 torch threads
    # (train.threads) for a multiply of 4M denormals split across them: every output must be zero.
    # (The console, and so the JSON it prints, is standard error.)
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  threads: 4\n")
    out = subprocess.run([sys.executable, "-m", "codemem", "check", "--params", str(params)],
                         capture_output=True, text=True, check=True).stderr  # fmt: skip
    process = json.loads(out)["process"]
    assert process == {"torch_threads": 4, "denormal_outputs": 0}


def test_the_probe_sees_worker_threads_that_do_not_flush(cpu_can_flush):
    # The same probe without the flag, and with the flag set only after torch's threads exist:
    # the first leaves every output denormal, the second the three worker threads' share.
    unflushed = python("from codemem import runtime; print(runtime.denormal_outputs(threads=4))")
    assert int(unflushed) == PROBE_SIZE
    late = python(
        "import torch\n"
        "torch.set_num_threads(4)\n"
        "torch.ones(1 << 22).mul_(2.0)  # the first parallel op starts the worker threads\n"
        "from codemem import runtime\n"
        "runtime.flush_denormals()\n"
        "print(runtime.denormal_outputs())\n"
    )
    assert int(late) == PROBE_SIZE * 3 // 4



def test_a_fixed_mmap_threshold_keeps_large_blocks_off_the_heap():
    # glibc's default: freeing a mapped 2 MiB block raises its threshold past it, so the next one
    # comes from the heap. With a fixed 1 MiB threshold (`repro/bench.py --heap-threshold`) every
    # 2 MiB block is mapped (and returned on free); 512 KiB stays on the heap.
    probe = "from codemem import runtime as r; print(r.large_blocks_mapped())"
    if python(probe).strip() == "None":
        pytest.skip("not glibc >= 2.33")
    bounded = "from codemem import runtime as r; print(r.bound_heap_growth(), r.large_blocks_mapped(), "
    assert python(bounded + "r.large_blocks_mapped(512 << 10))").split() == ["True", "True", "False"]
