"""The synthetic Slakh-format corpus: layout, metadata, levels, determinism, resume, pool sharing."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf
import yaml

from inmsrl.bin.main import main
from inmsrl.data.synth import SynthError, SynthOptions, corpus, generate_corpus
from inmsrl.data.synth.music import compose_song
from inmsrl.data.synth.pools import shared_pools

SLAKH_TOP_KEYS = {"UUID", "audio_dir", "lmd_midi_dir", "midi_dir", "normalization_factor", "normalized",
                  "overall_gain", "target_peak", "stems"}
SLAKH_STEM_KEYS = {"audio_rendered", "inst_class", "is_drum", "midi_program_name", "midi_saved",
                   "plugin_name", "program_num"}
DURATION, SR = 6.0, 44100


def slakh_class(program: int, is_drum: bool) -> str:
    """The official submix rule, written out independently of the generator."""
    if is_drum:
        return "drums"
    for name, (low, high) in {"piano": (0, 7), "guitar": (24, 31), "bass": (32, 39)}.items():
        if low <= program <= high:
            return name
    return "residuals"


def tracks(root: Path) -> list[Path]:
    return sorted(root.glob("*/Track*"), key=lambda p: p.name)


def metadata(track: Path) -> dict:
    return yaml.safe_load((track / "metadata.yaml").read_text())


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "corpus.yaml"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """4 tracks × 6 s, made through the command line."""
    out = tmp_path_factory.mktemp("synth") / "corpus"
    assert main(["synth", "--out", str(out), "--num-tracks", "4", "--duration", str(DURATION),
                 "--seed", "3", "--splits", "0.5,0.25,0.25"]) == 0
    return out


def test_layout_and_slakh_metadata(tiny):
    layout = [(p.parent.name, p.name) for p in tracks(tiny)]
    assert layout == [("train", "Track00001"), ("train", "Track00002"), ("validation", "Track00003"),
                      ("test", "Track00004")]
    description = yaml.safe_load((tiny / "corpus.yaml").read_text())
    assert description["splits"] == {"train": ["Track00001", "Track00002"], "validation": ["Track00003"],
                                     "test": ["Track00004"]}
    uuids = set()
    for track in tracks(tiny):
        meta = metadata(track)
        assert set(meta) == SLAKH_TOP_KEYS | {"inmsrl_song"}
        assert meta["audio_dir"] == "stems" and meta["midi_dir"] == "MIDI" and meta["normalized"] is True
        assert len(meta["UUID"]) == 32 and meta["target_peak"] == -1.0
        uuids.add(meta["UUID"])
        song = meta["inmsrl_song"]
        assert {"tempo", "key", "progression_id", "seed"} <= set(song) and song["seed"] == 3
        assert (track / "all_src.mid").is_file()
        midi_stems = sorted(p.stem for p in (track / "MIDI").glob("*.mid"))
        assert midi_stems == sorted(meta["stems"]) and all(len(s) == 3 for s in midi_stems)
        assert len(pretty_midi.PrettyMIDI(str(track / "all_src.mid")).instruments) == len(midi_stems)
        for stem_id, stem in meta["stems"].items():
            rendered = stem["audio_rendered"]
            loudness = {"integrated_loudness"} if rendered else set()  # Slakh omits it when unrendered
            assert set(stem) == SLAKH_STEM_KEYS | {"inmsrl_attributes"} | loudness, stem_id
            assert (track / "stems" / f"{stem_id}.flac").is_file() == rendered
            if rendered:
                assert -60 < stem["integrated_loudness"] < 0
            attributes = stem["inmsrl_attributes"]
            assert {"source_class", "program", "rhythm_id", "figure_id", "register", "velocity",
                    "density"} <= set(attributes)
        info = sf.info(str(track / "mix.flac"))
        assert (info.format, info.subtype, info.channels, info.samplerate, info.frames) == (
            "FLAC", "PCM_16", 1, SR, round(DURATION * SR))
    assert len(uuids) == 4


def test_stems_sum_to_mix_and_mix_peaks_at_target(tiny):
    for track in tracks(tiny):
        meta = metadata(track)
        mix, _ = sf.read(str(track / "mix.flac"), dtype="float64")
        rendered = [s for s, stem in meta["stems"].items() if stem["audio_rendered"]]
        total = np.sum([sf.read(str(track / "stems" / f"{s}.flac"), dtype="float64")[0] for s in rendered],
                       axis=0)
        assert np.abs(total - mix).max() < (len(rendered) + 1) / 32768
        peaks = [np.abs(mix).max()]
        for stem_id in rendered:  # every rendered stem really sounds
            peaks.append(np.abs(sf.read(str(track / "stems" / f"{stem_id}.flac"))[0]).max())
            assert peaks[-1] > 1e-3, (track, stem_id)
        # one common gain brings the loudest of mix and stems to the target peak
        assert 20 * np.log10(max(peaks)) == pytest.approx(meta["target_peak"], abs=0.05)


def test_stem_class_matches_program(tiny):
    for track in tracks(tiny):
        for stem_id, stem in metadata(track)["stems"].items():
            attributes = stem["inmsrl_attributes"]
            assert slakh_class(stem["program_num"], stem["is_drum"]) == attributes["source_class"]
            instrument, = pretty_midi.PrettyMIDI(str(track / "MIDI" / f"{stem_id}.mid")).instruments
            assert instrument.is_drum == stem["is_drum"] and instrument.notes
            if stem["is_drum"]:
                assert stem["inst_class"] == "Drums" and stem["program_num"] == 128
            else:
                assert instrument.program == stem["program_num"] == attributes["program"]
                assert stem["midi_program_name"] == pretty_midi.program_to_instrument_name(instrument.program)


def test_same_seed_is_byte_identical_and_independent_of_jobs(tiny, tmp_path):
    again = tmp_path / "again"
    options = SynthOptions(num_tracks=4, duration=DURATION, seed=3, splits=(0.5, 0.25, 0.25))
    generate_corpus(again, options, jobs=2, log=lambda line: None)
    first, second = all_files(tiny), all_files(again)
    assert sorted(first) == sorted(second)
    assert [name for name in first if first[name] != second[name]] == []


def test_different_seed_differs(tiny, tmp_path):
    other = tmp_path / "other"
    generate_corpus(other, SynthOptions(num_tracks=4, duration=DURATION, seed=4, splits=(0.5, 0.25, 0.25)),
                    log=lambda line: None)
    ours, theirs = all_files(tiny), all_files(other)
    assert ours["train/Track00001/mix.flac"] != theirs["train/Track00001/mix.flac"]
    assert metadata(tiny / "train/Track00001")["UUID"] != metadata(other / "train/Track00001")["UUID"]


def song_parts(seed: int, count: int) -> list[list[dict]]:
    return [[p.attributes for p in compose_song(np.random.default_rng([seed, i]), 30.0).parts]
            for i in range(count)]


def test_songs_share_pool_ids_but_are_not_identical():
    songs = song_parts(0, 40)
    pools = shared_pools()
    known = {r.id for rs in pools.rhythms.values() for r in rs} | {g.id for g in pools.grooves}
    known |= {f.id for fs in pools.figures.values() for f in fs} | {f.id for f in pools.fills} | {None}
    assert all(p["rhythm_id"] in known and p["figure_id"] in known for song in songs for p in song)

    def ids(song, key):
        return {(p["role"], p[key]) for p in song}

    shared = {key: 0 for key in ("program", "rhythm_id", "figure_id")}
    partial = 0  # pairs sharing a rhythm of some role while that role's program differs
    for a, b in itertools.combinations(songs, 2):
        for key in shared:
            shared[key] += bool(ids(a, key) & ids(b, key))
        common = {(p["role"], p["rhythm_id"]) for p in a} & {(p["role"], p["rhythm_id"]) for p in b}
        partial += any(
            {p["program"] for p in a if (p["role"], p["rhythm_id"]) == c}
            != {p["program"] for p in b if (p["role"], p["rhythm_id"]) == c} for c in common)
    pairs = 40 * 39 // 2
    assert all(0.1 * pairs < count < pairs for count in shared.values()), shared
    assert partial > 0.05 * pairs
    signatures = {tuple(sorted((p["role"], p["program"], p["rhythm_id"], p["figure_id"]) for p in song))
                  for song in songs}
    assert len(signatures) == len(songs)


def test_lineups_follow_class_rules_and_sometimes_lack_a_class():
    songs = song_parts(1, 60)
    lacking = sum(not {"piano", "guitar"} <= {p["source_class"] for p in song} for song in songs)
    assert 0.1 * len(songs) < lacking < 0.6 * len(songs)
    for song in songs:
        assert any(p["source_class"] == "residuals" for p in song)
        for part in song:
            assert slakh_class(part["program"], part["source_class"] == "drums") == part["source_class"]


def test_dropped_stems_have_no_audio_and_are_left_out_of_the_mix(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "DROP_PROBABILITY", 0.5)
    generate_corpus(tmp_path, SynthOptions(num_tracks=2, duration=2.0, seed=5), log=lambda line: None)
    dropped = 0
    for track in tracks(tmp_path):
        meta = metadata(track)
        mix, _ = sf.read(str(track / "mix.flac"), dtype="float64")
        total = np.zeros_like(mix)
        for stem_id, stem in meta["stems"].items():
            path = track / "stems" / f"{stem_id}.flac"
            if stem["inmsrl_attributes"]["dropped"]:
                dropped += 1
                assert not stem["audio_rendered"] and not path.exists()
                assert "integrated_loudness" not in stem
            if stem["audio_rendered"]:
                total += sf.read(str(path), dtype="float64")[0]
        assert np.abs(total - mix).max() < 1e-6
    assert dropped > 0


def test_resume_skips_finished_tracks_and_refuses_other_options(tmp_path):
    options = SynthOptions(num_tracks=3, duration=2.0, seed=7, splits=(1.0, 0.0, 0.0), sample_rate=22050)
    first = generate_corpus(tmp_path, options, log=lambda line: None)
    assert first.generated == ["Track00001", "Track00002", "Track00003"] and first.skipped == []
    assert sf.info(str(tmp_path / "train/Track00002/mix.flac")).samplerate == 22050
    before = all_files(tmp_path)
    broken = tmp_path / "train" / "Track00002"
    (broken / "metadata.yaml").unlink()  # as if killed before its last write
    (broken / "stems" / "leftover.flac").write_bytes(b"partial")
    lines = []
    second = generate_corpus(tmp_path, options, log=lines.append)
    assert second.generated == ["Track00002"] and second.skipped == ["Track00001", "Track00003"]
    assert any("2 of 3 tracks already complete" in line for line in lines)
    assert all_files(tmp_path) == before

    with pytest.raises(SynthError, match=r"corpus\.yaml.*different options.*seed: 7 .*8"):
        generate_corpus(tmp_path, SynthOptions(num_tracks=3, duration=2.0, seed=8, splits=(1.0, 0.0, 0.0),
                                               sample_rate=22050), log=lambda line: None)


def test_missing_or_unreadable_soundfont_is_named(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "missing.sf2"
    assert main(["synth", "--out", str(tmp_path / "a"), "--num-tracks", "1", "--duration", "1",
                 "--seed", "0", "--soundfont", str(missing)]) == 1
    assert f"SoundFont not found: {missing}" in capsys.readouterr().err
    garbage = tmp_path / "garbage.sf2"
    garbage.write_bytes(b"RIFF not really a soundfont")
    assert main(["synth", "--out", str(tmp_path / "b"), "--num-tracks", "1", "--duration", "1",
                 "--seed", "0", "--soundfont", str(garbage)]) == 1
    assert f"cannot load SoundFont {garbage}" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_tracks=0), "--num-tracks"), (dict(duration=0), "--duration"), (dict(seed=-1), "--seed"),
    (dict(splits=(0.5, 0.5, 0.5)), "--splits"),
])
def test_bad_options_are_rejected(kwargs, message):
    with pytest.raises(SynthError, match=message):
        SynthOptions(**{"num_tracks": 2, "duration": 1.0, "seed": 0, **kwargs})


def test_songs_change_over_their_length_but_keep_their_instruments():
    """Sections of a song (verse, chorus, bridge) give its parts other patterns, voicings and
    dynamics, and parts rest in some of them; the program (the instrument's sound) stays."""
    songs = [compose_song(np.random.default_rng([7, i]), 60.0) for i in range(30)]
    changed = rested = 0
    for song in songs:
        sections = song.attributes["sections"]
        assert sections[0]["start_bar"] == 0 and sections[-1]["end_bar"] == song.attributes["bars"]
        assert all(a["end_bar"] == b["start_bar"] for a, b in zip(sections, sections[1:], strict=False))
        assert len({s["kind"] for s in sections}) >= 2, "a minute of music has more than one section kind"
        bar_s = 240.0 / song.attributes["tempo"]
        for part in song.parts:
            described = part.attributes["sections"]
            assert [(d["kind"], d["start_bar"], d["end_bar"]) for d in described] == [
                (s["kind"], s["start_bar"], s["end_bar"]) for s in sections]
            by_kind = {d["kind"]: d for d in described}
            for d in described:  # a kind that comes back is played the same way
                assert d == {**by_kind[d["kind"]], "start_bar": d["start_bar"], "end_bar": d["end_bar"]}
            playing = [d for d in described if d["playing"]]
            changed += len({(d["rhythm_id"], d["figure_id"], d["velocity"]) for d in playing}) > 1
            for d in described:
                inside = [n for n in part.notes if d["start_bar"] * bar_s + 0.05 <= n.start
                          < d["end_bar"] * bar_s - 0.05]
                if not d["playing"]:
                    rested += 1
                    assert not inside, "a resting part plays no note in its section"
    parts = sum(len(song.parts) for song in songs)
    assert changed > 0.5 * parts
    assert rested > 0


def test_evaluation_tracks_can_be_longer_than_training_tracks(tmp_path):
    out = tmp_path / "corpus"
    assert main(["synth", "--out", str(out), "--num-tracks", "3", "--duration", "2", "--eval-duration", "5",
                 "--seed", "1", "--splits", "0.34,0.33,0.33"]) == 0
    lengths = {p.parent.name: sf.info(str(p / "mix.flac")).duration for p in tracks(out)}
    assert lengths == {"train": 2.0, "validation": 5.0, "test": 5.0}
    assert yaml.safe_load((out / "corpus.yaml").read_text())["options"]["eval_duration"] == 5.0
