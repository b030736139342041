"""The task protocol: what a training stage tells the generic trainer, and the registry of stages.

The trainer knows nothing of separation or triplets. A stage is a :class:`Task`: it builds the model,
hands out a training loader per epoch and a validation loader, and turns a batch into named losses
(``"loss"`` is optimised, the others are logged). Tasks are created by a *factory*
``factory(config, context) -> Task`` registered under the name that a config's ``task.name`` gives::

    @register_task("mss")
    class MSSTask(Task):
        def __init__(self, config, context): ...

A ``task.name`` of the form ``package.module:attribute`` imports that factory directly (plug-ins and
tests); any other unknown name makes the registry import the modules of ``inmsrl.tasks`` (which
register themselves) before giving up.

A factory declares the options of its ``task:`` section as ``options``, a tuple of
:class:`~inmsrl.train.options.Option` (one line each), and the other top-level sections it reads as
``sections`` (default: ``model``). Loading a configuration checks the section against them
(:mod:`inmsrl.train.config`): an unknown key, a missing required one or a bad value stops the run
before it starts. A factory without ``options`` (a quick plug-in) gets its section unchecked.

Under DDP the model a task receives in :meth:`Task.losses` is the ``DistributedDataParallel`` wrapper:
compute the losses through ``model(...)`` (its ``forward``), not through its submodules, or the
gradients are not averaged across processes. :func:`sharded_loader` gives each process its share of
every global batch.
"""

from __future__ import annotations

import abc
import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from inmsrl.train.options import Option


@dataclass(frozen=True)
class RunContext:
    """Where a task runs: its process's rank among ``world_size`` DDP processes, device and seed."""

    rank: int
    world_size: int
    device: torch.device
    seed: int
    exp_dir: Path
    channels_last: bool = False

    @property
    def is_main(self) -> bool:
        """Whether this process writes files (rank 0)."""
        return self.rank == 0


class Task(abc.ABC):
    """One training stage: model, data and losses. Subclasses implement the four abstract methods and
    declare their ``task:`` options (see the module docstring)."""

    options: ClassVar[tuple[Option, ...] | None] = None
    sections: ClassVar[tuple[str, ...]] = ("model",)

    @abc.abstractmethod
    def build_model(self) -> nn.Module:
        """A freshly initialised model (on the CPU; the trainer moves it)."""

    @abc.abstractmethod
    def train_loader(self, epoch: int) -> Iterable[Any]:
        """This process's training batches for ``epoch`` (1-based); a new iterable every epoch."""

    @abc.abstractmethod
    def valid_loader(self) -> Iterable[Any]:
        """This process's validation batches; the trainer averages the losses over all processes."""

    @abc.abstractmethod
    def losses(self, model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
        """Scalar losses of one batch (already on the device); ``"loss"`` is the one optimised."""

    def trainable_parameters(self, model: nn.Module) -> Iterable[nn.Parameter]:
        """The parameters the optimiser updates; the trainer freezes every other one."""
        return model.parameters()

    def on_epoch_start(self, model: nn.Module, epoch: int) -> None:  # noqa: B027 (optional hook)
        """Called after ``model.train()`` at the start of each epoch (e.g. to keep frozen parts in eval)."""

    def on_train_end(self, model: nn.Module) -> None:  # noqa: B027 (optional hook)
        """Called on every process when training stops, with the final (last-epoch) weights."""


TaskFactory = Callable[[dict[str, Any], RunContext], Task]

_REGISTRY: dict[str, TaskFactory] = {}


def register_task(name: str, factory: TaskFactory | None = None) -> Any:
    """Register ``factory`` under ``name``; without ``factory``, a decorator that does so."""
    def add(factory: TaskFactory) -> TaskFactory:
        known = _REGISTRY.get(name)
        if known is not None and _qualified_name(known) != _qualified_name(factory):
            raise ValueError(f"task name {name!r} is already registered by {_qualified_name(known)}")
        _REGISTRY[name] = factory
        return factory
    return add if factory is None else add(factory)


def task_factory(name: str) -> TaskFactory:
    """The factory for ``name``: registered, ``module:attribute``, or found in ``inmsrl.tasks``."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise KeyError(f"task {name!r}: cannot import {module_name}: {err}") from err
        factory = getattr(module, attribute, None)
        if not callable(factory):
            raise KeyError(f"task {name!r}: {module_name} has no callable {attribute!r}")
        return factory
    _import_task_package()
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise KeyError(f"unknown task {name!r} (registered: {known})")
    return _REGISTRY[name]


def declared_options(name: str) -> tuple[tuple[Option, ...] | None, tuple[str, ...]]:
    """The ``task:`` options and top-level sections that the factory of ``name`` declares: (None, the
    default sections) for a factory that declares no options."""
    factory = task_factory(name)
    return getattr(factory, "options", None), tuple(getattr(factory, "sections", Task.sections))


def factory_module(name: str) -> str:
    """The module that defines (and registers) the factory of ``name``: what a spawned process imports."""
    return task_factory(name).__module__


def build_task(config: Mapping[str, Any], context: RunContext) -> Task:
    """The task of ``config["task"]["name"]`` built from the whole configuration."""
    name = config["task"]["name"]
    task = task_factory(name)(dict(config), context)
    if not isinstance(task, Task):
        raise TypeError(f"task {name!r}: the factory returned {type(task).__name__}, not a Task")
    return task


def sharded_loader(dataset: Dataset, *, batch_size: int, context: RunContext, epoch: int | None = None,
                   shuffle: bool = False, num_workers: int = 0, drop_last: bool = False,
                   **loader_options: Any) -> DataLoader:
    """A loader of this process's share of ``dataset`` in global batches of ``batch_size``.

    Each of the ``world_size`` processes loads ``batch_size // world_size`` items per step, so that the
    averaged gradient equals a single process's on the whole batch. The order depends only on the seed
    and ``epoch`` (``set_epoch`` is also forwarded to the dataset if it has one), never on the rank count.
    """
    if batch_size % context.world_size:
        raise ValueError(f"batch size {batch_size} does not divide among {context.world_size} processes")
    if epoch is not None and hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    sampler = DistributedSampler(dataset, num_replicas=context.world_size, rank=context.rank,
                                 shuffle=shuffle, seed=context.seed, drop_last=drop_last)
    sampler.set_epoch(epoch or 0)
    return DataLoader(dataset, batch_size=batch_size // context.world_size, sampler=sampler,
                      num_workers=num_workers, drop_last=drop_last,
                      pin_memory=context.device.type == "cuda", **loader_options)


def _qualified_name(factory: Callable[..., Any]) -> str:
    return f"{factory.__module__}.{getattr(factory, '__qualname__', repr(factory))}"


def _import_task_package() -> None:
    """Import every module of ``inmsrl.tasks`` (if the package exists) so that they register."""
    try:
        package = importlib.import_module("inmsrl.tasks")
    except ModuleNotFoundError as err:
        if err.name != "inmsrl.tasks":
            raise
        return
    for info in pkgutil.iter_modules(getattr(package, "__path__", [])):
        importlib.import_module(f"inmsrl.tasks.{info.name}")
