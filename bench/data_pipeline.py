"""Benchmark: pseudo-musical-piece triplets per second from the dump vs. decoding FLAC on the fly.

Builds a corpus of FLAC stems (seeded noise: FLAC cannot compress it, so decoding costs what real
music costs or more), prepares its data directory and dump, then times a ``DataLoader`` producing
3 s pseudo-musical-piece triplets (features off) with 0, 1 and 2 workers: once slicing the
memory-mapped dump, once decoding every (role, source) segment from FLAC. Both deliver the int16 stems
of anchor, positive and negative; the training step sums them into mixtures on its device, which is
not timed here.
Run: ``tools/venv/bin/python bench/data_pipeline.py [--tracks 12] [--seconds 60] [--batches 20]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from inmsrl.audio.io import SAMPLE_RATE, read_audio, write_audio
from inmsrl.data.datadir import DataDir, TrackRecord
from inmsrl.data.dump import INT16_SCALE, dump_data_dir
from inmsrl.data.segments import build_segment_table
from inmsrl.data.triplets import TripletDataset, make_loader

SOURCES = ("drums", "bass", "piano", "guitar", "residuals")


class FlacTripletDataset(TripletDataset):
    """The same triplets, each segment decoded from its FLAC file instead of sliced from the dump."""

    def __init__(self, data: DataDir, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.data = data

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        recipes = self.recipes(index)
        length = self.table.length
        # what the dump loader hands on: int16 (group, role, source, samples)
        audio = np.empty((len(recipes), 3, len(SOURCES), length), dtype=np.int16)
        for g, recipe in enumerate(recipes):
            for role in range(3):
                for s, name in enumerate(SOURCES):
                    track, start = recipe.origin[role, s]
                    path = self.data.audio_path(self.dump.track_ids[track], name)
                    audio[g, role, s] = read_audio(path, start=int(start), frames=length)[0] * INT16_SCALE
        return {"audio": torch.from_numpy(audio), "target": torch.tensor([r.target for r in recipes])}


def make_corpus(root: Path, tracks: int, seconds: int) -> DataDir:
    rng = np.random.default_rng(0)
    records = []
    for t in range(tracks):
        stems = {name: rng.uniform(-0.1, 0.1, seconds * SAMPLE_RATE).astype(np.float32) for name in SOURCES}
        paths = {}
        for name, signal in stems.items():
            paths[name] = root / f"T{t:03d}" / f"{name}.flac"
            write_audio(paths[name], signal)
        mix = root / f"T{t:03d}" / "mix.flac"
        write_audio(mix, sum(stems.values()))
        records.append(TrackRecord(f"T{t:03d}", mix, paths, float(seconds)))
    data = DataDir.from_tracks(SOURCES, records)
    data.write(root / "data")
    return DataDir.load(root / "data")


def triplets_per_second(dataset: TripletDataset, workers: int, batches: int, batch_size: int) -> float:
    loader = make_loader(dataset, batch_size=batch_size, workers=workers, seed=0)
    iterator = iter(loader)
    next(iterator)  # start-up (worker processes, first maps) is not what is measured
    begin = time.perf_counter()
    count = 0
    for _ in range(batches):
        audio = next(iterator)["audio"]
        count += audio.shape[0] * audio.shape[1]  # groups × triplets per group
    return count / (time.perf_counter() - begin)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=12)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = make_corpus(root, args.tracks, args.seconds)
        dump = dump_data_dir(root / "data", root / "dump")
        table = build_segment_table(dump, 3.0)
        size = (args.batches + 1) * args.batch_size
        common = dict(kind="pseudo", targets=[0, 1, 2, 3], size=size, seed=0)
        print(f"corpus: {args.tracks} tracks x {args.seconds} s x {len(SOURCES)} sources, 44.1 kHz; "
              f"{args.batches} batches of {args.batch_size} pseudo-musical-piece triplets of 3 s")
        print(f"{'workers':>8} {'dump (triplets/s)':>18} {'FLAC (triplets/s)':>18} {'ratio':>7}")
        for workers in (0, 1, 2):
            fast = triplets_per_second(TripletDataset(dump, table, **common), workers, args.batches,
                                       args.batch_size)
            slow = triplets_per_second(FlacTripletDataset(data, dump, table, **common), workers,
                                       args.batches, args.batch_size)
            print(f"{workers:>8} {fast:>18.1f} {slow:>18.1f} {fast / slow:>6.1f}x")


if __name__ == "__main__":
    main()
