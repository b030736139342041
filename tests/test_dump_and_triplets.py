"""Dump, segment tables and the triplet samplers, on a small corpus made of identifiable noise.

Every (track, source) is seeded noise of its own, so any cut of rendered audio can be traced back to
the one track, source and segment it came from by content alone.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from inmsrl.audio.io import AudioReadError, write_audio
from inmsrl.bin.main import main
from inmsrl.data.datadir import DataDir, TrackRecord
from inmsrl.data.dump import Dump, DumpError, dump_data_dir
from inmsrl.data.segments import SegmentTable, active_in_segments, build_segment_table, ensure_segment_tables
from inmsrl.data.triplets import (
    ANCHOR,
    NEGATIVE,
    POSITIVE,
    SubsetMixtureDataset,
    TripletDataset,
    TripletSampler,
    make_loader,
    nonempty_subsets,
)

SR = 16000
SOURCES = ("drums", "bass", "piano", "guitar", "residuals")
TRACKS = 6
SECONDS = 4
PIANO = SOURCES.index("piano")


def source_signal(track: int, source: int) -> np.ndarray:
    rng = np.random.default_rng([track, source])
    signal = rng.uniform(-0.2, 0.2, SR * SECONDS).astype(np.float32)
    if source == PIANO and track == 0:
        signal[:] = 0.0                      # a track without piano
    if source == PIANO and track == 1:
        signal[SR + SR // 2: 2 * SR] = 0.0   # piano drops out for half of segment 1
    return np.round(signal * 32768) / 32768  # what 16-bit files hold


def make_corpus(root) -> str:
    records = []
    for t in range(TRACKS):
        paths = {}
        for s, name in enumerate(SOURCES):
            paths[name] = root / "audio" / f"T{t}" / f"{name}.flac"
            write_audio(paths[name], source_signal(t, s), SR)
        mix = root / "audio" / f"T{t}" / "mix.flac"
        write_audio(mix, sum(source_signal(t, s) for s in range(len(SOURCES))) * 0.5, SR)
        records.append(TrackRecord(f"T{t}", mix, paths, float(SECONDS)))
    DataDir.from_tracks(SOURCES, records).write(root / "data")
    return str(root / "data")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    data = make_corpus(root)
    dump = dump_data_dir(data, root / "dump", sample_rate=SR)
    return data, dump


def test_dump_holds_every_source_exactly(corpus):
    _, dump = corpus
    assert dump.sources == SOURCES and dump.num_tracks == TRACKS
    for t in range(TRACKS):
        assert dump.lengths[t] == SR * SECONDS
        for s in range(len(SOURCES)):
            np.testing.assert_array_equal(dump.segment(t, 0, SR * SECONDS, [s])[0], source_signal(t, s))


def test_finished_dump_is_reused_and_other_data_refused(corpus, tmp_path):
    data, dump = corpus
    again = dump_data_dir(data, dump.root, sample_rate=SR)
    assert again.track_ids == dump.track_ids
    with pytest.raises(DumpError, match="other data"):
        dump_data_dir(data, dump.root, sample_rate=8000)


def test_dump_is_redone_when_its_audio_changed(tmp_path, capsys):
    """Regenerated audio under the same paths must not leave the old samples (or tables) in the dump."""
    data = make_corpus(tmp_path)
    assert main(["dump", "--data-dir", data, "--out", str(tmp_path / "dump"), "--segments", "1",
                 "--sample-rate", str(SR)]) == 0
    before = SegmentTable.load(tmp_path / "dump" / "segments_1s.npz")
    assert before.active[:, PIANO].sum() < len(before)  # T0 has no piano
    louder = source_signal(0, 1) * 2                    # T0's bass rewritten, and T0's piano now plays
    write_audio(tmp_path / "audio" / "T0" / "bass.flac", louder, SR)
    write_audio(tmp_path / "audio" / "T0" / "piano.flac", source_signal(2, PIANO), SR)
    capsys.readouterr()
    assert main(["dump", "--data-dir", data, "--out", str(tmp_path / "dump"), "--segments", "1",
                 "--sample-rate", str(SR)]) == 0
    assert "changed since it was dumped (file sizes or modification times differ); dumping again" in \
        capsys.readouterr().err
    dump = Dump.open(tmp_path / "dump")
    np.testing.assert_array_equal(dump.segment(0, 0, SR * SECONDS, [1])[0], louder)
    np.testing.assert_array_equal(dump.segment(0, 0, SR * SECONDS, [PIANO])[0], source_signal(2, PIANO))
    after = SegmentTable.load(tmp_path / "dump" / "segments_1s.npz")
    assert after.active[after.track == 0, PIANO].all()  # the table follows the new audio
    again = dump_data_dir(data, tmp_path / "dump", sample_rate=SR, progress=pytest.fail)
    assert again.num_tracks == TRACKS                  # unchanged audio: reused, nothing dumped


def test_non_finite_samples_stop_the_dump_naming_file_and_sample(tmp_path, capsys):
    data = make_corpus(tmp_path)
    signal = source_signal(4, 2).astype(np.float32)
    signal[777] = np.inf
    sf.write(tmp_path / "audio" / "T4" / "piano.wav", signal, SR, subtype="FLOAT")
    scp = tmp_path / "data" / "piano.scp"
    scp.write_text(scp.read_text().replace("T4/piano.flac", "T4/piano.wav"))
    assert main(["dump", "--data-dir", data, "--out", str(tmp_path / "dump"), "--sample-rate", str(SR)]) == 1
    error = capsys.readouterr().err
    assert f"{tmp_path / 'audio' / 'T4' / 'piano.wav'}: 1 non-finite sample(s)" in error
    assert "inf at sample 777" in error and "Traceback" not in error


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_truncated_audio_stops_the_dump_naming_the_file(tmp_path, capsys, jobs):
    data = make_corpus(tmp_path)
    bass = tmp_path / "audio" / "T2" / "bass.flac"
    bass.write_bytes(bass.read_bytes()[: bass.stat().st_size // 2])
    assert main(["dump", "--data-dir", data, "--out", str(tmp_path / "dump"), "--jobs", jobs,
                 "--sample-rate", str(SR)]) == 1
    error = capsys.readouterr().err
    assert f"inmsrl dump: cannot read audio file {bass}" in error and "Traceback" not in error


def test_killed_dump_resumes_where_it_stopped(tmp_path):
    data = make_corpus(tmp_path)
    written = []

    def die_after_two(line):
        written.append(line)
        if len(written) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        dump_data_dir(data, tmp_path / "dump", sample_rate=SR, progress=die_after_two)
    with pytest.raises(DumpError, match="unfinished"):
        Dump.open(tmp_path / "dump")
    resumed = []
    dump = dump_data_dir(data, tmp_path / "dump", sample_rate=SR, progress=resumed.append)
    assert len(resumed) == TRACKS - 2
    for t in range(TRACKS):
        np.testing.assert_array_equal(dump.segment(t, 0, SR, [3])[0], source_signal(t, 3)[:SR])


def test_parallel_dump_equals_serial(corpus, tmp_path):
    data, dump = corpus
    parallel = dump_data_dir(data, tmp_path / "dump2", sample_rate=SR, jobs=2)
    np.testing.assert_array_equal(np.asarray(parallel.audio), np.asarray(dump.audio))


def test_resampling_and_mixdown_of_other_formats(tmp_path):
    stereo = np.stack([np.full(22050, 0.25), np.full(22050, -0.25 + 0.5)], axis=1)  # 1 s at 22.05 kHz
    records = []
    for name in ("mix", *SOURCES[:2]):
        sf.write(tmp_path / f"{name}.wav", stereo, 22050)
    records.append(TrackRecord("T0", tmp_path / "mix.wav",
                               {s: tmp_path / f"{s}.wav" for s in SOURCES[:2]}, 1.0))
    DataDir.from_tracks(SOURCES[:2], records).write(tmp_path / "data")
    dump = dump_data_dir(tmp_path / "data", tmp_path / "dump", sample_rate=SR)
    assert dump.lengths[0] == SR
    middle = dump.segment(0, SR // 4, SR // 2, [0])[0]
    np.testing.assert_allclose(middle, 0.25, atol=1e-3)  # channels averaged: (0.25 + 0.25) / 2


def test_unreadable_audio_is_named(tmp_path):
    data = make_corpus(tmp_path)
    broken = tmp_path / "audio" / "T3" / "bass.flac"
    broken.write_bytes(b"not a flac file")
    with pytest.raises(AudioReadError, match="T3/bass.flac"):
        dump_data_dir(data, tmp_path / "dump", sample_rate=SR)


def test_silence_rule_on_quarter_windows():
    length, signal = 20000, np.random.default_rng(0).uniform(-1, 1, 60000).astype(np.float32)
    signal[25000:25000 + 5000] = 0.3       # flat for exactly one quarter window: silent segment 1
    signal[42000:42000 + 4999] = 0.0       # flat for less than a quarter window: still active
    starts = np.array([0, 20000, 40000])
    assert active_in_segments(signal, starts, length).tolist() == [True, False, True]


def test_segment_tables_mark_silent_sources(corpus):
    _, dump = corpus
    tables = ensure_segment_tables(dump, [1.0, 2.0])
    one = tables[1.0]
    assert one.length == SR and len(one) == TRACKS * SECONDS
    rows = zip(one.track, one.start, one.active[:, PIANO], strict=True)
    piano = {(int(t), int(s)): bool(a) for t, s, a in rows}
    assert not any(piano[(0, k * SR)] for k in range(SECONDS))
    assert [piano[(1, k * SR)] for k in range(SECONDS)] == [True, False, True, True]
    assert one.active[:, [0, 1, 3, 4]].all()
    reloaded = SegmentTable.load(dump.root / "segments_1s.npz")
    np.testing.assert_array_equal(reloaded.active, one.active)
    assert len(tables[2.0]) == TRACKS * 2


def trace(audio: np.ndarray, source: int, length: int) -> tuple[int, int | None]:
    """The (track, start) whose ``source`` signal equals ``audio``, found by content; the start is
    None where the audio is a silent part, which matches every segment of its (silent) track."""
    audio = np.asarray(audio, dtype=np.float32) / 32768 if audio.dtype == np.int16 else audio
    hits = [(t, k * length) for t in range(TRACKS) for k in range(SR * SECONDS // length)
            if np.array_equal(source_signal(t, source)[k * length:(k + 1) * length], audio)]
    tracks = {t for t, _ in hits}
    assert len(tracks) == 1, f"audio of source {source} matches {hits}"
    return hits[0] if len(hits) == 1 else (hits[0][0], None)


def test_pseudo_triplets_trace_back_to_their_pieces_and_segments(corpus):
    _, dump = corpus
    table = build_segment_table(dump, 1.0)
    targets = [0, 1, 2, 3]
    dataset = TripletDataset(dump, table, "pseudo", targets, size=20, seed=3, grouping="pair")
    assert dataset.group_size == 2
    for index in range(20):
        item = dataset[index]
        basic, additional = ({key: value[g] for key, value in item.items()} for g in (0, 1))
        b, c = int(basic["target"]), int(additional["target"])
        assert b != c and {b, c} <= set(targets)
        src = {role: [trace(basic["audio"][role, s].numpy(), s, SR) for s in range(len(SOURCES))]
               for role in (ANCHOR, POSITIVE, NEGATIVE)}
        others = [s for s in range(len(SOURCES)) if s != b]
        piece = {role: {s: src[role][s][0] for s in range(len(SOURCES))} for role in src}
        a2, a = piece[ANCHOR][b], piece[ANCHOR][others[0]]
        n, n2 = piece[POSITIVE][others[0]], piece[NEGATIVE][b]
        assert len({a2, a, n, n2}) == 4, "four different pieces"
        assert piece[POSITIVE][b] == a2 and src[POSITIVE][b] != src[ANCHOR][b], "b: other segment of A2"
        assert all(piece[NEGATIVE][s] == a for s in others), "negative: others from A"
        assert src[NEGATIVE][others[0]] != src[ANCHOR][others[0]], "... from another segment of A"
        assert all(piece[POSITIVE][s] == n for s in others) and all(piece[ANCHOR][s] == a for s in others)
        starts = [{src[r][s][1] for s in others} - {None} for r in src]
        assert all(len(segment) == 1 for segment in starts), "the others come from one segment"
        for role in src:  # the target is active where it is used
            track, start = src[role][b]
            assert table.active[(table.track == track) & (table.start == start), b].all()
        # The additional triplet: same anchor, positive and negative swapped, target c.
        assert torch.equal(additional["audio"][ANCHOR], basic["audio"][ANCHOR])
        assert torch.equal(additional["audio"][POSITIVE], basic["audio"][NEGATIVE])
        assert torch.equal(additional["audio"][NEGATIVE], basic["audio"][POSITIVE])
        np.testing.assert_array_equal(basic["origin"][ANCHOR, b].numpy(), src[ANCHOR][b])


def test_per_target_groups_hold_one_basic_triplet_of_each_instrument(corpus):
    """The paper's one run per instrument: a batch of B groups gives every instrument B triplets, each
    a basic pseudo-musical-piece triplet of four different pieces (anchor b of A2 + the others of A;
    positive b of another segment of A2 + the others of N; negative b of N2 + the others of another
    segment of A)."""
    _, dump = corpus
    table = build_segment_table(dump, 1.0)
    targets = [0, 1, 3]
    dataset = TripletDataset(dump, table, "pseudo", targets, size=6, seed=2)
    assert dataset.group_size == len(targets)
    loader = make_loader(dataset, batch_size=4, seed=0)
    batch = next(iter(loader))
    assert batch["target"].tolist() == [targets] * 4
    for index in range(6):
        item = dataset[index]
        for g, b in enumerate(targets):
            origin = item["origin"][g].numpy()
            others = [s for s in range(len(SOURCES)) if s != b]
            a2, n2 = origin[ANCHOR, b, 0], origin[NEGATIVE, b, 0]
            a, n = origin[ANCHOR, others[0], 0], origin[POSITIVE, others[0], 0]
            assert len({a2, a, n, n2}) == 4, "four different pieces"
            assert origin[POSITIVE, b, 0] == a2 and origin[POSITIVE, b, 1] != origin[ANCHOR, b, 1]
            assert (origin[NEGATIVE, others, 0] == a).all() and (origin[ANCHOR, others, 0] == a).all()
            assert origin[NEGATIVE, others[0], 1] != origin[ANCHOR, others[0], 1]
            for role in range(3):
                assert trace(item["audio"][g, role, b].numpy(), b, SR) == tuple(origin[role, b])


def test_s4_triplets(corpus):
    _, dump = corpus
    table = build_segment_table(dump, 1.0)
    dataset = TripletDataset(dump, table, "s4", [PIANO], size=20, seed=0)
    for i in range(20):
        item = {key: value[0] for key, value in dataset[i].items()}
        origin = item["origin"].numpy()
        tracks = origin[:, :, 0]
        assert (tracks == tracks[:, :1]).all(), "all sources of a role from one piece"
        assert tracks[ANCHOR, 0] == tracks[POSITIVE, 0] != tracks[NEGATIVE, 0]
        assert origin[ANCHOR, 0, 1] != origin[POSITIVE, 0, 1]
        assert 0 not in tracks[:, 0] or tracks[NEGATIVE, 0] != 0  # track 0 has no piano
        for role in range(3):
            assert trace(item["audio"][role, PIANO].numpy(), PIANO, SR) == tuple(origin[role, PIANO])


def test_fixed_set_is_stable_and_da_redraws_each_epoch(corpus):
    _, dump = corpus
    table = build_segment_table(dump, 1.0)
    fixed = TripletDataset(dump, table, "pseudo", [0, 1, 3], size=8, seed=1)
    fresh = TripletDataset(dump, table, "pseudo", [0, 1, 3], size=8, seed=1, fresh_every_epoch=True)
    first = [fixed.recipes(i)[0].origin for i in range(8)]
    fixed.set_epoch(1)
    assert all(np.array_equal(a, fixed.recipes(i)[0].origin) for i, a in enumerate(first))
    epoch0 = [fresh.recipes(i)[0].origin for i in range(8)]
    fresh.set_epoch(1)
    assert not all(np.array_equal(a, fresh.recipes(i)[0].origin) for i, a in enumerate(epoch0))


def test_loader_is_reproducible_with_workers(corpus):
    _, dump = corpus
    table = build_segment_table(dump, 1.0)
    dataset = TripletDataset(dump, table, "pseudo", [0, 1, 3], size=12, seed=5)
    batches = {}
    for workers in (0, 2):
        loader = make_loader(dataset, batch_size=4, workers=workers, seed=0, shuffle=True)
        batches[workers] = [b["origin"] for b in loader]
    assert all(torch.equal(x, y) for x, y in zip(batches[0], batches[2], strict=True))
    assert batches[0][0].shape == (4, 3, 3, len(SOURCES), 2)  # 4 groups of 3 triplets


def test_subset_mixtures_cover_the_31_subsets(corpus):
    _, dump = corpus
    assert len(nonempty_subsets(5)) == 31 and len(set(nonempty_subsets(5))) == 31
    table = build_segment_table(dump, 1.0)
    dataset = SubsetMixtureDataset(dump, table, size=400, seed=0)
    seen = set()
    for i in range(400):
        item = dataset[i]
        subset = item["subset"].numpy()
        seen.add(tuple(np.flatnonzero(subset)))
        assert not item["audio"][~item["subset"]].any()
        assert not (item["active"] & ~item["subset"]).any()
    assert len(seen) == 31


def test_too_few_pieces_is_a_clear_error(corpus):
    _, dump = corpus
    table = build_segment_table(dump, 1.0)
    keep = table.track < 2
    small = SegmentTable(table.length, table.track[keep], table.start[keep], table.active[keep])
    with pytest.raises(ValueError, match="too few pieces"):
        TripletSampler(small, [PIANO])
