"""Train one stage from a YAML configuration in an experiment directory; resumes, or skips a finished run.

The task named by the config's ``task.name`` does the stage-specific work (inmsrl.train.task). A
config may inherit another (``base: cascade.yaml``, relative to it); KEY=VALUE words override single
keys (``optim.lr=1e-4 trainer.max_epochs=3``; ``+key=value`` adds one). Every key is checked against
the options its section declares: a misspelt or unknown key, or a bad value, is an error naming it.
``--print-config`` prints the merged configuration (defaults, bases, file, overrides) and exits.

The run writes <exp-dir>/config.yaml, train.log, tensorboard/, checkpoints/{last,best}.pt, final.pt
(best weights) and a ``done`` marker; run again, it resumes after a kill and does nothing once done.
A run holds <exp-dir>/.lock: a second run in the same directory stops at once, naming the process
that holds it. ``--ngpu N`` trains with N DDP processes (one GPU each; with trainer.device=cpu, N CPU
processes over gloo). Exit status: 0 trained or already done, 1 training failed (e.g. a NaN loss),
2 bad configuration or options, or the directory is in use.
"""

from __future__ import annotations

import argparse
import sys

INTERMIXED = "overrides"  # KEY=VALUE words after an option are overrides too (inmsrl.bin.main)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML configuration of the stage")
    parser.add_argument("--exp-dir", help="experiment directory (created if missing); required to train")
    parser.add_argument("--print-config", action="store_true",
                        help="print the merged configuration as YAML and exit (no --exp-dir needed)")
    parser.add_argument("--ngpu", type=int, default=None,
                        help="processes/GPUs: 0 = CPU, N = N DDP processes [one process, CUDA if available]")
    parser.add_argument("--resume", choices=("auto", "never"), default="auto",
                        help="auto: continue from <exp-dir>/checkpoints/last.pt if present; never: discard "
                             "the previous run and start over [%(default)s]")
    parser.add_argument("--set", dest="set_overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one key (repeatable); same as a positional KEY=VALUE")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides, e.g. optim.lr=1e-4")


def run(args: argparse.Namespace) -> int:
    from inmsrl.train.distributed import exit_rank_process, torchrun_rank

    overrides = [*args.overrides, *args.set_overrides]
    if args.print_config:
        return _print_config(args.config, overrides)
    if args.exp_dir is None:
        print("inmsrl train: --exp-dir is required to train (or use --print-config)", file=sys.stderr)
        return 2
    status = _train(args, overrides)
    if torchrun_rank() is not None:
        exit_rank_process(status)  # see its docstring: a finished DDP rank must not abort at teardown
    return status


def _print_config(path: str, overrides: list[str]) -> int:
    """Print the configuration a run would use; a required option still unset (the recipe's stages set
    ``task.init`` and the like) is noted on stderr."""
    from inmsrl.train.config import ConfigError, dump_config, load_config

    try:
        config = load_config(path, overrides, partial=True)
    except ConfigError as err:
        print(f"inmsrl train: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(f"# inmsrl train --config {path} {' '.join(overrides)}".rstrip() + "\n")
    sys.stdout.write(dump_config(config))
    try:
        load_config(path, overrides)
    except ConfigError as err:
        print(f"inmsrl train: note: not enough to train with: {err}", file=sys.stderr)
    return 0


def _train(args: argparse.Namespace, overrides: list[str]) -> int:
    from torch.multiprocessing import ProcessRaisedException

    from inmsrl.data.abx import AbxFormatError
    from inmsrl.data.dump import DumpError
    from inmsrl.data.triplets import SamplingError
    from inmsrl.models.config import ModelConfigError
    from inmsrl.tasks.common import TaskConfigError
    from inmsrl.train.checkpoint import CheckpointError
    from inmsrl.train.config import ConfigError, load_config
    from inmsrl.train.distributed import LaunchError
    from inmsrl.train.experiment import ExperimentInUseError
    from inmsrl.train.trainer import TrainingError, train

    try:
        config = load_config(args.config, overrides)
        result = train(config, args.exp_dir, ngpu=args.ngpu, resume=args.resume)
    except (ConfigError, LaunchError, KeyError, TaskConfigError, ModelConfigError, SamplingError,
            DumpError, AbxFormatError, ExperimentInUseError) as err:
        print(f"inmsrl train: {err}", file=sys.stderr)
        return 2
    except (TrainingError, CheckpointError) as err:
        print(f"inmsrl train: {err}", file=sys.stderr)
        return 1
    except ProcessRaisedException as err:
        print(f"inmsrl train: a training process failed:\n{err}", file=sys.stderr)
        return 1
    if result.status == "already_done":
        print(f"inmsrl train: {args.exp_dir} is already done ({result.epochs} epochs, best validation loss "
              f"{result.best_valid_loss:.6g} at epoch {result.best_epoch}); nothing to do. Remove "
              f"{args.exp_dir}/done with a larger trainer.max_epochs to train on, or use --resume never.",
              file=sys.stderr)
    return 0
