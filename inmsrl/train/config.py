"""Training configurations: a YAML file, the trainer's defaults, and ``key=value`` overrides.

A configuration is a nested dict with four reserved top-level sections and any others a task wants
(``model:``, ``data:`` ...)::

    seed: 0                     # seeds python, numpy and torch (each DDP rank adds its rank)
    task: {name: mss, ...}      # which task factory builds the stage (inmsrl.train.task), + its options
    optim: {lr: 1.0e-4, ...}    # Adam
    trainer: {max_epochs: 400, patience: 100, ...}

``optim`` and ``trainer`` are checked against :data:`DEFAULTS`, so a typo such as
``trainer.max_epoch`` is an error rather than a silently ignored key. An override ``a.b.c=value``
changes one existing key and is typed by the value it replaces: the text is read as YAML and must give
the same type (an int is accepted for a float; a bool takes only ``true``/``false``; a str key takes the
text verbatim; a key whose value is ``null`` takes any YAML value; ``null`` is accepted where the default
is ``null``). ``+a.b=value`` adds a key that is not there yet.

On resume the new configuration must equal the one the checkpoint was trained with, except for the
keys in :data:`RESUMABLE_KEYS`: the stopping rule and cosmetics, which do not change what the epochs
already run computed. Everything else (learning rate, data, model, seed, precision) would make the
resumed run a different experiment than its checkpoint claims, so it is refused with the keys named.
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

RESERVED_SECTIONS = ("seed", "task", "optim", "trainer")

DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "optim": {
        "lr": 1.0e-4,             # Adam learning rate (paper §4.3: 1e-4, 5e-5 or 1e-5 per stage)
        "betas": [0.9, 0.999],
        "eps": 1.0e-8,
        "weight_decay": 0.0,
    },
    "trainer": {
        "max_epochs": 400,        # paper §4.3
        "patience": 100,          # stop when the validation loss has not improved for this many epochs
        "keep": "best",           # final.pt: the best epoch by validation loss, or the last epoch
        "max_steps_per_epoch": None,  # cap on training steps per epoch (quick runs); null: whole loader
        "max_valid_steps": None,  # cap on validation batches; null: whole loader
        "grad_clip": None,        # max L2 norm of the gradient; null: no clipping
        "device": "auto",         # auto (cuda if available) | cuda | cpu
        "bf16": None,             # bf16 autocast; null: on for CUDA, off on CPU
        "channels_last": None,    # channels_last memory format; null: on for CUDA, off on CPU
        "cudnn_benchmark": True,  # let cuDNN pick the fastest kernels (CUDA only)
        "find_unused_parameters": False,  # DDP option, for models with parameters a step may not use
        "progress_bar": None,     # tqdm on stderr; null: only when stderr is a terminal
        "log_interval": 50,       # training steps between TensorBoard step scalars
        "tensorboard": True,      # scalars into <exp-dir>/tensorboard
    },
}

# The type a trainer key defaulting to null takes when it is set (checked like any other key).
_NULLABLE_PROTOTYPES: dict[str, Any] = {
    "trainer.max_steps_per_epoch": 0, "trainer.max_valid_steps": 0, "trainer.grad_clip": 0.0,
    "trainer.bf16": False, "trainer.channels_last": False, "trainer.progress_bar": False,
}

# Keys that may differ between a checkpoint's configuration and the one that resumes it.
RESUMABLE_KEYS = frozenset({
    "trainer.max_epochs", "trainer.patience", "trainer.keep", "trainer.progress_bar", "trainer.log_interval",
    "trainer.tensorboard",
})


class ConfigError(ValueError):
    """A configuration or override that cannot be used; the message names the file and key."""


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read ``path`` and merge it over :data:`DEFAULTS`; errors name the file and the key."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as stream:
            raw = yaml.safe_load(stream)
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return resolve_config(raw, source=str(path))


def resolve_config(raw: Mapping[str, Any], source: str = "<config>") -> dict[str, Any]:
    """``raw`` merged over :data:`DEFAULTS`, with the reserved sections checked."""
    config = copy.deepcopy(DEFAULTS)
    for key, value in raw.items():
        if key in ("optim", "trainer"):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{key}' must be a mapping")
            for sub, sub_value in value.items():
                dotted = f"{key}.{sub}"
                if sub not in DEFAULTS[key]:
                    raise ConfigError(f"{source}: unknown key '{dotted}'{_suggestion(dotted, config)}")
                default = DEFAULTS[key][sub]
                config[key][sub] = _check_type(dotted, _NULLABLE_PROTOTYPES.get(dotted, default), sub_value,
                                               source, nullable=default is None)
        else:
            config[key] = copy.deepcopy(value)
    if not isinstance(config["seed"], int) or isinstance(config["seed"], bool):
        raise ConfigError(f"{source}: 'seed' must be an integer, got {config['seed']!r}")
    task = config.get("task")
    if not isinstance(task, dict) or not isinstance(task.get("name"), str):
        raise ConfigError(f"{source}: needs a 'task' mapping with a 'name' (the task that trains this "
                          "stage, see inmsrl.train.task)")
    return config


def apply_overrides(config: Mapping[str, Any], overrides: Iterable[str],
                    source: str = "<config>") -> dict[str, Any]:
    """A copy of ``config`` with each ``dotted.key=value`` (or ``+dotted.key=value``) applied."""
    config = copy.deepcopy(dict(config))
    for override in overrides:
        key, sep, text = override.partition("=")
        key = key.strip()
        if not sep or not key.lstrip("+"):
            raise ConfigError(f"override {override!r}: expected key=value, e.g. optim.lr=1e-4")
        adding = key.startswith("+")
        path = key.lstrip("+").split(".")
        parent = config
        for depth, part in enumerate(path[:-1]):
            child = parent.get(part) if isinstance(parent, dict) else None
            if child is None and adding:
                child = parent[part] = {}
            if not isinstance(child, dict):
                where = ".".join(path[:depth + 1])
                raise ConfigError(f"override {override!r}: unknown key '{where}' in {source}"
                                  f"{_suggestion(key.lstrip('+'), config)}")
            parent = child
        name, dotted = path[-1], ".".join(path)
        if adding:
            if name in parent:
                raise ConfigError(f"override {override!r}: '{dotted}' already exists in {source}; "
                                  f"drop the '+' to change it")
            parent[name] = _parse_yaml(text, override)
            continue
        if name not in parent:
            raise ConfigError(f"override {override!r}: unknown key '{dotted}' in {source}"
                              f"{_suggestion(dotted, config)} (prefix it with '+' to add a new key)")
        current = parent[name]
        if isinstance(current, dict):
            raise ConfigError(f"override {override!r}: '{dotted}' is a section; set its keys one by one")
        default = _default_of(path)
        prototype = current if current is not None else _NULLABLE_PROTOTYPES.get(dotted)
        value = text if isinstance(prototype, str) else _parse_yaml(text, override)
        parent[name] = _check_type(dotted, prototype, value, f"override {override!r}",
                                   nullable=current is None or default is None, text=text)
    return resolve_config(config, source=source)


def save_config(config: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write the resolved configuration as YAML (what a later run or a reader compares against)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
    os.replace(tmp, path)


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (old value, new value)}`` for every leaf that differs between two configs.

    A key missing from ``old`` whose new value is the trainer default counts as unchanged, so that a
    checkpoint written before a default was added still resumes.
    """
    old_flat, new_flat = _flatten(old), _flatten(new)
    defaults = _flatten(DEFAULTS)
    changes = {}
    for key in sorted(set(old_flat) | set(new_flat)):
        before, after = old_flat.get(key, _MISSING), new_flat.get(key, _MISSING)
        if before is _MISSING and key in defaults and after == defaults[key]:
            continue
        if before != after:
            changes[key] = (before, after)
    return changes


def describe_changes(changes: Mapping[str, tuple[Any, Any]]) -> str:
    """``key: old -> new`` lines for error and log messages."""
    def show(value: Any) -> str:
        return "(absent)" if value is _MISSING else repr(value)
    return "; ".join(f"{key}: {show(old)} -> {show(new)}" for key, (old, new) in changes.items())


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


_MISSING: Any = _Missing()


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _default_of(path: list[str]) -> Any:
    node: Any = DEFAULTS
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _parse_yaml(text: str, override: str) -> Any:
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"override {override!r}: value is not valid YAML: {err}") from err


def _check_type(key: str, current: Any, value: Any, where: str, *, nullable: bool,
                text: str | None = None) -> Any:
    """``value`` if it may replace ``current`` (see the module docstring), else a ConfigError."""
    if value is None:
        if nullable:
            return None
        raise ConfigError(f"{where}: '{key}' cannot be null (it is a {type(current).__name__})")
    if current is None:
        return value
    if isinstance(current, bool):
        if text is not None and text.strip().lower() not in ("true", "false"):
            raise ConfigError(f"{where}: '{key}' is a bool and takes only true or false, not {text!r}")
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: '{key}' is a bool and takes only true or false, not {value!r}")
        return value
    if isinstance(value, bool):
        raise ConfigError(f"{where}: '{key}' is a {type(current).__name__}, not a bool ({value!r})")
    if isinstance(current, float) and isinstance(value, int | str):
        # PyYAML reads 1e-4 (no dot) as a string, so a float key converts numeric text itself.
        try:
            return float(value)
        except ValueError:
            pass
    if not isinstance(value, type(current)):
        raise ConfigError(f"{where}: '{key}' is a {type(current).__name__}, "
                          f"got {type(value).__name__} {value!r}")
    return value


def _suggestion(dotted: str, config: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(dotted, list(_flatten(config)), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
