"""Checkpoint files that survive a kill at any moment, and the random-number state they carry.

A checkpoint is written to a temporary file beside its destination, flushed and fsync'ed, and only
then renamed over the old one (``os.replace`` is atomic on POSIX), so a kill or a full disk during the
save leaves the previous checkpoint intact, never a truncated one. Everything stored loads with
``torch.load(weights_only=True)`` (tensors and plain Python values only), so a checkpoint can be read
without trusting it to run code.

The random state of python, numpy and torch (CPU and the current CUDA device) is part of the last
checkpoint so that a resumed run draws exactly the numbers an uninterrupted run would have drawn.
"""

from __future__ import annotations

import contextlib
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read; the message names the file."""


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj)`` to ``path`` via temp file + fsync + rename: all or nothing."""
    path = Path(path)
    _atomic_write(path, lambda stream: torch.save(obj, stream))


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    """Write ``text`` to ``path`` all or nothing (markers and small metadata files)."""
    _atomic_write(Path(path), lambda stream: stream.write(text.encode("utf-8")))


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (a crash of the machine right after could otherwise undo it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The dictionary saved at ``path``; a :class:`CheckpointError` naming it if it is unreadable."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError as err:
        raise CheckpointError(f"checkpoint {path} does not exist") from err
    except Exception as err:  # torch raises several types for a damaged or foreign file
        raise CheckpointError(f"checkpoint {path} cannot be loaded: {err}") from err
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, not a dictionary")
    return state


def capture_rng_state(device: torch.device) -> dict[str, Any]:
    """The python, numpy, torch and (on CUDA) current-device generator states, checkpoint-safe."""
    numpy_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"bit_generator": numpy_state["bit_generator"],
                  "key": numpy_state["state"]["key"].tolist(), "pos": int(numpy_state["state"]["pos"]),
                  "has_gauss": int(numpy_state["has_gauss"]), "gauss": float(numpy_state["gauss"])},
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Undo :func:`capture_rng_state`: every generator continues where it was captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state({"bit_generator": numpy_state["bit_generator"],
                         "state": {"key": np.asarray(numpy_state["key"], dtype=np.uint32),
                                   "pos": numpy_state["pos"]},
                         "has_gauss": numpy_state["has_gauss"], "gauss": numpy_state["gauss"]})
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all CUDA devices included) with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
