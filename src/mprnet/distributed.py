"""Processes started by `torchrun`: which one this is, how many there are, and the little they tell each other.

Training uses the group for gradients (NCCL on GPUs); `mprnet restore` uses it only to share the plan, count what
was done and agree on the end (gloo, on the CPU, whatever restores the images). One process without torchrun is
the group of one: every method then works locally and costs nothing.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


class Distributed:
    """Rank and world size from torchrun's environment; a single process otherwise."""

    def __init__(self, backend: str = "gloo"):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(self.world)))
        self._counters: dict[str, int] = {}
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group(backend)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: Sequence[int]) -> list[int]:
        """Each value summed over all processes (a collective: every process must call it)."""
        if self.world == 1:
            return list(values)
        tensor = torch.tensor(list(values), dtype=torch.int64)
        dist.all_reduce(tensor)
        return [int(value) for value in tensor.tolist()]

    def from_main(self, make: Callable[[], T]) -> T:
        """What `make()` returns on rank 0, given to every process (a collective); `make` runs on rank 0 only."""
        if self.world == 1:
            return make()
        box: list[Any] = [make() if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def add(self, counter: str, amount: int) -> int:
        """Add to a counter that all processes share, without waiting for the others; the new total."""
        if self.world == 1:
            self._counters[counter] = self._counters.get(counter, 0) + amount
            return self._counters[counter]
        # The group's own key-value store: the one channel that needs no collective call.
        return dist.distributed_c10d._get_default_store().add(counter, amount)

    def own_device(self, name: str) -> str:
        """The device this process restores or trains on: with several processes, `auto` and `cuda` mean the GPU
        of its local rank (a device given with its number is kept)."""
        if self.world == 1 or name not in ("auto", "cuda") or not torch.cuda.is_available():
            return name
        return f"cuda:{self.local_rank % torch.cuda.device_count()}"

    def cpu_threads(self) -> int:
        """This process's fair share of the CPU cores it may run on, when the machine's processes split them.

        Outputs do not depend on how many threads a process computes with, as long as it is more than one: on a
        single thread PyTorch runs 1x1 convolutions with another kernel (THNN instead of oneDNN), which can move a
        16-bit output by 1. A share of one core is therefore bit for bit like one process run with --threads 1."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(1, cores // self.local_world)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def split_by_size(sizes: Sequence[int], parts: int) -> list[list[int]]:
    """Indices of `sizes` in `parts` shares of nearly equal total: the largest first, each to the lightest share so
    far (ties to the lower share), so that the same list always gives the same split."""
    shares: list[list[int]] = [[] for _ in range(parts)]
    loads = [(0, part) for part in range(parts)]  # a heap: the lightest share on top
    for index in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
        load, part = heapq.heappop(loads)
        shares[part].append(index)
        heapq.heappush(loads, (load + sizes[index], part))
    return [sorted(share) for share in shares]
