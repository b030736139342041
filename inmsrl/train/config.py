"""Training configurations: YAML files (which may inherit), declared options, and ``key=value`` overrides.

A configuration is a nested dict of reserved top-level sections and the ones its task reads
(``model:``)::

    base: cascade.yaml          # optional: inherit that file (path relative to this one), then override
    experiment: {family: cascade, label: Cascade, ...}  # what the run is (inmsrl.train.description)
    seed: 0                     # seeds python, numpy and torch (each DDP rank adds its rank)
    task: {name: mss, ...}      # which task factory builds the stage (inmsrl.train.task), + its options
    optim: {lr: 1.0e-4, ...}    # Adam
    trainer: {max_epochs: 400, patience: 100, ...}

Every section but the task's own ones is checked against declared options (:mod:`inmsrl.train.options`):
``optim`` and ``trainer`` against :data:`OPTIM_OPTIONS` and :data:`TRAINER_OPTIONS`, ``task`` against
the options its task declares, ``experiment`` against the description's. An unknown key anywhere — a
top-level ``traner:``, a ``task.batch_sise`` — and a bad value (``task.batch_size: -8``,
``optim.lr: .nan``) are errors naming the file, the key and the value, with the nearest known key
suggested; options not given take their defaults, so the resolved configuration is complete.

``base:`` chains merge from the oldest ancestor down: mappings merge key by key, any other value (a
list too) is replaced. A cycle is an error naming the files.

An override ``a.b.c=value`` changes one existing key (every declared option exists once resolved).
A declared option parses the text by its type (a string option takes the text verbatim; a bool takes
only ``true``/``false``); any other key is typed by the value it replaces (the text is read as YAML
and must give the same type; an int is accepted for a float; a ``null`` value takes any YAML value).
``+a.b=value`` adds a key that is not there yet.

On resume the new configuration must equal the one the checkpoint was trained with, except for the
keys in :data:`RESUMABLE_KEYS` and the ``experiment:`` section: the stopping rule, cosmetics and the
description, which do not change what the epochs already run computed. Everything else (learning
rate, data, model, seed, precision) would make the resumed run a different experiment than its
checkpoint claims, so it is refused with the keys named.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from inmsrl.train.description import EXPERIMENT_OPTIONS
from inmsrl.train.description import SECTION as EXPERIMENT
from inmsrl.train.options import ConfigError, Option, check_section, defaults, suggest
from inmsrl.train.task import Task, declared_options

__all__ = ["ConfigError", "DEFAULTS", "RESUMABLE_KEYS", "apply_overrides", "changed_keys", "dump_config",
           "load_config", "resolve_config", "save_config"]

RESERVED_SECTIONS = ("seed", "task", "optim", "trainer", EXPERIMENT)

SEED = Option("seed", int, 0, minimum=0, help="seeds python, numpy and torch (each DDP rank adds its rank)")

OPTIM_OPTIONS = (
    Option("lr", float, 1.0e-4, above=0, help="Adam learning rate (paper §4.3: 1e-4, 5e-5 or 1e-5)"),
    Option("betas", list, [0.9, 0.999], items=float, minimum=0, below=1),
    Option("eps", float, 1.0e-8, above=0),
    Option("weight_decay", float, 0.0, minimum=0),
)

TRAINER_OPTIONS = (
    Option("max_epochs", int, 400, minimum=1, help="paper §4.3"),
    Option("patience", int, 100, minimum=1,
           help="stop when the validation loss has not improved for this many epochs"),
    Option("keep", str, "best", choices=("best", "last"),
           help="final.pt: the best epoch by validation loss, or the last epoch"),
    Option("max_steps_per_epoch", int, None, minimum=1,
           help="cap on training steps per epoch (quick runs); null: whole loader"),
    Option("max_valid_steps", int, None, minimum=1, help="cap on validation batches; null: whole loader"),
    Option("grad_clip", float, None, above=0, help="max L2 norm of the gradient; null: no clipping"),
    Option("device", str, "auto", choices=("auto", "cuda", "cpu"), help="auto: cuda if available"),
    Option("bf16", bool, None, help="bf16 autocast; null: on for CUDA, off on CPU"),
    Option("channels_last", bool, None, help="channels_last memory format; null: on for CUDA, off on CPU"),
    Option("cudnn_benchmark", bool, True, help="let cuDNN pick the fastest kernels (CUDA only)"),
    Option("find_unused_parameters", bool, False,
           help="DDP option, for models with parameters a step may not use"),
    Option("progress_bar", bool, None, help="tqdm on stderr; null: only when stderr is a terminal"),
    Option("log_interval", int, 50, minimum=1, help="training steps between TensorBoard step scalars"),
    Option("tensorboard", bool, True, help="scalars into <exp-dir>/tensorboard"),
)

DEFAULTS: dict[str, Any] = {"seed": SEED.default, "optim": defaults(OPTIM_OPTIONS),
                            "trainer": defaults(TRAINER_OPTIONS)}

# Keys that may differ between a checkpoint's configuration and the one that resumes it (and every
# key of the experiment: section).
RESUMABLE_KEYS = frozenset({
    "trainer.max_epochs", "trainer.patience", "trainer.keep", "trainer.progress_bar", "trainer.log_interval",
    "trainer.tensorboard",
})


def load_config(path: str | os.PathLike, overrides: Iterable[str] = (), *,
                partial: bool = False) -> dict[str, Any]:
    """Read ``path`` (and the files it inherits from), apply ``overrides`` and resolve the result;
    errors name the file and key. A required option may be null in the file if an override sets it;
    with ``partial`` it may stay unset (for showing a configuration, not for training with it)."""
    path = Path(path)
    raw, bases = _read_inheriting(path, ())
    source = f"{path} (inheriting {' <- '.join(str(b) for b in bases)})" if bases else str(path)
    return apply_overrides(resolve_config(raw, source, partial=True), overrides, source, partial=partial)


def resolve_config(raw: Mapping[str, Any], source: str = "<config>", *,
                   partial: bool = False) -> dict[str, Any]:
    """``raw`` checked against the declared options and completed with their defaults (``partial``:
    see :func:`~inmsrl.train.options.check_section`)."""
    task = raw.get("task")
    if not isinstance(task, dict) or not isinstance(task.get("name"), str):
        raise ConfigError(f"{source}: needs a 'task' mapping with a 'name' (the task that trains this "
                          "stage, see inmsrl.train.task)")
    task_options, task_sections = _task_declarations(task["name"])
    known = (*RESERVED_SECTIONS, *task_sections)
    for key in raw:
        if key not in known:
            hint = " (a file's 'base' is read by load_config)" if key == "base" else suggest(str(key), known)
            raise ConfigError(f"{source}: unknown top-level key '{key}'{hint} (known: {', '.join(known)})")
    config: dict[str, Any] = {}
    if EXPERIMENT in raw:
        config[EXPERIMENT] = check_section(EXPERIMENT, raw[EXPERIMENT], EXPERIMENT_OPTIONS, source)
    config["seed"] = SEED.check(raw.get("seed", SEED.default), "seed", source)
    if task_options is None:
        config["task"] = copy.deepcopy(task)
    else:
        config["task"] = check_section("task", task, (Option("name", str), *task_options), source,
                                       owner=f"task {task['name']!r}", partial=partial)
    for key, value in raw.items():
        if key not in config and key not in ("optim", "trainer"):
            config[key] = copy.deepcopy(value)
    config["optim"] = check_section("optim", raw.get("optim", {}), OPTIM_OPTIONS, source)
    config["trainer"] = check_section("trainer", raw.get("trainer", {}), TRAINER_OPTIONS, source)
    return config


def apply_overrides(config: Mapping[str, Any], overrides: Iterable[str], source: str = "<config>", *,
                    partial: bool = False) -> dict[str, Any]:
    """A copy of ``config`` with each ``dotted.key=value`` (or ``+dotted.key=value``) applied, resolved."""
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
                                  f"{suggest(key.lstrip('+'), _flatten(config))}")
            parent = child
        name, dotted = path[-1], ".".join(path)
        if adding:
            if name in parent:
                raise ConfigError(f"override {override!r}: '{dotted}' already exists in {source}; "
                                  f"drop the '+' to change it")
            parent[name] = _parse_yaml(text, override)
            continue
        option = _declared_option(config, path)
        if name not in parent and option is None:
            raise ConfigError(f"override {override!r}: unknown key '{dotted}' in {source}"
                              f"{suggest(dotted, _flatten(config))} (prefix it with '+' to add a new key)")
        current = parent.get(name)
        if isinstance(current, dict):
            raise ConfigError(f"override {override!r}: '{dotted}' is a section; set its keys one by one")
        if option is not None:
            parent[name] = _parse_declared(option, dotted, text, override)
        else:
            value = text if isinstance(current, str) else _parse_yaml(text, override)
            parent[name] = _check_type(dotted, current, value, f"override {override!r}", text=text)
    return resolve_config(config, source=source, partial=partial)


class _ConfigDumper(yaml.SafeDumper):
    """Block style, except a list of plain values on one line (``channels: [4, 8, 16]``)."""

    def represent_list(self, data: list[Any]) -> yaml.Node:
        flat = all(not isinstance(item, dict | list) for item in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


_ConfigDumper.add_representer(list, _ConfigDumper.represent_list)


def dump_config(config: Mapping[str, Any]) -> str:
    """``config`` as YAML, in its own key order."""
    return yaml.dump(dict(config), Dumper=_ConfigDumper, sort_keys=False, allow_unicode=True)


def save_config(config: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write the resolved configuration as YAML (what a later run or a reader compares against)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dump_config(config), encoding="utf-8")
    os.replace(tmp, path)


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (old value, new value)}`` for every leaf that differs between two configs.

    A key missing from ``old`` whose new value is its declared default counts as unchanged, so that a
    checkpoint written before an option was declared (or a default filled in) still resumes.
    """
    old_flat, new_flat = _flatten(old), _flatten(new)
    defaults_flat = _flatten(_defaults_of(new))
    changes = {}
    for key in sorted(set(old_flat) | set(new_flat)):
        before, after = old_flat.get(key, _MISSING), new_flat.get(key, _MISSING)
        if before is _MISSING and key in defaults_flat and after == defaults_flat[key]:
            continue
        if before != after:
            changes[key] = (before, after)
    return changes


def is_descriptive(key: str) -> bool:
    """Whether ``key`` (dotted) belongs to the ``experiment:`` description of a run."""
    return key.split(".")[0] == EXPERIMENT


def is_resumable(key: str) -> bool:
    """Whether a change of ``key`` leaves what a run has computed valid (see the module docstring)."""
    return key in RESUMABLE_KEYS or is_descriptive(key)


def describe_changes(changes: Mapping[str, tuple[Any, Any]]) -> str:
    """``key: old -> new`` lines for error and log messages."""
    def show(value: Any) -> str:
        return "(absent)" if value is _MISSING else repr(value)
    return "; ".join(f"{key}: {show(old)} -> {show(new)}" for key, (old, new) in changes.items())


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


_MISSING: Any = _Missing()


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as stream:
            raw = yaml.safe_load(stream)
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return raw


def _read_inheriting(path: Path, chain: tuple[Path, ...]) -> tuple[dict[str, Any], list[Path]]:
    """``path``'s content merged over the files its ``base:`` chain names, and that chain."""
    if path.resolve() in [p.resolve() for p in chain]:
        cycle = " -> ".join(str(p) for p in (*chain, path))
        raise ConfigError(f"config files inherit from each other in a cycle: {cycle}")
    raw = _read_yaml(path)
    base = raw.pop("base", None)
    if base is None:
        return raw, []
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: 'base' must be the path of a config file (relative to this one), "
                          f"not {base!r}")
    base_path = path.parent / base
    if not base_path.is_file():
        raise ConfigError(f"{path}: base {base!r} does not exist ({base_path})")
    inherited, bases = _read_inheriting(base_path, (*chain, path))
    return _merge(inherited, raw), [base_path, *bases]


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _task_declarations(name: str) -> tuple[tuple[Option, ...] | None, tuple[str, ...]]:
    """The options and sections task ``name`` declares; an unknown task is reported when training
    starts (build_task), so that a config can still be read and printed."""
    try:
        return declared_options(name)
    except KeyError:
        return None, Task.sections


def _declared_option(config: Mapping[str, Any], path: list[str]) -> Option | None:
    """The option that declares ``path`` (section.name) in ``config``, if one does."""
    if len(path) != 2:
        return None
    section, name = path
    if section == "task":
        declared, _ = _task_declarations(config["task"]["name"])
    else:
        declared = {"optim": OPTIM_OPTIONS, "trainer": TRAINER_OPTIONS,
                    EXPERIMENT: EXPERIMENT_OPTIONS}.get(section)
    return next((o for o in declared or () if o.name == name), None)


def _defaults_of(config: Mapping[str, Any]) -> dict[str, Any]:
    """Every declared default for ``config``'s task (and description, if it has one)."""
    result = copy.deepcopy(DEFAULTS)
    if EXPERIMENT in config:
        result[EXPERIMENT] = defaults(EXPERIMENT_OPTIONS)
    task = config.get("task")
    if isinstance(task, Mapping) and isinstance(task.get("name"), str):
        declared, _ = _task_declarations(task["name"])
        if declared is not None:
            result["task"] = defaults(declared)
    return result


def _parse_declared(option: Option, key: str, text: str, override: str) -> Any:
    """An override's text as a value of ``option`` (checked again when the config is resolved)."""
    where = f"override {override!r}"
    stripped = text.strip()
    if option.nullable and stripped in ("null", "~"):
        return None
    if option.type is str:
        return text
    if option.type is bool and stripped.lower() not in ("true", "false"):
        raise ConfigError(f"{where}: '{key}' is a bool and takes only true or false, not {text!r}")
    return option.check(_parse_yaml(text, override), key, where)


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _parse_yaml(text: str, override: str) -> Any:
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"override {override!r}: value is not valid YAML: {err}") from err


def _check_type(key: str, current: Any, value: Any, where: str, *, text: str | None = None) -> Any:
    """``value`` if it may replace ``current`` (an undeclared key, see the module docstring)."""
    if current is None:
        return value
    if value is None:
        raise ConfigError(f"{where}: '{key}' cannot be null (it is a {type(current).__name__})")
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
