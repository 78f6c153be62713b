"""Process-group helpers for running ``segstudio train`` under ``torchrun`` (torch.distributed).

``torchrun`` (``python -m torch.distributed.run``) starts one process per GPU (or per CPU slot) and
sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` in each one's
environment. :func:`distributed_session` reads them, picks the device (``cuda:LOCAL_RANK`` with NCCL
on CUDA, the CPU with gloo otherwise), initialises the default process group with a timeout (so a dead
peer ends the job instead of hanging it) and tears it down again. Outside ``torchrun`` it does nothing
and the :class:`DistContext` says "one process".

The training loop itself (DistributedDataParallel, DistributedSampler, rank-0 checkpoints) lives in
:mod:`segstudio.engine.trainer`; this module holds only the process-group plumbing and the exact
all-reduce of a :class:`~segstudio.metrics.ConfusionMatrix`.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from segstudio.engine.devices import resolve_device
from segstudio.engine.train_config import DEFAULT_TIMEOUT_S  # defined torch-free, beside TrainConfig
from segstudio.metrics import ConfusionMatrix

log = logging.getLogger(__name__)

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class PeerFailure(RuntimeError):
    """A collective operation failed: another rank died, was killed or timed out.

    Raised (instead of torch's backend error) by the training loop so that the CLI can print one clear
    line; the original error is chained as ``__cause__``.
    """


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job.

    Attributes:
        rank: global rank, ``0 .. world_size - 1``.
        world_size: number of processes in the job (1 without ``torchrun``).
        local_rank: rank on this node (selects ``cuda:local_rank``).
        backend: ``"nccl"``, ``"gloo"`` or ``None`` (no process group).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        """True when a process group is initialised (even with ``world_size == 1`` under ``torchrun``)."""
        return self.backend is not None

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only rank that writes checkpoints, logs at INFO and shows a progress bar."""
        return self.rank == 0


SINGLE = DistContext()
"""The context of an ordinary single process."""


def launched_by_torchrun(environ=None) -> bool:
    """True when the torchrun variables (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...) are all set."""
    env = os.environ if environ is None else environ
    return all(k in env for k in TORCHRUN_ENV)


def env_rank(environ=None) -> int:
    """This process's ``RANK`` from the environment (0 when not under ``torchrun``)."""
    env = os.environ if environ is None else environ
    try:
        return int(env.get("RANK", "0"))
    except ValueError:
        return 0


def current() -> DistContext:
    """The context of the already initialised default process group, or :data:`SINGLE`."""
    if not (dist.is_available() and dist.is_initialized()):
        return SINGLE
    return DistContext(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        backend=str(dist.get_backend()),
    )


def device_for(ctx: DistContext, name: str = "auto") -> torch.device:
    """The device this rank trains on.

    ``"auto"``/``"cuda"`` under a CUDA job → ``cuda:LOCAL_RANK`` (one GPU per process, as torchrun's
    ``--nproc_per_node`` = GPUs per node expects); ``"cpu"`` → the CPU; an explicit ``"cuda:K"`` is kept.

    Raises:
        ValueError: CUDA asked for but absent, or ``LOCAL_RANK`` beyond the GPUs of this node.
    """
    dev = resolve_device(name)
    if dev.type != "cuda" or not ctx.enabled or dev.index is not None:
        return dev
    n = torch.cuda.device_count()
    if ctx.local_rank >= n:
        raise ValueError(
            f"local rank {ctx.local_rank} has no GPU: this node has {n}; start torchrun with --nproc_per_node {n} "
            "or fewer (or train with --device cpu)"
        )
    return torch.device("cuda", ctx.local_rank)


def backend_for(device_name: str = "auto") -> str:
    """``"nccl"`` when the job trains on CUDA (and NCCL is built in), else ``"gloo"``."""
    dev = resolve_device(device_name)
    if dev.type == "cuda" and dist.is_nccl_available():
        return "nccl"
    return "gloo"


@contextmanager
def distributed_session(device: str = "auto", timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[DistContext]:
    """Initialise the default process group when started by ``torchrun``; destroy it on exit.

    Args:
        device: the training device name (``auto``, ``cpu``, ``cuda``); decides NCCL vs gloo.
        timeout_s: collective timeout, seconds (> 0). A rank blocked longer than this in an all-reduce
            (because a peer died or hangs) raises instead of waiting forever.

    Yields:
        The :class:`DistContext` (:data:`SINGLE` outside torchrun, or when a group already exists: then
        the existing group's context, which is left alone on exit).

    Raises:
        ValueError: a non-positive timeout, or CUDA asked for on a node without enough GPUs.
        PeerFailure: the rendezvous failed (a peer never came up within ``timeout_s``).
    """
    if timeout_s <= 0:
        raise ValueError(f"the distributed timeout must be > 0 seconds, got {timeout_s}")
    if dist.is_available() and dist.is_initialized():
        yield current()
        return
    if not launched_by_torchrun() or not dist.is_available():
        yield SINGLE
        return
    backend = backend_for(device)
    ctx = DistContext(
        rank=int(os.environ["RANK"]),
        world_size=int(os.environ["WORLD_SIZE"]),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        backend=backend,
    )
    dev = device_for(ctx, device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    # NCCL: turn a stuck collective into an error after `timeout` instead of a silent hang.
    os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")
    try:
        dist.init_process_group(
            backend=backend,
            timeout=_dt.timedelta(seconds=timeout_s),
            device_id=dev if dev.type == "cuda" else None,
        )
    except (RuntimeError, dist.DistError) as exc:
        raise PeerFailure(
            f"rank {ctx.rank}/{ctx.world_size}: could not join the process group at "
            f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')} ({exc})"
        ) from exc
    log.info(
        "distributed: rank %d/%d (local %d) on %s, backend %s, timeout %.0fs",
        ctx.rank,
        ctx.world_size,
        ctx.local_rank,
        dev,
        backend,
        timeout_s,
    )
    try:
        yield ctx
    finally:
        try:
            dist.destroy_process_group()
        except Exception:  # noqa: BLE001 - a broken group cannot always be torn down cleanly
            log.debug("destroy_process_group failed", exc_info=True)


def all_reduce_confusion(cm: ConfusionMatrix, ctx: DistContext | None = None) -> ConfusionMatrix:
    """Sum ``cm`` over all ranks in place (exact: int64 counts); returns ``cm``.

    Every metric of a :class:`ConfusionMatrix` is a function of the K×K counts alone, so after this
    every rank holds exactly the matrix one process would have accumulated over all shards (as in
    torchvision's ``references/segmentation/utils.py`` ``ConfusionMatrix.reduce_from_all_processes``).
    A no-op without a process group.

    Raises:
        PeerFailure: a peer died or timed out during the reduction.
    """
    ctx = ctx or current()
    if not ctx.enabled:
        return cm
    device = torch.device("cuda", torch.cuda.current_device()) if ctx.backend == "nccl" else torch.device("cpu")
    t = torch.from_numpy(np.ascontiguousarray(cm.mat, dtype=np.int64)).to(device)
    try:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    except (RuntimeError, dist.DistError) as exc:
        raise PeerFailure(peer_failure_message(ctx, exc)) from exc
    cm.mat[...] = t.cpu().numpy()
    return cm


def all_reduce_mean(value: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Mean of a tensor over ranks (a detached copy; ``value`` itself unchanged).

    Raises:
        PeerFailure: a peer died or timed out.
    """
    out = value.detach().clone()
    if not ctx.enabled or ctx.world_size == 1:
        return out
    try:
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
    except (RuntimeError, dist.DistError) as exc:
        raise PeerFailure(peer_failure_message(ctx, exc)) from exc
    return out / ctx.world_size


def all_reduce_agree(value: float, ctx: DistContext, op: str = "max", device: torch.device | None = None) -> float:
    """The ``max`` or ``min`` of a number over ranks, so time-based decisions (a time budget, a validation
    interval) come out the same on every rank: each rank has its own clock and step times, and a rank that stops
    or validates alone would leave its peers waiting in the next collective.

    Raises:
        ValueError: ``op`` is not ``"max"`` or ``"min"``.
        PeerFailure: a peer died or timed out.
    """
    if op not in ("max", "min"):
        raise ValueError(f"op must be 'max' or 'min', got {op!r}")
    if not ctx.enabled or ctx.world_size == 1:
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    try:
        dist.all_reduce(t, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.MIN)
    except (RuntimeError, dist.DistError) as exc:
        raise PeerFailure(peer_failure_message(ctx, exc)) from exc
    return float(t.item())


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op without a process group).

    Raises:
        PeerFailure: a peer died or timed out.
    """
    if not ctx.enabled or ctx.world_size == 1:
        return
    try:
        if ctx.backend == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()
    except (RuntimeError, dist.DistError) as exc:
        raise PeerFailure(peer_failure_message(ctx, exc)) from exc


_PEER_HINTS = ("gloo", "nccl", "connection closed", "connection reset", "broken pipe", "timed out", "timeout", "c10d")


def is_peer_failure(exc: BaseException) -> bool:
    """Heuristic: does ``exc`` (raised inside a collective, DDP forward or backward) come from a lost peer?

    True for :class:`torch.distributed.DistError` and for RuntimeErrors whose text names the backend or
    a closed/timed-out connection (how gloo and NCCL report a dead peer); False for e.g. an out-of-memory
    error or a shape mismatch, which are passed on unchanged.
    """
    if isinstance(exc, dist.DistError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and "out of memory" not in text and any(h in text for h in _PEER_HINTS)


@contextmanager
def peer_errors(ctx: DistContext) -> Iterator[None]:
    """Turn a lost-peer error (:func:`is_peer_failure`) raised inside the block into :class:`PeerFailure`.

    A no-op for a single process; any other exception passes through unchanged.
    """
    try:
        yield
    except PeerFailure:
        raise
    except (RuntimeError, dist.DistError) as exc:
        if ctx.world_size > 1 and is_peer_failure(exc):
            raise PeerFailure(peer_failure_message(ctx, exc)) from exc
        raise


def peer_failure_message(ctx: DistContext, exc: BaseException) -> str:
    """One clear line for a failed collective: which rank noticed, likely cause, what to do."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"rank {ctx.rank}/{ctx.world_size} lost its peers (another rank died, was killed, or did not answer "
        f"within the timeout): {first[:300]}. Look for the first failing rank's error above; "
        "resume with --resume from the run folder's last checkpoint (any number of processes)"
    )
