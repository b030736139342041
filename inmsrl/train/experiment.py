"""An experiment directory: its files, and whether a run in it starts fresh, resumes or has nothing to do.

Layout of ``<exp-dir>``::

    config.yaml             the resolved configuration of the current run
    train.log               one line per epoch (and everything else the trainer says), appended
    tensorboard/            TensorBoard scalars
    checkpoints/last.pt     model, optimiser, epoch, early-stopping state, RNG states, config (every epoch)
    checkpoints/best.pt     the weights of the best validation epoch
    final.pt                the best weights once training has stopped (what later stages load)
    done                    JSON marker: training finished; recipes skip the stage
    .lock                   held (flock) by the run in progress, which wrote its pid, host and start

Deciding what to do (:func:`plan_run`):

* ``done`` present and the configuration unchanged, or changed only in its ``experiment:``
  description → nothing to do (a new description is written to ``config.yaml``).
* ``done`` present and only :data:`~inmsrl.train.config.RESUMABLE_KEYS` changed (e.g. a larger
  ``trainer.max_epochs``) → continue from ``last.pt`` under the new stopping rule.
* ``last.pt`` present → resume from it, if the configuration differs only in resumable keys.
* otherwise → fresh start. Any other change is an error naming the keys: use a new ``--exp-dir``, or
  ``--resume never`` to discard the old run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inmsrl.train.checkpoint import CheckpointError, load_checkpoint
from inmsrl.train.config import (
    RESUMABLE_KEYS,
    ConfigError,
    changed_keys,
    describe_changes,
    is_descriptive,
    is_resumable,
    save_config,
)

RESUME_MODES = ("auto", "never")


@dataclass(frozen=True)
class ExperimentDir:
    """The paths of one experiment directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def log(self) -> Path:
        return self.root / "train.log"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.pt"

    @property
    def final(self) -> Path:
        return self.root / "final.pt"

    @property
    def done(self) -> Path:
        return self.root / "done"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    def read_done(self) -> dict[str, Any]:
        """The summary in the ``done`` marker (empty if it holds none)."""
        try:
            return json.loads(self.done.read_text(encoding="utf-8") or "{}")
        except (OSError, json.JSONDecodeError):
            return {}


class ExperimentInUseError(RuntimeError):
    """Another run holds the experiment directory; the message names its process."""


@contextlib.contextmanager
def exclusive_run(exp: ExperimentDir) -> Iterator[None]:
    """Hold ``exp``'s lock for the block: two runs in one directory would interleave their log lines
    and overwrite each other's checkpoints. The lock is the kernel's (flock), so a killed run never
    leaves a stale one behind; a second run fails at once, naming the first run's process. A folder
    that cannot be written is named before the lock file is made in it."""
    _check_writable(exp)
    fd = os.open(exp.lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip() or "a process that wrote nothing"
            raise ExperimentInUseError(f"{exp.root} is in use by another run ({holder}); wait for it to end "
                                       "or stop it, or train into another --exp-dir") from None
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"inmsrl train, pid {os.getpid()} on {socket.gethostname()}, started {started}\n"
                  .encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


@dataclass(frozen=True)
class RunPlan:
    """What a run in an experiment directory does: ``fresh``, ``resume`` or ``skip``."""

    action: str
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def plan_run(config: dict[str, Any], exp_dir: str | os.PathLike, resume: str = "auto") -> RunPlan:
    """Decide what to do in ``exp_dir`` (see the module docstring) and write ``config.yaml``.

    Call in one process only (rank 0 or the launcher): a fresh start with ``resume="never"`` deletes the
    previous run's checkpoints, final weights, done marker and TensorBoard events.
    """
    if resume not in RESUME_MODES:
        raise ConfigError(f"resume mode must be one of {RESUME_MODES}, not {resume!r}")
    exp = ExperimentDir(Path(exp_dir))
    _check_writable(exp)
    if resume == "never":
        _discard_previous_run(exp)
        save_config(config, exp.config)
        return RunPlan("fresh")
    if exp.done.exists():
        previous = _checkpoint_config(exp.last) if exp.last.exists() else _yaml_config(exp.config)
        changes = changed_keys(previous, config)
        if all(is_descriptive(key) for key in changes):
            if changes:  # what the run is called changed, not what it computed
                save_config(config, exp.config)
            return RunPlan("skip", changed=changes, summary=exp.read_done())
        _refuse_unresumable(changes, exp, "a finished")
        if not exp.last.exists():
            raise ConfigError(f"{exp.root} is finished but has no {exp.last} to continue from; "
                              "use --resume never to train it again from scratch")
        exp.done.unlink()
        save_config(config, exp.config)
        return RunPlan("resume", changed=changes)
    if exp.last.exists():
        changes = changed_keys(_checkpoint_config(exp.last), config)
        _refuse_unresumable(changes, exp, "an interrupted")
        save_config(config, exp.config)
        return RunPlan("resume", changed=changes)
    save_config(config, exp.config)
    return RunPlan("fresh")


def _check_writable(exp: ExperimentDir) -> None:
    """Create the experiment directory and check that every folder and file a run writes can be
    written, so that a read-only one is refused up front with its name instead of failing midway."""
    try:
        exp.root.mkdir(parents=True, exist_ok=True)
        for folder in (exp.root, exp.checkpoints, exp.tensorboard):
            if folder.is_dir():
                with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test."):
                    pass
    except OSError as err:
        where = err.filename or exp.root
        raise ConfigError(f"experiment directory {exp.root}: cannot write {where}: "
                          f"{err.strerror or err}") from None
    if exp.log.exists() and not os.access(exp.log, os.W_OK):
        raise ConfigError(f"experiment directory {exp.root}: cannot write {exp.log}: permission denied")


def _refuse_unresumable(changes: dict[str, tuple[Any, Any]], exp: ExperimentDir, state: str) -> None:
    fixed = {key: change for key, change in changes.items() if not is_resumable(key)}
    if fixed:
        raise ConfigError(
            f"{exp.root} holds {state} run with a different configuration ({describe_changes(fixed)}); "
            f"only {', '.join(sorted(RESUMABLE_KEYS))} and the experiment: section may change when "
            "resuming. Use a new --exp-dir, or --resume never to discard the old run")


def _checkpoint_config(path: Path) -> dict[str, Any]:
    try:
        return load_checkpoint(path)["config"]
    except (CheckpointError, KeyError) as err:
        raise ConfigError(f"cannot resume from {path}: {err}; use --resume never to start over") from err


def _yaml_config(path: Path) -> dict[str, Any]:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _discard_previous_run(exp: ExperimentDir) -> None:
    for path in (exp.done, exp.final):
        path.unlink(missing_ok=True)
    for directory in (exp.checkpoints, exp.tensorboard):
        shutil.rmtree(directory, ignore_errors=True)
