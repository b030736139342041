"""What an experiment is, in its own words: the ``experiment:`` section of a training configuration.

Stage 8 and the report find their models by what they say they are, never by their directory names::

    experiment:
      family: cascade        # clean, cascade, direct, mss, or a new one: groups and orders the rows
      label: Cascade-FT      # the name in the tables
      base_model: cascade    # the experiment this one fine-tunes (E2E-FT, PAFT); null if none
      paft_data: null        # PAFT's inputs, pseudo or normal; null: not a PAFT model
      separates: true        # it separates sources: stage 8 scores its SDR (Table 4)
      scored: true           # false for intermediate models (Direct's pre-training, ...)

The section is checked like every other (:mod:`inmsrl.train.options`) and saved with the run's
``config.yaml``; it describes the run without changing what it computes, so changing it never
retrains: a finished run only rewrites its ``config.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from inmsrl.train.options import ConfigError, Option, check_section

SECTION = "experiment"

EXPERIMENT_OPTIONS = (
    Option("family", str, help="the model family: clean, cascade, direct, mss, ... (orders the rows)"),
    Option("label", str, help="the model's name in the tables"),
    Option("base_model", str, None, help="the experiment this one fine-tunes"),
    Option("paft_data", str, None, choices=("pseudo", "normal"), help="PAFT's inputs (null: no PAFT)"),
    Option("separates", bool, False, help="whether it separates sources (its SDR is scored)"),
    Option("scored", bool, True, help="whether stage 8 scores it"),
)


@dataclass(frozen=True)
class Description:
    """The ``experiment:`` section of the experiment ``name`` (and its run's seed)."""

    name: str
    family: str
    label: str
    base_model: str | None = None
    paft_data: str | None = None
    separates: bool = False
    scored: bool = True
    seed: int | None = None

    @property
    def is_paft(self) -> bool:
        return self.paft_data is not None

    @property
    def run_label(self) -> str:
        """The label of this run among several of one configuration (PAFT's seeds)."""
        return f"{self.label} (seed {self.seed})" if self.is_paft and self.seed is not None else self.label


def describe(name: str, config: dict[str, Any], source: str = "<config>") -> Description | None:
    """The description in ``config`` (None if it has no ``experiment:`` section)."""
    section = config.get(SECTION)
    if section is None:
        return None
    values = check_section(SECTION, section, EXPERIMENT_OPTIONS, source)
    seed = config.get("seed")
    return Description(name=name, seed=seed if isinstance(seed, int) else None, **values)


def read_description(exp_dir: str | Path) -> Description | None:
    """The description an experiment directory's ``config.yaml`` keeps (None if it keeps none)."""
    path = Path(exp_dir) / "config.yaml"
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    return describe(Path(exp_dir).name, config, str(path))


def finished_experiments(exp_root: str | Path) -> tuple[list[Description], list[str]]:
    """The finished experiments directly under ``exp_root`` (those with a ``done`` marker): their
    descriptions, and the names of those whose config keeps none (trained before the section existed)."""
    described, undescribed = [], []
    root = Path(exp_root)
    for exp in sorted(p for p in root.iterdir() if (p / "done").is_file()) if root.is_dir() else []:
        description = read_description(exp)
        if description is None:
            undescribed.append(exp.name)
        else:
            described.append(description)
    return described, undescribed
