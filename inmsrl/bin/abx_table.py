"""Count Inst-Sim-ABX triplets and responses per instrument and condition (the paper's Table 1).

Reads inst_sim_abx_answers.csv and its dict_triplet_*.json from --abx-dir, drops the attention checks,
pools each triplet's answers and keeps the triplets on which strictly more than --threshold of the
answers agree: those are the perceptual-agreement test data. Signs that the answers file lost rows
(e.g. a download cut short) are warned about on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from inmsrl.data.abx import (
    AGREEMENT_THRESHOLD,
    CONDITIONS,
    AbxFormatError,
    AbxTableCell,
    agreement_table,
    instruments_of,
    read_abx_set,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--abx-dir", required=True,
                        help="directory with inst_sim_abx_answers.csv and dict_triplet_*.json")
    parser.add_argument("--threshold", type=float, default=AGREEMENT_THRESHOLD,
                        help="keep triplets whose majority share is strictly above this (default: 0.75)")
    parser.add_argument("--drop-failed-subjects", action="store_true",
                        help="also drop every answer of subjects who missed an attention check "
                             "(the paper keeps them)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _format_table(table: dict[tuple[str, str], AbxTableCell], instruments: list[str],
                  threshold: float) -> list[str]:
    percent = f"{threshold * 100:g}%"
    rows: list[tuple[str, tuple[str, str] | None]] = [("The number of ABX data", None)]
    rows += [(f"all data ({cond})", ("triplets", cond)) for cond in CONDITIONS]
    rows += [(f"above {percent} ({cond})", ("confident_triplets", cond)) for cond in CONDITIONS]
    rows += [("The number of subject responses", None)]
    rows += [(f"all ({cond})", ("responses", cond)) for cond in CONDITIONS]
    rows += [(f"above {percent} ({cond})", ("confident_responses", cond)) for cond in CONDITIONS]
    label_width = max(len(label) for label, _ in rows) + 2
    widths = [max(len(name), 6) for name in instruments]
    header = "  ".join(f"{name:>{w}}" for name, w in zip(instruments, widths, strict=True))
    lines = [" " * label_width + header]
    for label, what in rows:
        if what is None:
            lines.append(label)
            continue
        field, condition = what
        values = [getattr(table.get((name, condition), AbxTableCell()), field) for name in instruments]
        lines.append(f"  {label:<{label_width - 2}}"
                     + "  ".join(f"{value:>{w}}" for value, w in zip(values, widths, strict=True)))
    return lines


def run(args: argparse.Namespace) -> int:
    try:
        abx = read_abx_set(args.abx_dir, drop_failed_subjects=args.drop_failed_subjects)
    except AbxFormatError as err:
        print(f"inmsrl abx-table: {err}", file=sys.stderr)
        return 1
    table = agreement_table(abx.triplets, args.threshold)
    instruments = instruments_of(abx.triplets)
    if args.json:
        cells: dict[str, dict[str, dict[str, int]]] = {}
        for (instrument, condition), cell in table.items():
            cells.setdefault(instrument, {})[condition] = asdict(cell)
        print(json.dumps({"abx_dir": str(abx.root), "threshold": args.threshold,
                          "responses": abx.num_responses, "attention_checks": abx.attention_checks,
                          "failed_attention_subjects": list(abx.failed_attention_subjects),
                          "warnings": list(abx.warnings), "table": cells}, indent=2))
        return 0
    print(f"Inst-Sim-ABX in {abx.root}: {len(abx.triplets)} triplets, {abx.num_responses} responses "
          f"({abx.attention_checks} attention checks dropped)")
    if abx.failed_attention_subjects:
        action = "dropped" if args.drop_failed_subjects else "kept, as in the paper"
        print(f"subjects who missed an attention check ({action}): "
              f"{', '.join(abx.failed_attention_subjects)}")
    print(f"confident = strictly more than {args.threshold:g} of the answers agree\n")
    print("\n".join(_format_table(table, instruments, args.threshold)))
    return 0
