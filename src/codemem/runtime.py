"""Process-wide numeric settings, made once at process start, before torch does any work.

Denormal floats. As a model grows confident its softmax probabilities vanish, and their gradients
and Adam's moment estimates drift into the denormal range (below 1.2e-38 in float32). Some CPUs
take a microcode assist for every arithmetic operation on a denormal: on a 2-core Xeon one
code2vec step from an epoch-13 checkpoint took 1,312 ms against 205 ms from a fresh model, so a
30-epoch run took five times as long as its first epochs promised. Flushing denormals to zero
(the x86 MXCSR bits FTZ and DAZ) changes no result that matters here: values below 1e-38 are
far under float32's resolution of any loss or weight they are added to.

The bits are per thread, and a new thread starts with its creator's. torch's intra-op worker
threads are created at the first parallel op and then live for the whole process, so the flag must
be set before that op: set later, it covers only the calling thread (measured: 1,277 ms, no better).
Every entry point that trains or measures calls `flush_denormals()` first: the `python -m codemem`
commands (and so `dvc repro` and the sweep's queued `dvc exp run`s), and `repro/bench.py`.
"""

from __future__ import annotations

# The smallest float32 denormals, written as integer bit patterns: converting a float literal to
# float32 would itself be flushed to zero by a thread that already has FTZ set.
_DENORMAL_BITS = 1 << 20  # ~1.5e-39
_PROBE_SIZE = 1 << 22  # large enough that torch splits the op across all its intra-op threads


def flush_denormals() -> bool:
    """Flush denormal floats to zero in this thread and every torch thread created after it.

    Returns False where the CPU has no such mode (torch then leaves arithmetic as it is).
    """
    import torch

    return torch.set_flush_denormal(True)


def denormal_outputs(threads: int | None = None) -> int:
    """How many outputs of a multi-threaded op on denormal input stay denormal (0: all flushed).

    The op (an elementwise multiply of 4M floats) is split across torch's intra-op threads, so a
    worker thread that does not flush leaves its share of the outputs non-zero. Outputs are counted
    by their bit patterns, since comparing a float with 0 would itself treat a denormal as 0.
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
    denormal = torch.full((_PROBE_SIZE,), _DENORMAL_BITS, dtype=torch.int32).view(torch.float32)
    product = denormal * 2.0
    return int((product.view(torch.int32) != 0).sum())


# glibc's M_MMAP_THRESHOLD (malloc.h). Setting it also switches off glibc's dynamic threshold.
_M_MMAP_THRESHOLD = -3


def bound_heap_growth(threshold: int = 1 << 20) -> bool:
    """Serve allocations of `threshold` bytes and more from their own mappings (glibc only).

    By default glibc raises its mmap threshold (up to 32 MiB) each time a mapped block is freed, so
    torch's per-batch tensors end up on the heap. A fixed threshold looked like a cure for code2vec's
    heap growth (one measurement pass: 753 instead of 1,357 MiB) but on a whole epoch it was not:
    4.57 GB peak RSS and unfinished after 10.8 min, against 1.88 GB and 4.3 min (docs/benchmarks.md), so the
    stages do not call this; `repro/bench.py --heap-threshold` does, to measure it. Returns False
    where the C library is not glibc (then nothing changes).
    """
    libc = _glibc()
    return bool(libc and libc.mallopt(_M_MMAP_THRESHOLD, threshold))


def large_blocks_mapped(size: int = 2 << 20) -> bool | None:
    """Is a block of `size` bytes, allocated after one was freed, served from its own mapping?

    What `bound_heap_growth` ensures: with glibc's dynamic threshold the first free raises the
    threshold past `size` and the second block comes from the heap. None where this is not glibc
    >= 2.33 (no mallinfo2 to ask)."""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                    "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]  # fmt: skip

    libc = _glibc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    mapped = []
    for _ in range(2):
        before = libc.mallinfo2().hblkhd
        block = libc.malloc(size)
        mapped.append(libc.mallinfo2().hblkhd - before >= size)
        libc.free(block)
    return mapped[1]


def _glibc():
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") else None
    except OSError:
        return None
