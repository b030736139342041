"""Declared options: what a section of a training configuration may hold, checked in one place.

Every section the trainer reads (``optim``, ``trainer``, ``experiment``) and every task's ``task:``
section is a tuple of :class:`Option`, one line each::

    options = (
        Option("train_dump", str),                                 # required: no default
        Option("batch_size", int, 64, minimum=1),
        Option("margin", float, 0.2, minimum=0),
        Option("triplets", str, "pseudo", choices=("pseudo", "s4")),
        Option("init", str, None),                                 # a None default: may be null
    )

:func:`check_section` takes a section as written and gives it back complete: each value checked
against its option (type, bounds, choices; numbers must be finite) and every option not given set to
its default. A key no option declares is an error with the nearest known key suggested, so a misspelt
``batch_sise: 8`` stops the run instead of training with the default batch size. Errors name the
file (or override), the dotted key and the value.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A configuration or override that cannot be used; the message names the file and key."""


class _Required:
    def __repr__(self) -> str:
        return "(required)"


REQUIRED: Any = _Required()

_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string", list: "a list"}
_PLURAL_NAMES = {int: "integers", float: "numbers", bool: "booleans", str: "strings"}


@dataclass(frozen=True)
class Option:
    """One key of a section: its type (int, float, bool, str or list), default (REQUIRED: none, so the
    key must be given; None: the key may be null), and constraints. ``minimum``/``maximum`` are
    inclusive bounds, ``above``/``below`` exclusive ones; for a list they apply to every item, which
    must be of type ``items``."""

    name: str
    type: type
    default: Any = REQUIRED
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    below: float | None = None
    choices: tuple[Any, ...] | None = None
    items: type | None = None
    help: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def nullable(self) -> bool:
        return self.default is None

    def prototype(self) -> Any:
        """A value of the option's type (what an override of a null value is parsed as)."""
        return self.type()

    def describe(self) -> str:
        """``an integer >= 1``, ``one of pseudo, s4``: what the option takes, for messages."""
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices) + (" or null" if self.nullable else "")
        what = _TYPE_NAMES.get(self.type, self.type.__name__)
        if self.type is list and self.items is not None:
            what += f" of {_PLURAL_NAMES.get(self.items, self.items.__name__)}"
        bounds = [f"{sign} {value:g}" for sign, value in ((">=", self.minimum), ("<=", self.maximum),
                                                          (">", self.above), ("<", self.below))
                  if value is not None]
        return what + (" " + " and ".join(bounds) if bounds else "") + (" or null" if self.nullable else "")

    def check(self, value: Any, key: str, where: str) -> Any:
        """``value`` as the option's type (an int is accepted for a float, numeric text too: PyYAML
        reads 1e-4 as a string), or a ConfigError naming ``key`` and the value."""
        if value is None:
            if self.nullable:
                return None
            raise ConfigError(f"{where}: '{key}' must be set to {self.describe()} (it is null)")
        if self.type is list:
            if not isinstance(value, list):
                raise self._bad(value, key, where)
            return [self._scalar(item, self.items, key, where, whole=value) if self.items else item
                    for item in value]
        return self._scalar(value, self.type, key, where)

    def _scalar(self, value: Any, kind: type, key: str, where: str, whole: Any = None) -> Any:
        shown = value if whole is None else whole
        if kind is bool or isinstance(value, bool):
            if not (kind is bool and isinstance(value, bool)):
                raise self._bad(shown, key, where)
        elif kind is float:
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    raise self._bad(shown, key, where) from None
            if not isinstance(value, int | float):
                raise self._bad(shown, key, where)
            value = float(value)
        elif not isinstance(value, kind):
            raise self._bad(shown, key, where)
        if isinstance(value, float) and not math.isfinite(value):
            raise self._bad(shown, key, where)
        if self.choices is not None and value not in self.choices:
            raise self._bad(shown, key, where)
        if isinstance(value, int | float) and not isinstance(value, bool) and not self._within(value):
            raise self._bad(shown, key, where)
        return value

    def _within(self, value: float) -> bool:
        return ((self.minimum is None or value >= self.minimum)
                and (self.maximum is None or value <= self.maximum)
                and (self.above is None or value > self.above)
                and (self.below is None or value < self.below))

    def _bad(self, value: Any, key: str, where: str) -> ConfigError:
        return ConfigError(f"{where}: '{key}' must be {self.describe()}, not {value!r}")


def defaults(options: Iterable[Option]) -> dict[str, Any]:
    """``{name: default}`` of the options that have one."""
    return {o.name: o.default for o in options if not o.required}


def check_section(section: str, values: Any, options: Sequence[Option], where: str, owner: str = "",
                  partial: bool = False) -> dict[str, Any]:
    """``values`` (the ``section:`` mapping as written) checked against ``options`` and completed with
    their defaults; ``owner`` (e.g. "task 'mss'") says whose options these are in messages. ``partial``
    lets a required option be null or absent (left null or out): a file whose overrides are still to
    come (the recipe's stage sets ``task.init``)."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: '{section}' must be a mapping, not {values!r}")
    known = {o.name: o for o in options}
    unknown = [key for key in values if key not in known]
    if unknown:
        key = unknown[0]
        whose = f" of {owner}" if owner else ""
        close = suggest(f"{section}.{key}", [f"{section}.{name}" for name in known])
        raise ConfigError(f"{where}: unknown key '{section}.{key}'{whose}{close} (known: {', '.join(known)})")
    checked = {}
    for option in options:
        key = f"{section}.{option.name}"
        if option.name in values:
            value = values[option.name]
            checked[option.name] = None if partial and value is None else option.check(value, key, where)
        elif option.required:
            if partial:
                continue
            whose = f" for {owner}" if owner else ""
            raise ConfigError(f"{where}: '{key}' is required{whose} ({option.describe()})")
        else:
            checked[option.name] = _copy(option.default)
    return checked


def suggest(key: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the candidate closest to ``key``, or nothing."""
    close = difflib.get_close_matches(key, list(candidates), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value
