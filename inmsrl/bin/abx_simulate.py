"""Simulate an Inst-Sim-ABX listening test on a synthetic corpus (from `inmsrl synth`).

For every instrument, --triplets (set, sample) pairs of 5 s clips where the instrument plays in the
split's tracks: an All-Diff triplet (X, A, B from three tracks) and a One-Shared one (X and Y from one
track, C from another). Simulated listeners answer "which of A/B is more similar to X?" by the
generator's hidden attributes of the instrument's part (timbre, rhythm, melody, tempo) with their own
weights and noise, never by "same song". The answers and clip dictionaries are written in the public
format (inst_sim_abx_answers.csv, dict_triplet_<tag>.json), so `inmsrl abx-table` and PAFT read them
like the real data; simulation.json records the options and the agreement reached.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from inmsrl.data.slakh import SOURCES, SPLITS


def _instruments(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in SOURCES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(SOURCES)}, "
                                         f"got {text!r}")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", type=Path, required=True,
                        help="synthetic corpus folder (Slakh redux layout with hidden attributes)")
    parser.add_argument("--split", choices=SPLITS, default="test",
                        help="tracks to draw clips from (default test)")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for the ABX answers and clip dictionaries")
    parser.add_argument("--triplets", type=int, default=240,
                        help="triplets per instrument and condition (default 240, as in the public data)")
    parser.add_argument("--min-answers", type=int, default=3, help="fewest answers per triplet (default 3)")
    parser.add_argument("--max-answers", type=int, default=17, help="most answers per triplet (default 17)")
    parser.add_argument("--instruments", type=_instruments, default=SOURCES,
                        help=f"comma-separated instruments (default {','.join(SOURCES)})")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of clips, listeners and answers (default 0)")


def run(args: argparse.Namespace) -> int:
    from inmsrl.data.abx import CONDITIONS, agreement_table, write_abx_set
    from inmsrl.data.abx_simulation import AbxSimulationError, SimulationOptions, simulate_abx_set

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        options = SimulationOptions(triplets=args.triplets, min_answers=args.min_answers,
                                    max_answers=args.max_answers, instruments=tuple(args.instruments),
                                    seed=args.seed)
        triplets = simulate_abx_set(args.corpus, args.split, options, log=log)
    except AbxSimulationError as err:
        print(f"inmsrl abx-simulate: error: {err}", file=sys.stderr)
        return 1
    write_abx_set(args.out, triplets)
    table = agreement_table(triplets)
    summary = {
        "corpus": str(args.corpus), "split": args.split,
        "options": {**asdict(options), "instruments": list(options.instruments),
                    "experiments": list(options.experiments)},
        "confident_share": {f"{instrument}/{condition}": round(cell.confident_triplets / cell.triplets, 4)
                            for (instrument, condition), cell in table.items()},
    }
    (args.out / "simulation.json").write_text(json.dumps(summary, indent=2) + "\n")
    answers = sum(t.num_responses for t in triplets)
    log(f"abx-simulate: {len(triplets)} triplets, {answers} answers -> {args.out}")
    for condition in CONDITIONS:
        cells = {instrument: cell for (instrument, cond), cell in table.items() if cond == condition}
        shares = ", ".join(f"{instrument} {cell.confident_triplets}/{cell.triplets}"
                           for instrument, cell in cells.items())
        log(f"abx-simulate: {condition}: triplets with > 75% agreement: {shares}")
    return 0
