"""Compute every stage-8 score from the stored embeddings and SDR files into scores.json.

MES-Normal, MES-Pseudo, Table 6 (target / non-target MES-Pseudo of the visualisation set), perceptual
agreement with the ABX listeners (All-Diff and One-Shared, Clopper-Pearson intervals; on PAFT's
held-out 30 % when a PAFT model is scored), SDR medians, and the t-SNE coordinates of the figure.
Reads <scores-dir>/embeddings/<model>/ and <scores-dir>/sdr/ (``inmsrl embed``, ``inmsrl sdr``).
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scores-dir", required=True, help="exp/scores")
    parser.add_argument("--models", nargs="*", help="models to score [every one with embeddings]")
    parser.add_argument("--abx-dir", help="the ABX set the abx embeddings were made from")
    parser.add_argument("--abx-split", choices=("auto", "all", "test", "train"), default="auto",
                        help="triplets scored: auto (as the paper: PAFT models on the held-out 30 %%, "
                             "the others on all confident triplets, and also on the held-out share), all, "
                             "test (the held-out share), or train: the share PAFT learns from, to see "
                             "whether PAFT fits its own triplets [%(default)s]")
    parser.add_argument("--abx-train-fraction", type=float, default=0.7, help="PAFT's split [%(default)s]")
    parser.add_argument("--seed", type=int, default=0, help="PAFT split and t-SNE seed [%(default)s]")
    parser.add_argument("--k", type=int, default=5, help="neighbours of the music-ID vote [%(default)s]")
    parser.add_argument("--no-tsne", action="store_true", help="skip the t-SNE of the figure")


def run(args: argparse.Namespace) -> int:
    from inmsrl.data.abx import AbxFormatError
    from inmsrl.eval.embeddings import EmbeddingFileError
    from inmsrl.eval.scoring import SCORES_FILE, score_all

    try:
        scores = score_all(args.scores_dir, args.models, args.abx_dir, args.abx_split,
                           args.abx_train_fraction, args.seed, args.k, not args.no_tsne)
    except (EmbeddingFileError, AbxFormatError, KeyError, ValueError) as err:
        print(f"inmsrl score: {err}", file=sys.stderr)
        return 1
    print(f"scored {', '.join(scores['models']) or 'no model'}; wrote {args.scores_dir}/{SCORES_FILE}")
    return 0
