"""Embed audio files with a trained model: per-window vectors per instrument, and a pooled track vector.

PATHs are files or folders (searched recursively for audio files), or ``--scp`` lists them with their
track ids, Kaldi style (a data directory's ``mix.scp``). Every format soundfile reads
(wav, flac, ogg, ...) or ffmpeg decodes (mp3, m4a, aac, opus, ...) works, at any sample rate and channel
count: the audio is mixed down to mono and resampled to the model's rate while it streams, so long
files need little memory. Each track gets ``OUT/<id>.npz`` (the id is the file's path below the folder
given, or its name): vectors ``[window, instrument, dim]`` with the windows' start times, and the mean
over windows. A re-run skips tracks whose output is up to date (same model, settings and audio file)
and embeds the rest. A file that cannot be decoded or holds no audio is named and skipped; the exit
status is 1 when any failed. As a job array, ``JOB=1:N ... --part JOB --num-parts N``: job J embeds every
N-th file from the J-th.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="audio files and folders")
    parser.add_argument("--scp", help="or a list of '<id> <path>' lines (a data directory's mix.scp)")
    parser.add_argument("--model", required=True, help="packed model file, final.pt or experiment directory")
    parser.add_argument("-o", "--out", required=True, help="folder of the embedding files")
    parser.add_argument("--window", type=float, default=10.0, help="window length in seconds [%(default)s]")
    parser.add_argument("--hop", type=float, default=5.0, help="hop between windows in seconds [%(default)s]")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per forward pass [%(default)s]")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... or auto [%(default)s]")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                        help="precision of the arithmetic: bfloat16 is about twice as fast on a CPU with "
                             "bfloat16 matrix units, with vectors that differ by rounding; float16: GPU only "
                             "[%(default)s]")
    parser.add_argument("--part", type=int, default=1, help="this job's share, 1..N [%(default)s]")
    parser.add_argument("--num-parts", type=int, default=1, help="N, the number of jobs [%(default)s]")
    parser.add_argument("--force", action="store_true", help="embed again even what is up to date")


def _up_to_date(out: Path, fingerprint: str) -> bool:
    from inmsrl.search.embedding_file import EmbeddingFileError, TrackEmbedding

    if not out.is_file():
        return False
    try:
        return TrackEmbedding.load(out).meta.get("fingerprint") == fingerprint
    except EmbeddingFileError:
        return False


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from inmsrl.audio.io import AudioReadError
    from inmsrl.audio.stream import find_audio_files, read_scp
    from inmsrl.memory import reuse_freed_memory
    from inmsrl.models.pretrained import ModelFileError
    from inmsrl.search.embedder import Embedder
    from inmsrl.search.embedding_file import output_path

    if not 1 <= args.part <= args.num_parts:
        print(f"inmsrl embed-files: --part must be in 1..{args.num_parts}, got {args.part}", file=sys.stderr)
        return 2
    if bool(args.paths) == bool(args.scp):
        print("inmsrl embed-files: give audio files/folders or --scp LIST (one of them)", file=sys.stderr)
        return 2
    try:
        listed = read_scp(args.scp) if args.scp else find_audio_files(args.paths)
        files = listed[args.part - 1::args.num_parts]
        embedder = Embedder.from_pretrained(args.model, device=args.device, batch_size=args.batch_size,
                                            window=args.window, hop=args.hop, dtype=args.dtype)
    except (ModelFileError, OSError, ValueError) as err:
        print(f"inmsrl embed-files: {err}", file=sys.stderr)
        return 1
    reuse_freed_memory()  # every batch frees and makes the same large tensors again
    done = kept = 0
    failed: list[tuple[Path, str]] = []
    progress = tqdm(files, desc=f"embedding (part {args.part}/{args.num_parts})", unit="file",
                    file=sys.stderr, mininterval=1 if sys.stderr.isatty() else 30)
    for track_id, path in progress:
        out = output_path(args.out, track_id)
        try:
            fingerprint = embedder.fingerprint(path)
            if not args.force and _up_to_date(out, fingerprint):
                kept += 1
                continue
            embedder.embed_file(path, track_id).save(out)
            done += 1
        except (AudioReadError, OSError, RuntimeError, ValueError) as err:
            failed.append((path, str(err)))
            progress.write(f"inmsrl embed-files: FAILED {path}: {err}", file=sys.stderr)
    print(f"inmsrl embed-files: {len(files)} file(s) in part {args.part}/{args.num_parts}: {done} embedded, "
          f"{kept} up to date, {len(failed)} failed -> {args.out}  (model {embedder.name}, "
          f"{embedder.device}, {args.dtype}, {args.window:g} s windows every {args.hop:g} s)")
    for path, reason in failed:
        print(f"  failed: {path}: {reason}")
    return 1 if failed else 0
