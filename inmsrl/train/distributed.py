"""Running one training as N data-parallel processes (DDP), and the few collectives the trainer needs.

``--ngpu N`` means N processes, one GPU each, NCCL between them. With ``trainer.device=cpu`` the same
N processes run on the CPU and talk over gloo, which is how the tests exercise DDP without a GPU.
Processes are started with ``torch.multiprocessing`` (spawn) on this machine; a job started by
``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` in the environment) is joined instead of spawning.
Every collective here is a no-op in a single process, so the trainer has one code path.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn

import torch
import torch.distributed as dist


class LaunchError(RuntimeError):
    """The requested processes and devices cannot be provided on this machine."""


@dataclass(frozen=True)
class Placement:
    """How many processes train, on which kind of device, with which communication backend."""

    world_size: int
    device_type: str  # "cuda" or "cpu"

    @property
    def backend(self) -> str:
        return "nccl" if self.device_type == "cuda" else "gloo"


@dataclass(frozen=True)
class Rank:
    """This process's place in the group."""

    rank: int
    world_size: int
    local_rank: int


def plan_placement(ngpu: int | None, device_setting: str) -> Placement:
    """Processes and device for ``--ngpu`` and ``trainer.device`` (auto | cuda | cpu).

    ``ngpu`` None: one process, CUDA if available (or asked for). 0: one CPU process. N ≥ 1: N
    processes on N GPUs, or on the CPU when ``trainer.device`` is ``cpu``.
    """
    if device_setting not in ("auto", "cuda", "cpu"):
        raise LaunchError(f"trainer.device must be auto, cuda or cpu, not {device_setting!r}")
    env = torchrun_rank()
    if env is not None:
        device = "cpu" if device_setting == "cpu" or ngpu == 0 or not torch.cuda.is_available() else "cuda"
        return Placement(env.world_size, device)
    available = torch.cuda.device_count()
    if ngpu is None:
        if device_setting == "cuda" and not available:
            raise LaunchError("trainer.device is cuda but torch sees no CUDA device")
        use_cuda = device_setting == "cuda" or (device_setting == "auto" and available > 0)
        return Placement(1, "cuda" if use_cuda else "cpu")
    if ngpu < 0:
        raise LaunchError(f"--ngpu must be 0 or more, not {ngpu}")
    if ngpu == 0:
        return Placement(1, "cpu")
    if device_setting == "cpu":
        return Placement(ngpu, "cpu")
    if available < ngpu:
        raise LaunchError(f"--ngpu {ngpu} asks for {ngpu} GPU(s) but torch sees {available}; use --ngpu 0 "
                          "for the CPU (or trainer.device=cpu to run that many CPU processes)")
    return Placement(ngpu, "cuda")


def torchrun_rank() -> Rank | None:
    """This process's rank if it was started by torchrun (or another launcher using its variables)."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    world_size = int(os.environ["WORLD_SIZE"])
    if world_size <= 1:
        return None
    rank = int(os.environ["RANK"])
    return Rank(rank, world_size, int(os.environ.get("LOCAL_RANK", rank)))


def free_port() -> int:
    """A TCP port nobody listens on now, for the process group's rendezvous."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(worker: Callable[..., Any], placement: Placement, *args: Any) -> None:
    """Run ``worker(rank, placement, *args)`` in ``placement.world_size`` new processes and wait.

    An exception in any process is raised here (as ``torch.multiprocessing.ProcessRaisedException``
    carrying the child's traceback) after the others have been stopped.
    """
    import torch.multiprocessing as mp

    port = free_port()
    mp.start_processes(_spawned, args=(worker, placement, port, args), nprocs=placement.world_size,
                       start_method="spawn", join=True)


def _spawned(local_rank: int, worker: Callable[..., Any], placement: Placement, port: int,
             args: tuple[Any, ...]) -> None:
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ["MASTER_PORT"] = str(port)
    worker(Rank(local_rank, placement.world_size, local_rank), placement, *args)


def init_group(rank: Rank, placement: Placement) -> torch.device:
    """Join the process group (if there is more than one process) and return this process's device."""
    if placement.device_type == "cuda":
        device = torch.device("cuda", rank.local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
        if placement.world_size > 1:
            # N processes on a shared CPU: split the cores rather than oversubscribe them N times.
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // placement.world_size))
    if placement.world_size > 1 and not dist.is_initialized():
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        dist.init_process_group(placement.backend, rank=rank.rank, world_size=rank.world_size,
                                timeout=timedelta(minutes=30),
                                device_id=device if device.type == "cuda" else None)
    return device


def leave_group() -> None:
    """Leave the process group if this process is in one."""
    if dist.is_initialized():
        dist.destroy_process_group()


def exit_rank_process(code: int) -> NoReturn:
    """End a finished training process at once, without Python's interpreter teardown.

    Once DistributedDataParallel has wrapped a model, the gloo group's worker threads outlive
    ``destroy_process_group`` (something DDP creates keeps the group; seen with torch 2.14), and their
    destruction during interpreter teardown now and then aborts the process ("terminate called without
    an active exception", SIGABRT; 3 of 76 two-process runs here): a finished run would be reported as
    crashed. Everything the run writes is closed by then; this flushes the logs and standard streams
    and leaves.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


def barrier() -> None:
    """Wait until every process gets here (no-op alone); e.g. so that no rank reports a run finished
    (to torchrun, or a job's exit status) before rank 0 has written its ``final.pt``."""
    if in_group():
        dist.barrier()


def in_group() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_max(tensor: torch.Tensor) -> torch.Tensor:
    """Element-wise maximum of ``tensor`` over all processes (in place)."""
    if in_group():
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor


def all_gather_object(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every process."""
    if not in_group():
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every process."""
    if not in_group():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
