"""The data-directory contract: writing, loading, and a validator that names file and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from inmsrl.audio.io import write_audio
from inmsrl.bin.main import main
from inmsrl.data.datadir import DataDir, DataDirError, TrackRecord, validate_data_dir

SOURCES = ("vocals", "drums", "bass", "other")  # not the Slakh classes: nothing may assume them
RATE = 8000


def write_tracks(root: Path, ids=("t2", "t1", "t3"), seconds=0.5) -> list[TrackRecord]:
    """Audio for each track and source (the records come back in the order given, not sorted)."""
    records = []
    for tid in ids:
        paths = {}
        for name in ("mix", *SOURCES):
            paths[name] = root / "audio" / tid / f"{name}.flac"
            write_audio(paths[name], np.zeros(int(RATE * seconds), np.float32), RATE)
        records.append(TrackRecord(tid, paths.pop("mix"), paths, seconds))
    return records


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A valid data directory ``tmp_path/data/train`` over three tracks."""
    target = tmp_path / "data" / "train"
    DataDir.from_tracks(SOURCES, write_tracks(tmp_path)).write(target)
    return target


def only_error(target: Path, **kwargs) -> str:
    errors = validate_data_dir(target, **kwargs)
    assert len(errors) == 1, errors
    return errors[0]


def test_written_directory_round_trips_sorted_with_sources_in_order(tmp_path, data_dir):
    assert (data_dir / "sources").read_text() == "vocals drums bass other\n"
    assert [line.split()[0] for line in (data_dir / "mix.scp").read_text().splitlines()] == ["t1", "t2", "t3"]
    assert (data_dir / "track2dur").read_text().splitlines()[0] == "t1 0.500000"
    assert validate_data_dir(data_dir, check_audio=True) == []
    loaded = DataDir.load(data_dir)
    assert loaded.sources == SOURCES
    assert loaded.track_ids == ("t1", "t2", "t3")
    assert loaded.audio_path("t2", "bass") == tmp_path / "audio" / "t2" / "bass.flac"
    assert loaded.audio_path("t3", "mix") == tmp_path / "audio" / "t3" / "mix.flac"
    assert loaded.durations["t1"] == 0.5
    assert loaded == DataDir.from_tracks(SOURCES, write_tracks(tmp_path))


def test_write_replaces_the_directory_and_leaves_no_staging_behind(tmp_path, data_dir):
    (data_dir / "vocals.scp").write_text("stale\n")
    (data_dir / "leftover").write_text("x")
    records = [TrackRecord(r.track_id, r.mix, {k: r.sources[k] for k in SOURCES[:2]}, r.duration)
               for r in write_tracks(tmp_path, ids=("t9",))]
    DataDir.from_tracks(SOURCES[:2], records).write(data_dir)
    assert sorted(p.name for p in data_dir.iterdir()) == ["drums.scp", "mix.scp", "sources", "track2dur",
                                                         "vocals.scp"]
    assert sorted(p.name for p in data_dir.parent.iterdir()) == ["train"]
    assert DataDir.load(data_dir).track_ids == ("t9",)


def test_from_tracks_rejects_a_track_without_every_source_and_bad_names(tmp_path):
    records = write_tracks(tmp_path, ids=("t1",))
    broken = TrackRecord("t2", records[0].mix, {"vocals": records[0].sources["vocals"]}, 1.0)
    with pytest.raises(DataDirError, match="track t2: sources"):
        DataDir.from_tracks(SOURCES, [*records, broken])
    with pytest.raises(DataDirError, match="'mix' is reserved"):
        DataDir.from_tracks(("mix",), [])
    with pytest.raises(DataDirError, match="whitespace"):
        DataDir.from_tracks(SOURCES, [TrackRecord("a b", records[0].mix, records[0].sources, 1.0)])


def test_relative_paths_resolve_against_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    records = [TrackRecord(r.track_id, Path(r.mix).relative_to(tmp_path),
                           {k: Path(v).relative_to(tmp_path) for k, v in r.sources.items()}, r.duration)
               for r in write_tracks(tmp_path)]
    DataDir.from_tracks(SOURCES, records).write("data/train")
    assert (tmp_path / "data/train/mix.scp").read_text().startswith("t1 audio/t1/mix.flac\n")
    assert validate_data_dir("data/train") == []
    monkeypatch.chdir(tmp_path / "data")
    assert "audio file audio/t1/mix.flac does not exist" in validate_data_dir("train")[0]


def test_missing_sources_file_and_missing_scp_are_named(data_dir):
    (data_dir / "bass.scp").unlink()
    assert only_error(data_dir) == f"{data_dir / 'bass.scp'}: missing (listed in sources)"
    (data_dir / "sources").unlink()
    assert f"{data_dir / 'sources'}: missing" in validate_data_dir(data_dir)[0]


@pytest.mark.parametrize("line, message", [
    ("vocals dr/ums bass other", "source name 'dr/ums' must match"),
    ("vocals drums bass vocals", "source name 'vocals' is duplicated"),
    ("vocals mix bass other", "source name 'mix' is reserved"),
    ("", "no source names"),
])
def test_bad_source_names(data_dir, line, message):
    (data_dir / "sources").write_text(line + "\n")
    errors = validate_data_dir(data_dir)
    assert any(e.startswith(f"{data_dir / 'sources'}:1: ") and message in e for e in errors), errors


def test_sources_on_two_lines(data_dir):
    (data_dir / "sources").write_text("vocals drums\nbass other\n")
    assert only_error(data_dir).startswith(f"{data_dir / 'sources'}:2: source names must be on one line")


def replace_line(path: Path, number: int, text: str | None) -> None:
    """Replace (or with ``None`` delete) line ``number`` (1-based) of ``path``."""
    lines = path.read_text().splitlines()
    if text is None:
        del lines[number - 1]
    else:
        lines[number - 1] = text
    path.write_text("".join(line + "\n" for line in lines))


def test_line_without_two_fields(data_dir):
    replace_line(data_dir / "drums.scp", 2, "t2")
    errors = validate_data_dir(data_dir)
    assert errors[0] == f"{data_dir / 'drums.scp'}:2: expected '<track_id> <value>', got 't2'"
    # ... which also leaves drums.scp without t2
    assert errors[1] == f"{data_dir / 'drums.scp'}: 1 track id(s) of mix.scp missing: t2"


def test_empty_line(data_dir):
    path = data_dir / "bass.scp"
    path.write_text(path.read_text() + "\n")
    assert only_error(data_dir) == f"{path}:4: empty line"


def test_duplicated_and_unsorted_ids(data_dir):
    path = data_dir / "mix.scp"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[0], lines[2], lines[1]]) + "\n")
    errors = validate_data_dir(data_dir)
    assert f"{path}:2: track id 't1' duplicated (first on line 1)" in errors
    assert f"{path}:4: track id 't2' after 't3': not sorted (sort with LC_ALL=C sort)" in errors


def test_id_sets_that_differ_between_files(data_dir):
    path = data_dir / "other.scp"
    replace_line(path, 3, f"t4 {data_dir / 'sources'}")
    errors = validate_data_dir(data_dir)
    assert errors == [f"{path}:3: track id 't4' is not in mix.scp",
                      f"{path}: 1 track id(s) of mix.scp missing: t3"]


def test_track2dur_ids_must_match_too(data_dir):
    replace_line(data_dir / "track2dur", 1, None)
    assert only_error(data_dir) == f"{data_dir / 'track2dur'}: 1 track id(s) of mix.scp missing: t1"


def test_path_that_does_not_exist(data_dir, tmp_path):
    (tmp_path / "audio" / "t2" / "vocals.flac").unlink()
    assert only_error(data_dir) == (f"{data_dir / 'vocals.scp'}:2: t2: audio file "
                                    f"{tmp_path / 'audio' / 't2' / 'vocals.flac'} does not exist")
    assert validate_data_dir(data_dir, check_paths=False) == []


@pytest.mark.parametrize("value", ["abc", "-1", "0", "nan", "inf", "1.0 2.0"])
def test_duration_not_a_positive_number(data_dir, value):
    replace_line(data_dir / "track2dur", 3, f"t3 {value}")
    assert only_error(data_dir) == (f"{data_dir / 'track2dur'}:3: duration {value!r} of t3 "
                                    "is not a positive number")


def test_missing_track2dur(data_dir):
    (data_dir / "track2dur").unlink()
    assert only_error(data_dir).startswith(f"{data_dir / 'track2dur'}: missing")


def test_check_audio_compares_length_with_track2dur(data_dir):
    replace_line(data_dir / "track2dur", 2, "t2 0.6")
    assert validate_data_dir(data_dir) == []
    errors = validate_data_dir(data_dir, check_audio=True)
    assert len(errors) == 5  # mix + four sources
    assert errors[0] == (f"{data_dir / 'mix.scp'}:2: {data_dir.parent.parent / 'audio/t2/mix.flac'} lasts "
                         "0.500 s but track2dur gives 0.600 s for t2 (tolerance 0.05 s)")
    assert validate_data_dir(data_dir, check_audio=True, duration_tolerance=0.2) == []


def test_check_audio_sample_rates_and_unreadable_files(tmp_path, data_dir):
    write_audio(tmp_path / "audio/t3/bass.flac", np.zeros(RATE, np.float32), 2 * RATE)
    (tmp_path / "audio/t1/other.flac").write_text("not audio")
    errors = validate_data_dir(data_dir, check_audio=True)
    assert len(errors) == 2, errors
    assert errors[0].startswith(f"{data_dir / 'bass.scp'}:3: {tmp_path / 'audio/t3/bass.flac'} has sample "
                                f"rate {2 * RATE} but mix.scp:3 has {RATE} for the same track")
    assert errors[1].startswith(f"{data_dir / 'other.scp'}:1: cannot read audio file")
    rate_errors = validate_data_dir(data_dir, check_audio=True, sample_rate=2 * RATE)
    assert f"{data_dir / 'mix.scp'}:1: {tmp_path / 'audio/t1/mix.flac'} has sample rate {RATE}, " \
           f"expected {2 * RATE}" in rate_errors


def test_load_raises_with_every_problem(data_dir):
    replace_line(data_dir / "track2dur", 1, "t1 x")
    replace_line(data_dir / "bass.scp", 1, "t1")
    with pytest.raises(DataDirError) as info:
        DataDir.load(data_dir)
    assert len(info.value.errors) == 3
    assert "track2dur:1" in str(info.value) and "bass.scp:1" in str(info.value)


def test_validate_data_dir_command(data_dir, capsys):
    assert main(["validate-data-dir", str(data_dir), "--check-audio"]) == 0
    assert capsys.readouterr().out == (f"OK {data_dir}: 3 tracks, 0.00 h, sources: vocals drums bass other, "
                                       "audio decoded\n")
    replace_line(data_dir / "drums.scp", 3, "t3")
    assert main(["validate-data-dir", str(data_dir)]) == 1
    err = capsys.readouterr().err
    assert f"{data_dir}: 2 problem(s)" in err
    assert f"{data_dir / 'drums.scp'}:3: expected '<track_id> <value>'" in err


def test_check_audio_decodes_and_names_a_truncated_file(tmp_path, data_dir):
    """A FLAC cut short keeps a valid header: reading headers passes it, decoding must not."""
    mix = tmp_path / "audio/t2/mix.flac"
    rng = np.random.default_rng(0)
    write_audio(mix, rng.uniform(-0.5, 0.5, RATE // 2).astype(np.float32), RATE)
    mix.write_bytes(mix.read_bytes()[: mix.stat().st_size // 2])
    assert validate_data_dir(data_dir, check_audio=True) == []  # the header alone looks fine
    for jobs in (1, 2):
        error = only_error(data_dir, check_audio=True, decode=True, jobs=jobs)
        assert error.startswith(f"{data_dir / 'mix.scp'}:2: cannot decode audio file {mix}")
    assert main(["validate-data-dir", str(data_dir), "--check-audio", "--jobs", "2"]) == 1


def test_check_audio_names_the_first_non_finite_sample(tmp_path, data_dir, capsys):
    samples = np.zeros(RATE // 2, np.float32)
    samples[1234], samples[3000] = np.nan, np.inf
    sf.write(tmp_path / "audio/t3/bass.wav", samples, RATE, subtype="FLOAT")  # no clipping on the way
    replace_line(data_dir / "bass.scp", 3, f"t3 {tmp_path / 'audio/t3/bass.wav'}")
    assert validate_data_dir(data_dir, check_audio=True) == []
    error = only_error(data_dir, check_audio=True, decode=True)
    assert error == (f"{data_dir / 'bass.scp'}:3: {tmp_path / 'audio/t3/bass.wav'}: 2 non-finite sample(s) "
                     "(NaN or inf); the first is nan at sample 1234 (channel 0)")
    assert main(["validate-data-dir", str(data_dir), "--check-audio"]) == 1
    assert "the first is nan at sample 1234" in capsys.readouterr().err
