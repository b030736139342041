"""Quick check of trained models on a dumped test set: SDR of separators, 5-NN same-song accuracy.

A small report for a recipe's training stages before full scoring: SDR (museval, median over 1 s
frames and tracks) of the separators found in stage-3 experiments (``--separators exp/mss/{source}``)
and of any model with separators, against the unprocessed mixture; and MES-Normal (leave-one-out 5-NN
music-ID accuracy on 10 s segments, per instrument) of every embedding model, with chance level.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dump", required=True, help="dumped test set (e.g. dump/test)")
    parser.add_argument("--separators", help="stage-3 experiments, '{source}' standing for the instrument")
    parser.add_argument("--sources", nargs="+", default=None,
                        help="instruments of --separators [every source of the dump with a finished "
                             "separator there]")
    parser.add_argument("--models", nargs="*", default=[], metavar="EXP_DIR",
                        help="experiments of embedding models (Clean, Cascade, Cascade-FT, Direct, ...)")
    parser.add_argument("--segment-seconds", type=float, default=10.0, help="[%(default)s]")
    parser.add_argument("--json", help="also write the numbers to this JSON file")


def run(args: argparse.Namespace) -> int:
    from inmsrl.data.dump import Dump
    from inmsrl.data.segments import ensure_segment_tables
    from inmsrl.eval.embeddings import embed_segments
    from inmsrl.eval.mes import mes_normal
    from inmsrl.eval.sdr import sdr_scores
    from inmsrl.tasks.common import (
        TaskConfigError,
        load_separator_set,
        load_trained,
        trained_separator_sources,
    )

    dump = Dump.open(args.dump)
    results: dict[str, dict] = {"sdr": {}, "mes_normal": {}}
    chance: dict[str, float] = {}
    try:
        if args.separators:
            names = args.sources or trained_separator_sources(args.separators, dump.sources)
            separator = load_separator_set(args.separators, names, dump.sources)
            model_sdr, mixture_sdr = sdr_scores(separator, dump)
            results["sdr"]["mixture"] = mixture_sdr
            results["sdr"]["MSS (stage 3)"] = model_sdr
        table = ensure_segment_tables(dump, [args.segment_seconds])[args.segment_seconds]
        for exp_dir in args.models:
            model = load_trained(exp_dir, dump.sources)
            if model.separates:
                results["sdr"][exp_dir] = sdr_scores(model, dump)[0]
            scores = mes_normal(embed_segments(model, dump, table))
            results["mes_normal"][exp_dir] = {name: score.accuracy for name, score in scores.items()}
            chance.update({name: score.chance for name, score in scores.items()})
    except TaskConfigError as err:
        print(f"inmsrl quick-eval: {err}", file=sys.stderr)
        return 1
    if chance:
        results["mes_normal"]["chance"] = chance

    _print_table("SDR (dB, median over frames and tracks)", results["sdr"])
    _print_table(f"MES-Normal (%, 5-NN same-song accuracy, {args.segment_seconds:g} s segments)",
                 {k: {s: 100 * v for s, v in row.items()} for k, row in results["mes_normal"].items()})
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    return 0


def _print_table(title: str, rows: dict[str, dict[str, float]]) -> None:
    if not rows:
        return
    columns = list(dict.fromkeys(column for row in rows.values() for column in row))
    width = max(len(name) for name in rows) + 2
    print(f"\n{title}")
    print(" " * width + "".join(f"{c:>10}" for c in columns))
    for name, row in rows.items():
        print(f"{name:<{width}}" + "".join(f"{row.get(c, float('nan')):>10.2f}" for c in columns))
