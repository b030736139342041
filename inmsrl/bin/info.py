"""Print the versions, git revision and compute devices this installation runs with."""

from __future__ import annotations

import argparse
import json

from inmsrl.environment import describe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def run(args: argparse.Namespace) -> int:
    info = describe()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for name, version in value.items():
                print(f"  {name:14s} {version}")
        elif isinstance(value, list):
            print(f"{key}:")
            for item in value:
                print(f"  {item}")
        else:
            print(f"{key:16s}{value}")
    return 0
