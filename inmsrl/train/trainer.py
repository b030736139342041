"""The generic trainer: Adam over a task's batches, validation every epoch, early stopping, resumable.

Every training stage of the recipes runs through :func:`train` (``inmsrl train``); what differs between
stages is only the :class:`~inmsrl.train.task.Task`. Per epoch the trainer

1. runs the task's training batches (at most ``trainer.max_steps_per_epoch``), one Adam step each, the
   gradient clipped to ``trainer.grad_clip`` if set; a non-finite ``loss`` stops training at once with
   a :class:`NonFiniteLossError` naming the epoch and step (no checkpoint is written after it);
2. averages the task's losses over the validation batches (all processes together);
3. updates early stopping (paper §4.3: the validation loss must improve within ``trainer.patience``
   epochs) and writes ``best.pt`` when it improved, then ``last.pt`` (atomic, every epoch);
4. logs one line to ``train.log`` and scalars to TensorBoard.

When it stops (``trainer.max_epochs`` or patience) it writes ``final.pt`` — the weights of the best
epoch, or of the last one with ``trainer.keep: last`` (where the validation set is too small for its
best epoch to mean more than noise) — and the ``done`` marker. A resumed run continues from
``last.pt`` with the optimiser, early-stopping counters and every random generator restored, so it
ends with the same weights as an uninterrupted run.
On CUDA the forward pass runs under bf16 autocast with channels_last tensors (``trainer.bf16``,
``trainer.channels_last``); with several processes the model is wrapped in DistributedDataParallel.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inmsrl.train import distributed
from inmsrl.train.checkpoint import (
    atomic_save,
    atomic_write_text,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    seed_everything,
)
from inmsrl.train.config import ConfigError, describe_changes
from inmsrl.train.distributed import Placement, Rank
from inmsrl.train.experiment import ExperimentDir, ExperimentInUseError, RunPlan, exclusive_run, plan_run
from inmsrl.train.task import RunContext, Task, build_task, factory_module

LOGGER_NAME = "inmsrl.train"
CHECKPOINT_VERSION = 1


class TrainingError(RuntimeError):
    """Training cannot go on (a task broke the protocol, a loader was empty, ...)."""


class NonFiniteLossError(TrainingError):
    """A loss became NaN or infinite; the message names the epoch and step."""


@dataclass(frozen=True)
class TrainResult:
    """How a call to :func:`train` ended: ``finished`` now, or ``already_done`` before."""

    status: str
    exp_dir: Path
    epochs: int
    best_epoch: int
    best_valid_loss: float
    stop_reason: str


@dataclass
class EarlyStopping:
    """Best validation loss so far and the epochs since it last improved (strictly lower is better)."""

    patience: int
    best: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0

    def update(self, value: float, epoch: int) -> bool:
        """Record ``epoch``'s validation loss; True if it is a new best."""
        if value < self.best:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def exhausted(self) -> bool:
        return self.bad_epochs >= self.patience


@dataclass
class _State:
    epoch: int = 0           # epochs completed
    global_step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def train(config: dict[str, Any], exp_dir: str | os.PathLike, *, ngpu: int | None = None,
          resume: str = "auto") -> TrainResult:
    """Train the task of ``config`` in ``exp_dir``; resumes or skips as :func:`plan_run` decides.

    ``ngpu``: see :func:`~inmsrl.train.distributed.plan_placement`. With more than one process they are
    spawned here, or joined if this process was started by torchrun.
    """
    exp = ExperimentDir(Path(exp_dir))
    placement = distributed.plan_placement(ngpu, config["trainer"]["device"])
    joined = distributed.torchrun_rank()
    if joined is not None:
        device = distributed.init_group(joined, placement)
        with contextlib.ExitStack() as lock:  # held by rank 0 for the whole run
            plan = _plan_on_rank_zero(config, exp, resume, joined, lock)
            if plan.action != "skip":
                try:
                    Trainer(config, exp, joined, placement, device, plan).run()
                finally:
                    distributed.leave_group()
        return _result(exp, "already_done" if plan.action == "skip" else "finished")
    with exclusive_run(exp):
        return _train_here(config, exp, placement, resume)


def _train_here(config: dict[str, Any], exp: ExperimentDir, placement: Placement, resume: str) -> TrainResult:
    """The run of :func:`train` started by this process: on one process, or spawning the others."""
    plan = plan_run(config, exp.root, resume)
    if plan.action == "skip":
        return _result(exp, "already_done")
    if placement.world_size > 1:
        distributed.spawn(_spawned_worker, placement, config, str(exp.root), plan,
                          factory_module(config["task"]["name"]))
    else:
        rank = Rank(0, 1, 0)
        device = distributed.init_group(rank, placement)
        Trainer(config, exp, rank, placement, device, plan).run()
    return _result(exp, "finished")


def _spawned_worker(rank: Rank, placement: Placement, config: dict[str, Any], exp_dir: str, plan: RunPlan,
                    task_module: str) -> None:
    importlib.import_module(task_module)  # registers the task in this fresh process
    device = distributed.init_group(rank, placement)
    try:
        Trainer(config, ExperimentDir(Path(exp_dir)), rank, placement, device, plan).run()
    finally:
        distributed.leave_group()
    distributed.exit_rank_process(0)  # an exception above still reaches the parent as usual


def _plan_on_rank_zero(config: dict[str, Any], exp: ExperimentDir, resume: str, rank: Rank,
                      lock: contextlib.ExitStack) -> RunPlan:
    """Rank 0 takes the directory's lock (into ``lock``) and decides (and writes config.yaml); every
    rank gets the plan or rank 0's error."""
    outcome: RunPlan | str
    if rank.rank == 0:
        try:
            lock.enter_context(exclusive_run(exp))
            outcome = plan_run(config, exp.root, resume)
        except (ConfigError, ExperimentInUseError) as err:
            outcome = str(err)
    else:
        outcome = ""
    outcome = distributed.broadcast_object(outcome)
    if isinstance(outcome, str):
        raise ConfigError(outcome)
    return outcome


def _result(exp: ExperimentDir, status: str) -> TrainResult:
    summary = exp.read_done()
    return TrainResult(status=status, exp_dir=exp.root, epochs=int(summary.get("epochs", 0)),
                       best_epoch=int(summary.get("best_epoch", 0)),
                       best_valid_loss=float(summary.get("best_valid_loss", math.nan)),
                       stop_reason=str(summary.get("stop_reason", "")))


class Trainer:
    """One process's part of a training run; rank 0 alone writes files."""

    def __init__(self, config: dict[str, Any], exp: ExperimentDir, rank: Rank, placement: Placement,
                 device: torch.device, plan: RunPlan):
        self.config, self.exp, self.rank, self.device, self.plan = config, exp, rank, device, plan
        self.settings = config["trainer"]
        self.is_main = rank.rank == 0
        on_cuda = device.type == "cuda"
        bf16, channels_last = self.settings["bf16"], self.settings["channels_last"]
        self.use_bf16 = on_cuda if bf16 is None else bf16
        self.channels_last = on_cuda if channels_last is None else channels_last
        self.log = logging.getLogger(LOGGER_NAME)
        self.writer: Any = None       # per-epoch scalars, x axis = epoch
        self.step_writer: Any = None  # per-step scalars (tensorboard/steps), x axis = optimiser step

    # ----------------------------------------------------------------------------------------- set-up
    def run(self) -> None:
        """Train until a stopping rule holds, then write ``final.pt`` and ``done`` (rank 0)."""
        with self._logging():
            if self.device.type == "cuda":
                torch.backends.cudnn.benchmark = bool(self.settings["cudnn_benchmark"])
            seed_everything(self.config["seed"] + self.rank.rank)
            context = RunContext(rank=self.rank.rank, world_size=self.rank.world_size, device=self.device,
                                 seed=self.config["seed"], exp_dir=self.exp.root,
                                 channels_last=self.channels_last)
            task = build_task(self.config, context)
            model = task.build_model().to(self.device)
            if self.channels_last:
                model = model.to(memory_format=torch.channels_last)
            trainable = self._freeze_all_but(model, task.trainable_parameters(model))
            optim = self.config["optim"]
            optimizer = torch.optim.Adam(trainable, lr=optim["lr"], betas=tuple(optim["betas"]),
                                         eps=optim["eps"], weight_decay=optim["weight_decay"])
            stopping = EarlyStopping(self.settings["patience"])
            state = _State()
            if self.plan.action == "resume":
                self._resume(model, optimizer, stopping, state)
            else:
                self.log.info("training %s in %s: %d process(es) on %s, %d trainable parameters",
                              self.config["task"]["name"], self.exp.root, self.rank.world_size,
                              self.device.type, sum(p.numel() for p in trainable))
            wrapped = self._wrap(model)
            if self.is_main and self.settings["tensorboard"]:
                self._open_tensorboard(state)
            try:
                reason = self._loop(task, model, wrapped, trainable, optimizer, stopping, state)
                task.on_train_end(model)
                if self.is_main:
                    self._finish(model, stopping, state, reason)
                distributed.barrier()  # no rank leaves the group before the run's outputs are written
            finally:
                for writer in (self.writer, self.step_writer):
                    if writer is not None:
                        writer.close()

    def _open_tensorboard(self, state: _State) -> None:
        """Two event streams, each purged of what a killed run wrote after the checkpoint it resumes."""
        from torch.utils.tensorboard import SummaryWriter

        resumed = self.plan.action == "resume"
        self.writer = SummaryWriter(str(self.exp.tensorboard),
                                    purge_step=state.epoch + 1 if resumed else None)
        self.step_writer = SummaryWriter(str(self.exp.tensorboard / "steps"),
                                         purge_step=state.global_step + 1 if resumed else None)

    @contextlib.contextmanager
    def _logging(self) -> Iterator[None]:
        """Rank 0 logs to train.log and stderr; other ranks only warn, with their rank."""
        handlers: list[logging.Handler] = []
        if self.is_main:
            self.exp.root.mkdir(parents=True, exist_ok=True)
            handlers = [logging.FileHandler(self.exp.log, encoding="utf-8"),
                        logging.StreamHandler(sys.stderr)]
            fmt = "%(asctime)s %(levelname)s %(message)s"
        else:
            handlers = [logging.StreamHandler(sys.stderr)]
            fmt = f"%(asctime)s %(levelname)s [rank {self.rank.rank}] %(message)s"
        for handler in handlers:
            handler.setFormatter(logging.Formatter(fmt, "%Y-%m-%d %H:%M:%S"))
            handler.setLevel(logging.INFO if self.is_main else logging.WARNING)
            self.log.addHandler(handler)
        self.log.setLevel(logging.INFO)
        self.log.propagate = False
        try:
            yield
        except Exception as err:
            if self.is_main:
                self.log.error("%s", err)
            raise
        finally:
            for handler in handlers:
                self.log.removeHandler(handler)
                handler.close()

    @staticmethod
    def _freeze_all_but(model: nn.Module, trainable: Iterable[nn.Parameter]) -> list[nn.Parameter]:
        """Parameters to optimise; every other parameter stops requiring gradients (DDP ignores it)."""
        chosen = list(trainable)
        if not chosen:
            raise TrainingError("the task's trainable_parameters() is empty: nothing to train")
        ids = {id(p) for p in chosen}
        for parameter in model.parameters():
            if id(parameter) not in ids:
                parameter.requires_grad_(False)
        return chosen

    def _wrap(self, model: nn.Module) -> nn.Module:
        if self.rank.world_size == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids,
                                       find_unused_parameters=self.settings["find_unused_parameters"])

    def _resume(self, model: nn.Module, optimizer: torch.optim.Optimizer, stopping: EarlyStopping,
                state: _State) -> None:
        checkpoint = load_checkpoint(self.exp.last, map_location=self.device)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        state.epoch, state.global_step = checkpoint["epoch"], checkpoint["global_step"]
        state.history = list(checkpoint["history"])
        stopping.best, stopping.best_epoch = checkpoint["best_valid_loss"], checkpoint["best_epoch"]
        stopping.bad_epochs = checkpoint["bad_epochs"]
        rng = checkpoint["rng"]
        if len(rng) == self.rank.world_size:
            restore_rng_state(rng[self.rank.rank], self.device)
        else:
            self.log.warning("the checkpoint was written by %d process(es), this run has %d: random streams "
                             "are reseeded, so the run will not repeat an uninterrupted one exactly",
                             len(rng), self.rank.world_size)
            seed_everything(self.config["seed"] + 1_000_003 * state.epoch + self.rank.rank)
        changed = f" with changed {describe_changes(self.plan.changed)}" if self.plan.changed else ""
        self.log.info("resuming from epoch %d (%s)%s", state.epoch, self.exp.last, changed)

    # ------------------------------------------------------------------------------------------ loop
    def _loop(self, task: Task, model: nn.Module, wrapped: nn.Module, trainable: list[nn.Parameter],
              optimizer: torch.optim.Optimizer, stopping: EarlyStopping, state: _State) -> str:
        max_epochs = self.settings["max_epochs"]
        stopping.patience = self.settings["patience"]
        while True:
            if stopping.exhausted:
                return "early_stopping"
            if state.epoch >= max_epochs:
                return "max_epochs"
            epoch = state.epoch + 1
            started = time.monotonic()
            train_losses = self._train_epoch(task, model, wrapped, trainable, optimizer, state, epoch)
            valid_losses = self._validate(task, model, epoch, state)
            improved = stopping.update(valid_losses["loss"], epoch)
            state.epoch = epoch
            lr = optimizer.param_groups[0]["lr"]
            seconds = time.monotonic() - started
            state.history.append({"epoch": epoch, "train": train_losses, "valid": valid_losses,
                                  "lr": lr, "seconds": seconds})
            rng_states = distributed.all_gather_object(capture_rng_state(self.device))
            if self.is_main:
                if improved:
                    atomic_save({"model": model.state_dict(), "epoch": epoch,
                                 "valid_loss": valid_losses["loss"], "config": self.config}, self.exp.best)
                atomic_save(self._checkpoint(model, optimizer, stopping, state, rng_states), self.exp.last)
                self._report(epoch, train_losses, valid_losses, lr, seconds, stopping, improved)

    def _checkpoint(self, model: nn.Module, optimizer: torch.optim.Optimizer, stopping: EarlyStopping,
                    state: _State, rng_states: list[dict[str, Any]]) -> dict[str, Any]:
        return {"version": CHECKPOINT_VERSION, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": state.epoch, "global_step": state.global_step, "history": state.history,
                "best_valid_loss": stopping.best, "best_epoch": stopping.best_epoch,
                "bad_epochs": stopping.bad_epochs, "rng": rng_states, "world_size": self.rank.world_size,
                "config": self.config}

    def _train_epoch(self, task: Task, model: nn.Module, wrapped: nn.Module, trainable: list[nn.Parameter],
                     optimizer: torch.optim.Optimizer, state: _State, epoch: int) -> dict[str, float]:
        model.train()
        task.on_epoch_start(model, epoch)
        loader = task.train_loader(epoch)
        limit = self.settings["max_steps_per_epoch"]
        clip = self.settings["grad_clip"]
        sums: dict[str, float] = {}
        weight = 0.0
        batches = iter(loader)
        step = 0
        with self._progress(_length(loader, limit), f"epoch {epoch}") as bar:
            while limit is None or step < limit:
                batch = next(batches, _END)
                if not self._everyone_has(batch is not _END):
                    break
                step += 1
                batch = to_device(batch, self.device, self.channels_last)
                with self._autocast():
                    losses = task.losses(wrapped, batch)
                values = self._loss_values(losses)
                self._stop_if_not_finite(values, epoch, step, state)
                optimizer.zero_grad(set_to_none=True)
                losses["loss"].backward()
                if clip is not None:
                    torch.nn.utils.clip_grad_norm_(trainable, clip)
                optimizer.step()
                state.global_step += 1
                _accumulate(sums, values, size := batch_size(batch))
                weight += size
                bar.update(1)
                bar.set_postfix(loss=f"{values['loss']:.4g}", refresh=False)
                if self.step_writer is not None and state.global_step % self.settings["log_interval"] == 0:
                    for name, value in values.items():
                        self.step_writer.add_scalar(f"train/{name}", value, state.global_step)
        means = self._mean_over_processes(sums, weight)
        if not means:
            raise TrainingError(f"epoch {epoch}: the training loader yielded no batches")
        return means

    def _validate(self, task: Task, model: nn.Module, epoch: int, state: _State) -> dict[str, float]:
        """Mean validation losses over all processes; the unwrapped model avoids DDP collectives."""
        self._sync_buffers(model)
        model.eval()
        limit = self.settings["max_valid_steps"]
        sums: dict[str, float] = {}
        weight = 0.0
        first_bad_step = None
        with torch.no_grad(), self._autocast():
            for step, batch in enumerate(task.valid_loader(), 1):
                if limit is not None and step > limit:
                    break
                batch = to_device(batch, self.device, self.channels_last)
                values = self._loss_values(task.losses(model, batch))
                if first_bad_step is None and not math.isfinite(values["loss"]):
                    first_bad_step = step
                _accumulate(sums, values, size := batch_size(batch))
                weight += size
        # No process stops inside the loop: they would leave the others waiting in the reduction below.
        means = self._mean_over_processes(sums, weight)
        if "loss" not in means:
            raise TrainingError(f"epoch {epoch}: the validation loader yielded no batches")
        if not math.isfinite(means["loss"]):
            at = f" (at validation step {first_bad_step} here)" if first_bad_step else ""
            raise NonFiniteLossError(f"epoch {epoch}: the validation loss is {means['loss']}{at}; training "
                                     f"stopped and {self._kept_checkpoint(state)}")
        return means

    # --------------------------------------------------------------------------------------- helpers
    def _loss_values(self, losses: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """The task's losses as floats (one device sync), after checking the protocol."""
        task = self.config["task"]["name"]
        if not isinstance(losses, Mapping) or "loss" not in losses:
            raise TrainingError(f"task {task!r}: losses() must return a dict with a 'loss' entry, "
                                f"got {type(losses).__name__}")
        for name, value in losses.items():
            if not isinstance(value, torch.Tensor) or value.numel() != 1:
                raise TrainingError(f"task {task!r}: loss {name!r} is not a scalar tensor")
        stacked = torch.stack([value.detach().float().reshape(()) for value in losses.values()])
        return dict(zip(losses, stacked.tolist(), strict=True))

    def _stop_if_not_finite(self, values: dict[str, float], epoch: int, step: int, state: _State) -> None:
        """A NonFiniteLossError on every process if any process's training loss is NaN or infinite."""
        bad = not math.isfinite(values["loss"])
        if self.rank.world_size > 1:
            flag = torch.tensor([float(bad)], device=self.device)
            bad = bool(distributed.all_reduce_max(flag).item())
        if bad:
            where = "another process's" if math.isfinite(values["loss"]) else "the"
            raise NonFiniteLossError(
                f"epoch {epoch}, step {step}: {where} training loss is not finite (losses here: "
                f"{', '.join(f'{k}={v:.6g}' for k, v in values.items())}); training stopped and "
                f"{self._kept_checkpoint(state)}")

    def _kept_checkpoint(self, state: _State) -> str:
        if state.epoch == 0:
            return "no checkpoint had been written yet"
        return f"the last good checkpoint {self.exp.last} (epoch {state.epoch}) is unchanged"

    def _everyone_has(self, has_batch: bool) -> bool:
        """Whether every process has another batch: all stop together, so no process waits forever."""
        if self.rank.world_size == 1:
            return has_batch
        missing = torch.tensor([0.0 if has_batch else 1.0], device=self.device)
        return not distributed.all_reduce_max(missing).item()

    def _mean_over_processes(self, sums: dict[str, float], weight: float) -> dict[str, float]:
        gathered = distributed.all_gather_object((sums, weight))
        total: dict[str, float] = {}
        total_weight = 0.0
        for part_sums, part_weight in gathered:
            _accumulate(total, part_sums, 1.0)
            total_weight += part_weight
        return {name: value / total_weight for name, value in total.items()} if total_weight else {}

    def _sync_buffers(self, model: nn.Module) -> None:
        """Give every process rank 0's buffers (BatchNorm statistics) so that validation agrees."""
        if distributed.in_group():
            for buffer in model.buffers():
                torch.distributed.broadcast(buffer, src=0)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if not self.use_bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def _progress(self, total: int | None, description: str) -> Any:
        from tqdm import tqdm

        show = self.settings["progress_bar"]
        if show is None:
            show = sys.stderr.isatty()
        return tqdm(total=total, desc=description, leave=False, file=sys.stderr, dynamic_ncols=True,
                    disable=not (show and self.is_main))

    def _report(self, epoch: int, train_losses: dict[str, float], valid_losses: dict[str, float], lr: float,
                seconds: float, stopping: EarlyStopping, improved: bool) -> None:
        def show(losses: dict[str, float]) -> str:
            return " ".join(f"{name}={value:.6g}" for name, value in losses.items())
        self.log.info("epoch %d/%d | train %s | valid %s | lr %.3g | %.1fs | best %.6g @ epoch %d%s | "
                      "patience %d/%d", epoch, self.settings["max_epochs"], show(train_losses),
                      show(valid_losses), lr, seconds, stopping.best, stopping.best_epoch,
                      " (new)" if improved else "", stopping.bad_epochs, stopping.patience)
        if self.writer is not None:
            for name, value in train_losses.items():
                self.writer.add_scalar(f"train/{name}", value, epoch)
            for name, value in valid_losses.items():
                self.writer.add_scalar(f"valid/{name}", value, epoch)
            self.writer.add_scalar("lr", lr, epoch)
            self.writer.add_scalar("epoch_seconds", seconds, epoch)
            self.writer.flush()

    def _finish(self, model: nn.Module, stopping: EarlyStopping, state: _State, reason: str) -> None:
        from inmsrl.models.pretrained import standalone_metadata  # the models, only once there is one

        keep = self.settings["keep"]
        if keep == "best":
            final = load_checkpoint(self.exp.best)
        else:
            last = load_checkpoint(self.exp.last)
            final = {"model": last["model"], "epoch": last["epoch"],
                     "valid_loss": state.history[-1]["valid"]["loss"], "config": self.config}
        # What the model needs to load without the training data (sources, audio settings, code version).
        final["standalone"] = standalone_metadata(model, self.config.get("model"))
        atomic_save(final, self.exp.final)
        summary = {"epochs": state.epoch, "best_epoch": stopping.best_epoch,
                   "best_valid_loss": stopping.best, "stop_reason": reason, "global_step": state.global_step,
                   "kept": keep, "kept_epoch": final["epoch"]}
        atomic_write_text(json.dumps(summary) + "\n", self.exp.done)
        self.log.info("finished after %d epochs (%s): best validation loss %.6g at epoch %d; kept the %s "
                      "epoch (%d) -> %s", state.epoch, reason.replace("_", " "), stopping.best,
                      stopping.best_epoch, keep, final["epoch"], self.exp.final)


_END = object()


def _length(loader: Any, limit: int | None) -> int | None:
    try:
        length = len(loader)
    except TypeError:
        return limit
    return length if limit is None else min(length, limit)


def _accumulate(sums: dict[str, float], values: Mapping[str, float], weight: float) -> None:
    for name, value in values.items():
        sums[name] = sums.get(name, 0.0) + value * weight


def batch_size(batch: Any) -> int:
    """Items in ``batch``: the leading size of its first tensor (1 if it holds none); weights the means."""
    return _leading_size(batch) or 1


def _leading_size(batch: Any) -> int | None:
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim else 1
    if isinstance(batch, Mapping):
        values: Iterable[Any] = batch.values()
    elif isinstance(batch, list | tuple):
        values = batch
    else:
        return None
    for value in values:
        size = _leading_size(value)
        if size is not None:
            return size
    return None


def to_device(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    """``batch`` (tensors in dicts, lists, tuples) on ``device``; 4-D float tensors channels_last if asked."""
    if isinstance(batch, torch.Tensor):
        moved = batch.to(device, non_blocking=True)
        if channels_last and moved.ndim == 4 and moved.is_floating_point():
            moved = moved.contiguous(memory_format=torch.channels_last)
        return moved
    if isinstance(batch, Mapping):
        return {key: to_device(value, device, channels_last) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(to_device(value, device, channels_last) for value in batch))
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(value, device, channels_last) for value in batch)
    return batch
