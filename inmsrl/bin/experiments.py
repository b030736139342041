"""List the finished experiments of a recipe by what their configs say they are (their ``experiment:``
section): one tab-separated line each, ``name  paft_data  separates  family  label`` (``-`` for no PAFT),
after a ``#`` header line. Stage 8 scores what this lists: every finished experiment directly under
--exp-dir that is to be scored (``scored: true``), or the ones --models names. An experiment trained
before its config had the section is named on stderr and left out; re-run its training stage, which
only writes the section into its config.yaml.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--exp-dir", required=True, help="the recipe's experiments (exp)")
    parser.add_argument("--models", nargs="*", default=None,
                        help="list only these experiments (each must be finished and described) "
                             "[every finished one with scored: true]")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from inmsrl.train.config import ConfigError
    from inmsrl.train.description import finished_experiments

    try:
        described, undescribed = finished_experiments(args.exp_dir)
    except ConfigError as err:
        print(f"inmsrl experiments: {err}", file=sys.stderr)
        return 1
    by_name = {d.name: d for d in described}
    if args.models:
        missing = [m for m in args.models if m not in by_name]
        if missing:
            why = {m: ("its config.yaml has no experiment: section" if m in undescribed else
                       "not finished" if (Path(args.exp_dir) / m).is_dir() else "no such experiment")
                   for m in missing}
            reasons = "; ".join(f"{args.exp_dir}/{m}: {why[m]}" for m in missing)
            print(f"inmsrl experiments: cannot list {reasons}", file=sys.stderr)
            return 1
        chosen = [by_name[m] for m in args.models]
    else:
        chosen = [d for d in described if d.scored]
        for name in undescribed:
            print(f"inmsrl experiments: WARNING: {args.exp_dir}/{name} is finished but its config.yaml has "
                  "no experiment: section (trained before configs had one); left out. Re-run its training "
                  "stage (it only records the section) or add the section to its config.yaml.",
                  file=sys.stderr)
    print("# name\tpaft_data\tseparates\tfamily\tlabel")
    for d in chosen:
        print("\t".join([d.name, d.paft_data or "-", str(d.separates).lower(), d.family, d.label]))
    return 0
