"""Data-parallel training under `torchrun`: one process per GPU (NCCL) or per CPU share (gloo).

    torchrun --standalone --nproc-per-node 8 -m codemem train     # one machine, 8 GPUs

codemem.train's one loop runs in every process. Every rank builds the same Training (same seed:
the same initial weights, the same batches in the same order); each takes its share `batch[rank::world]`
of every global batch and computes its term of the batch's loss (`Training.shard_loss`: its samples'
losses over the *global* batch's denominator). torch's DistributedDataParallel runs the backward and
sums the gradients across ranks (a communication hook that sums where DDP would average), so the
optimizer step equals the one-process step on the whole batch. The global batch (`train.batch_size`,
VarMisuse's token budget) is the same as with one process.

Outside torchrun (no WORLD_SIZE in the environment, or WORLD_SIZE=1) nothing here does anything:
`Group.world == 1`, every helper returns its input, and one-process training is unchanged.
"""

from __future__ import annotations

import datetime
import os
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Group:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


SINGLE = Group()


def env_world() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init(device: torch.device) -> Group:
    """Join torchrun's process group (from RANK, WORLD_SIZE, MASTER_ADDR/PORT) if there is one:
    NCCL when training on CUDA, gloo on CPU. A long timeout: ranks wait at collectives while rank 0
    writes checkpoints."""
    if env_world() <= 1:
        return SINGLE
    group = Group(int(os.environ["RANK"]), env_world(), int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(hours=2))
    return group


def local_device_name() -> str:
    """`train.device: auto` under torchrun: this process's GPU (cuda:LOCAL_RANK), else the CPU."""
    if not torch.cuda.is_available():
        return "cpu"
    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0')) % torch.cuda.device_count()}"


def shard(batch, group: Group):
    """This rank's share of a global batch (a tensor or array of sample positions)."""
    return batch[group.rank :: group.world] if group.active else batch


def batch_share(n: int, batch_size: int, group: Group) -> np.ndarray:
    """The positions of every world-th batch of `batch_size` among n (batch i on rank i % world),
    in order: whole batches, for a measurement whose results depend on how samples are batched."""
    starts = range(group.rank * batch_size, n, group.world * batch_size)
    return np.concatenate([np.arange(s, min(s + batch_size, n)) for s in starts] or [np.zeros(0, dtype=np.int64)])


def _sum_gradients(_state, bucket):  # no annotations: DDP checks them, and they are strings here
    """DDP's communication hook, summing: each rank's loss is already its share of the global batch's."""
    return dist.all_reduce(bucket.buffer(), async_op=True).get_future().then(lambda done: done.value()[0])


def data_parallel(model: torch.nn.Module, group: Group) -> torch.nn.parallel.DistributedDataParallel | None:
    """`model` under torch's DistributedDataParallel (None with one process): rank 0's weights and
    buffers on every rank at once, then each backward's gradients summed over the ranks. A parameter a
    rank did not reach counts as zero there (`find_unused_parameters`); one that no rank reached keeps
    no gradient, so the optimizer skips it, as it does with one process."""
    if not group.active:
        return None
    ddp = torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[model_device(model)] if model_device(model).type == "cuda" else None,
        find_unused_parameters=True, forward_sync_buffers=False)  # fmt: skip
    ddp.register_comm_hook(None, _sum_gradients)
    return ddp


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@contextmanager
def forward_through(training, ddp: torch.nn.parallel.DistributedDataParallel):
    """The tasks' losses call `training.model(...)`; for one step that is the DDP wrapper, whose
    backward then sums the gradients across ranks. Measurements and checkpoints keep the plain model."""
    plain, training.model = training.model, ddp
    try:
        yield
    finally:
        training.model = plain


def sum_scalar(value: float, group: Group, device: torch.device) -> float:
    if not group.active:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item())


def all_gather_objects(obj, group: Group) -> list:
    """Every rank's `obj`, in rank order (pickled; for small per-sample arrays)."""
    if not group.active:
        return [obj]
    out = [None] * group.world
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj, group: Group):
    """Rank 0's `obj` on every rank."""
    if not group.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def interleave(pieces: list[np.ndarray]) -> np.ndarray:
    """Per-sample values of a batch from its shards `batch[r::world]`, back in the batch's order."""
    out = np.empty(sum(len(p) for p in pieces), dtype=pieces[0].dtype if pieces else np.float32)
    for r, piece in enumerate(pieces):
        out[r :: len(pieces)] = piece
    return out


def barrier(group: Group) -> None:
    if group.active:
        dist.barrier()


def finish(group: Group) -> None:
    if group.active and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
