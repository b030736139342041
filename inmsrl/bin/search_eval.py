"""Hit rates of per-instrument search on pseudo pieces of a test dump (one instrument from song A, the
rest from song B): with only the target weighted the top hit should be A, with another instrument B.
See :mod:`inmsrl.search.pseudo_eval`."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="packed model file, final.pt or experiment directory")
    parser.add_argument("--dump", required=True, help="dumped test set (e.g. dump/test)")
    parser.add_argument("--instruments", nargs="+", default=None,
                        help="target instruments, each also weighted alone [every instrument that both "
                             "the model and the dump have]")
    parser.add_argument("--queries", type=int, default=50, help="pseudo pieces per target [%(default)s]")
    parser.add_argument("--window", type=float, default=10.0, help="seconds [%(default)s]")
    parser.add_argument("--hop", type=float, default=5.0, help="seconds [%(default)s]")
    parser.add_argument("--seed", type=int, default=0, help="[%(default)s]")
    parser.add_argument("--device", default="auto", help="[%(default)s]")
    parser.add_argument("--json", help="also write the rates to this JSON file")


def run(args: argparse.Namespace) -> int:
    from inmsrl.data.dump import Dump, DumpError
    from inmsrl.models.pretrained import ModelFileError
    from inmsrl.search.embedder import Embedder
    from inmsrl.search.pseudo_eval import PseudoEvalError, format_rates, pseudo_piece_rates

    try:
        embedder = Embedder.from_pretrained(args.model, device=args.device, window=args.window, hop=args.hop)
        dump = Dump.open(args.dump)
        instruments = args.instruments or [name for name in embedder.sources if name in dump.sources]
        result = pseudo_piece_rates(embedder, dump, instruments, args.queries, args.seed)
    except (ModelFileError, DumpError, PseudoEvalError) as err:
        print(f"inmsrl search-eval: {err}", file=sys.stderr)
        return 1
    print(format_rates(result))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)
    return 0
