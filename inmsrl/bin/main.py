"""The ``inmsrl`` command: one sub-command per tool, each in its own ``inmsrl.bin`` module.

Each module defines ``add_arguments(parser)`` and ``run(args) -> int`` and keeps heavy imports (torch)
inside ``run`` so that ``inmsrl --help`` and argument errors answer at once. A module whose
``INTERMIXED`` names a list-valued positional gets the positional words that follow its options added
to that list, so ``a=1 --resume auto b=2`` gives both overrides (argparse alone stops at the option).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from inmsrl.version import __version__

# name -> (module under inmsrl.bin, one-line help). New tools register here.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "info": ("info", "print versions, git revision and devices, or what a model file holds"),
    "dump": ("dump", "decode a data directory into a memory-mapped dump with segment tables"),
    "synth": ("synth", "generate a synthetic Slakh-format corpus (procedural songs, GM SoundFont)"),
    "prepare-slakh": ("prepare_slakh", "Slakh2100 (or synthetic) corpus -> submixes and data directories"),
    "prepare-musdb": ("prepare_musdb", "MUSDB18-HQ corpus -> mono sources and data directories"),
    "validate-data-dir": ("validate_data_dir", "check data directories against the contract"),
    "abx-table": ("abx_table", "count Inst-Sim-ABX triplets and responses (the paper's Table 1)"),
    "abx-simulate": ("abx_simulate", "simulated-listener Inst-Sim-ABX set for a synthetic corpus"),
    "quick-eval": ("quick_eval", "SDR of separators and 5-NN same-song accuracy of trained models"),
    "train": ("train", "train one stage from a YAML config in an experiment directory (resumable, DDP)"),
    "experiments": ("experiments", "list a recipe's finished experiments by what their configs say they are"),
    "embed": ("embed", "embed the evaluation sets of a test dump with one model (one share per job)"),
    "sdr": ("sdr", "SDR per test track of a separating model or of the mixture (one share per job)"),
    "score": ("score", "MES-Normal/Pseudo, ABX agreement, SDR, t-SNE from the stored embeddings"),
    "report": ("report", "RESULTS.md/JSON and the t-SNE figure from the scores"),
    "pack": ("pack", "pack a trained model into one file with its config, sources and scores"),
    "embed-files": ("embed_files", "embed audio files (any format) with a trained model, per window"),
    "index": ("index", "build or update a search index from embedding files"),
    "search": ("search", "find the tracks whose instruments sound like a query's, by instrument weights"),
    "search-eval": ("search_eval", "per-instrument search on pseudo pieces of a test dump: hit rates"),
    "serve": ("serve", "the listening page of an index (localhost)"),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every sub-command's own parser attached."""
    parser = argparse.ArgumentParser(
        prog="inmsrl", description="Instrument-focused music similarity toolkit.")
    parser.add_argument("--version", action="version", version=f"inmsrl {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(f"inmsrl.bin.{module_name}")
        sub = commands.add_parser(name, help=help_text, description=module.__doc__)
        module.add_arguments(sub)
        sub.set_defaults(_module=module, _parser=sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen sub-command; returns the process exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        parser.print_help()
        return 2
    intermixed = getattr(args._module, "INTERMIXED", None)
    unknown = [word for word in extra if intermixed is None or word.startswith("-")]
    if unknown:
        args._parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if extra:
        getattr(args, intermixed).extend(extra)
    return int(args._module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
