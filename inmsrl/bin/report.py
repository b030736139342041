"""Write RESULTS.md (the paper's Tables 1-6), RESULTS.json and the t-SNE figure from scores.json.

Reads what ``inmsrl score`` wrote in --scores-dir; adds this machine's environment (date, versions,
git revision, devices). The JSON and the figure (<stem>_tsne.png) go beside --out.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scores-dir", required=True, help="exp/scores")
    parser.add_argument("--out", default="RESULTS.md", help="[%(default)s]")
    parser.add_argument("--title", default="Results", help="heading of the report [%(default)s]")
    parser.add_argument("--mean-sources", nargs="+", default=None,
                        help="instruments averaged in Table 5's mean column [every instrument of the table]")


def run(args: argparse.Namespace) -> int:
    from inmsrl.environment import describe
    from inmsrl.eval.report import write_report

    try:
        written = write_report(args.scores_dir, args.out, describe(), args.title, args.mean_sources)
    except (FileNotFoundError, ValueError) as err:
        print(f"inmsrl report: {err}", file=sys.stderr)
        return 1
    print("wrote " + ", ".join(str(p) for p in written.values()))
    return 0
