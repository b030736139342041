"""Slakh preparation (inmsrl.data.slakh, inmsrl prepare-slakh) on tiny generated corpora."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import yaml
from slakh_fixtures import FULL_BAND, NO_PIANO, StemSpec, make_corpus, make_track, write_redux_json

from inmsrl.audio.io import read_audio, write_audio
from inmsrl.bin.main import main
from inmsrl.data.datadir import DataDir
from inmsrl.data.slakh import (
    AMBIGUOUS_LAYOUT,
    SOURCES,
    SlakhError,
    Stem,
    assign_sets,
    class_stems,
    detect_layout,
    list_corpus,
    original_split,
    prepare_slakh,
    read_redux_json,
    read_track_metadata,
    stem_class,
)

# Which FULL_BAND stems each source sums (S06 is not rendered: no file, not mixed).
EXPECTED_GROUPS = {"drums": ["S00"], "bass": ["S01"], "piano": ["S02", "S05"], "guitar": ["S03"],
                   "residuals": ["S04"]}


def stem(program: int, is_drum: bool = False) -> Stem:
    return Stem(key="S00", program_num=program, is_drum=is_drum, audio_rendered=True)


@pytest.mark.parametrize("program, expected", [
    (0, "piano"), (7, "piano"), (8, "residuals"), (23, "residuals"), (24, "guitar"), (31, "guitar"),
    (32, "bass"), (39, "bass"), (40, "residuals"), (127, "residuals"),
])
def test_class_by_program_number(program, expected):
    assert stem_class(stem(program)) == expected


def test_drums_go_by_is_drum_whatever_the_program():
    assert stem_class(stem(0, is_drum=True)) == "drums"
    assert stem_class(stem(128, is_drum=True)) == "drums"


def test_metadata_groups_skip_unrendered_stems_and_keep_extra_keys(tmp_path):
    make_track(tmp_path / "Track00001", extra={"inmsrl_song": {"tempo": 120}})
    meta_file = tmp_path / "Track00001" / "metadata.yaml"
    data = yaml.safe_load(meta_file.read_text())
    data["stems"]["S02"]["inmsrl_attributes"] = {"timbre": 3}
    meta_file.write_text(yaml.safe_dump(data))
    meta = read_track_metadata(tmp_path / "Track00001")
    assert class_stems(meta) == EXPECTED_GROUPS
    assert meta.fields["inmsrl_song"] == {"tempo": 120}
    assert meta.fields["overall_gain"] == 0.5
    assert meta.stems["S02"].extra == {"inmsrl_attributes": {"timbre": 3}}
    assert meta.stems["S06"].audio_rendered is False
    assert not meta.stem_path("S06").exists()


def corrupt(track: Path, edit) -> Path:
    path = track / "metadata.yaml"
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("stems"), "no 'stems' mapping"),
    (lambda d: d["stems"]["S03"].pop("program_num"), "stem S03: no 'program_num'"),
    (lambda d: d["stems"]["S03"].update(program_num="piano"), "stem S03: program_num 'piano' is not"),
    (lambda d: d["stems"]["S03"].update(is_drum="yes"), "stem S03: is_drum 'yes' is not true/false"),
    (lambda d: d["stems"]["S06"].update(audio_rendered=True), "stem S06 has audio_rendered: true but"),
])
def test_malformed_metadata_names_file_and_stem(tmp_path, edit, message):
    make_track(tmp_path / "Track00001")
    path = corrupt(tmp_path / "Track00001", edit)
    with pytest.raises(SlakhError) as info:
        read_track_metadata(tmp_path / "Track00001")
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_yaml_syntax_error_and_missing_metadata_name_the_file(tmp_path):
    make_track(tmp_path / "Track00001")
    path = tmp_path / "Track00001" / "metadata.yaml"
    path.write_text("stems: {S00: [unclosed\n")
    with pytest.raises(SlakhError, match=f"^{path}: invalid YAML"):
        read_track_metadata(tmp_path / "Track00001")
    path.unlink()
    with pytest.raises(SlakhError, match=f"^{path}: cannot read"):
        read_track_metadata(tmp_path / "Track00001")


REDUX = {"train": ["Track00004", "Track00002", "Track00003", "Track00001"], "validation": ["Track00005"],
         "test": ["Track00006"], "omitted": ["Track00007"]}


@pytest.fixture
def redux_corpus(tmp_path: Path) -> tuple[Path, dict]:
    """A redux-layout corpus; Track00003 has no piano."""
    corpus = tmp_path / "slakh2100_flac_redux"
    return corpus, make_corpus(corpus, REDUX, special={"Track00003": NO_PIANO})


def test_redux_layout_prepared_end_to_end(tmp_path, redux_corpus):
    corpus, stems = redux_corpus
    written = prepare_slakh(corpus, tmp_path / "data", split="redux")
    assert sorted(written) == ["test", "train", "validation"]
    train = DataDir.load(tmp_path / "data" / "train")
    assert (tmp_path / "data" / "train" / "sources").read_text() == "drums bass piano guitar residuals\n"
    assert train.track_ids == ("Track00001", "Track00002", "Track00003", "Track00004")
    assert DataDir.load(tmp_path / "data" / "test").track_ids == ("Track00006",)  # omitted/ ignored
    assert train.audio_path("Track00002", "mix") == corpus / "train" / "Track00002" / "mix.flac"
    assert train.audio_path("Track00002", "bass") == tmp_path / "audio" / "train" / "Track00002" / "bass.flac"
    assert train.durations["Track00001"] == 1.0
    # Every submix is the sum of its class's stems, read back from disk.
    for source, keys in EXPECTED_GROUPS.items():
        submix, _ = read_audio(train.audio_path("Track00002", source), sample_rate=None)
        np.testing.assert_array_equal(submix, sum(stems["Track00002"][key] for key in keys))
    # ... so the sources add up to the corpus's mix.
    mix, _ = read_audio(train.audio_path("Track00004", "mix"), sample_rate=None)
    np.testing.assert_array_equal(sum(read_audio(train.audio_path("Track00004", s), sample_rate=None)[0]
                                      for s in SOURCES), mix)
    # The track without piano still has a piano entry: a silent file as long as the mix.
    silent, rate = read_audio(train.audio_path("Track00003", "piano"), sample_rate=None)
    assert rate == 16000 and len(silent) == 16000 and not silent.any()
    guitar, _ = read_audio(train.audio_path("Track00003", "guitar"), sample_rate=None)
    np.testing.assert_array_equal(guitar, stems["Track00003"]["S03"])


def test_paper_split_takes_the_first_tracks_by_id(tmp_path, redux_corpus, caplog):
    corpus, _ = redux_corpus
    with caplog.at_level(logging.INFO, logger="inmsrl.data.slakh"):
        prepare_slakh(corpus, tmp_path / "data", split="paper", paper_train=2)
    assert DataDir.load(tmp_path / "data" / "train").track_ids == ("Track00001", "Track00002")
    assert DataDir.load(tmp_path / "data" / "validation").track_ids == ("Track00005",)
    assert DataDir.load(tmp_path / "data" / "test").track_ids == ("Track00006",)
    assert "136-track test list is not public" in caplog.text


def test_sets_max_tracks_and_audio_out(tmp_path, redux_corpus):
    corpus, _ = redux_corpus
    written = prepare_slakh(corpus, tmp_path / "data", audio_out=tmp_path / "sub", split="redux",
                            sets=["train"], max_tracks=3)
    assert list(written) == ["train"]
    assert not (tmp_path / "data" / "validation").exists()
    train = DataDir.load(tmp_path / "data" / "train")
    assert train.track_ids == ("Track00001", "Track00002", "Track00003")
    assert train.audio_path("Track00001", "drums") == tmp_path / "sub" / "train" / "Track00001" / "drums.flac"


def test_parallel_jobs_give_the_same_data(tmp_path, redux_corpus):
    corpus, _ = redux_corpus
    prepare_slakh(corpus, tmp_path / "a", split="redux", sets=["train"])
    prepare_slakh(corpus, tmp_path / "b", split="redux", sets=["train"], jobs=2)
    a, b = DataDir.load(tmp_path / "a" / "train"), DataDir.load(tmp_path / "b" / "train")
    assert a.track_ids == b.track_ids
    for source in SOURCES:
        first, _ = read_audio(a.audio_path("Track00004", source), sample_rate=None)
        second, _ = read_audio(b.audio_path("Track00004", source), sample_rate=None)
        np.testing.assert_array_equal(first, second)


def test_resume_keeps_finished_submixes_and_redoes_changed_stem_sets(tmp_path, redux_corpus):
    corpus, stems = redux_corpus
    prepare_slakh(corpus, tmp_path / "data", split="redux", sets=["train"])
    track = tmp_path / "audio" / "train" / "Track00001"
    before = {source: (track / f"{source}.flac").stat().st_mtime_ns for source in SOURCES}
    prepare_slakh(corpus, tmp_path / "data", split="redux", sets=["train"])
    assert {source: (track / f"{source}.flac").stat().st_mtime_ns for source in SOURCES} == before
    # S04 (strings, program 48) becomes a guitar: guitar and residuals change, the rest stays.
    corrupt(corpus / "train" / "Track00001", lambda d: d["stems"]["S04"].update(program_num=26))
    (track / "drums.flac").unlink()  # an interrupted run lost this one
    prepare_slakh(corpus, tmp_path / "data", split="redux", sets=["train"])
    after = {source: (track / f"{source}.flac").stat().st_mtime_ns for source in SOURCES}
    assert {source for source in SOURCES if after[source] != before[source]} == {"drums", "guitar",
                                                                                   "residuals"}
    guitar, _ = read_audio(track / "guitar.flac", sample_rate=None)
    np.testing.assert_array_equal(guitar, stems["Track00001"]["S03"] + stems["Track00001"]["S04"])
    residuals, _ = read_audio(track / "residuals.flac", sample_rate=None)
    assert not residuals.any()


def test_a_rewritten_stem_is_mixed_again(tmp_path, redux_corpus, caplog):
    """The resume record holds the stems' content (size and mtime), not only which stems went in:
    a stem cut short and later restored must give the full submix again."""
    corpus, stems = redux_corpus
    stem_file = corpus / "train" / "Track00001" / "stems" / "S04.flac"   # strings: residuals
    original = stem_file.read_bytes()
    write_audio(stem_file, stems["Track00001"]["S04"][:4000], 16000)      # a truncated render
    with caplog.at_level(logging.WARNING, logger="inmsrl.data.slakh"):
        prepare_slakh(corpus, tmp_path / "data", split="redux", sets=["train"])
    assert f"{stem_file}: 4000 samples, mix has 16000" in caplog.text
    residuals = tmp_path / "audio" / "train" / "Track00001" / "residuals.flac"
    assert not read_audio(residuals, sample_rate=None)[0][4000:].any()
    piano_before = (residuals.parent / "piano.flac").stat().st_mtime_ns
    stem_file.write_bytes(original)                                        # the stem is fixed
    prepare_slakh(corpus, tmp_path / "data", split="redux", sets=["train"])
    np.testing.assert_array_equal(read_audio(residuals, sample_rate=None)[0], stems["Track00001"]["S04"])
    assert (residuals.parent / "piano.flac").stat().st_mtime_ns == piano_before  # untouched: not redone


def test_folders_that_are_not_tracks_are_named(tmp_path, redux_corpus, caplog):
    corpus, _ = redux_corpus
    renamed = corpus / "train" / "Tr\u00e4ck00002"                       # "Träck00002"
    (corpus / "train" / "Track00002").rename(renamed)
    make_track(corpus / "valid" / "Track00008")                           # not a split folder
    (corpus / "test" / "notes.txt").write_text("files are not tracks and not reported\n")
    with caplog.at_level(logging.WARNING, logger="inmsrl.data.slakh"):
        prepare_slakh(corpus, tmp_path / "data", split="redux")
    train = DataDir.load(tmp_path / "data" / "train")
    assert train.track_ids == ("Track00001", "Track00003", "Track00004")
    assert f"{renamed}: skipped: the redux layout expects TrackNNNNN folders here" in caplog.text
    assert f"{corpus / 'valid'}: skipped: the redux layout expects train/validation/test/omitted" \
        in caplog.text
    assert "notes.txt" not in caplog.text
    assert "2 warning(s) about the corpus above" in caplog.text


def test_metadata_defaults_that_hide_corpus_errors_are_warned_about_and_counted(tmp_path, caplog):
    corpus = tmp_path / "corpus"
    band = {"S00": StemSpec(128, inst_class="Drums"), "S01": StemSpec(33, inst_class="Bass")}
    make_corpus(corpus, {"train": ["Track00001", "Track00002"], "validation": ["Track00003"],
                         "test": ["Track00004"]},
                special={"Track00001": band,
                         "Track00003": {key: StemSpec(spec.program_num, audio_rendered=False)
                                        for key, spec in FULL_BAND.items()}})
    corrupt(corpus / "train" / "Track00001", lambda d: d["stems"]["S00"].pop("is_drum"))
    corrupt(corpus / "train" / "Track00002", lambda d: d["stems"]["S04"].update(program_num=128))
    with caplog.at_level(logging.WARNING, logger="inmsrl.data.slakh"):
        prepare_slakh(corpus, tmp_path / "data", split="redux")
    text = caplog.text
    assert (f"{corpus / 'train' / 'Track00001' / 'metadata.yaml'}: stem S00 looks like drums (inst_class "
            "Drums) but has no is_drum: it is mixed into residuals, not drums") in text
    assert (f"{corpus / 'train' / 'Track00002' / 'metadata.yaml'}: stem S04 looks like drums (program_num "
            "128) but has is_drum: false") in text
    assert (f"{corpus / 'validation' / 'Track00003' / 'metadata.yaml'}: no stem has audio_rendered: true; "
            "every source of Track00003 will be silent next to its mix") in text
    assert "3 warning(s) about the corpus above" in text


def test_stereo_stems_are_mixed_down_with_a_warning_and_anti_phase_is_called_out(tmp_path, caplog):
    corpus = tmp_path / "corpus"
    stems = make_corpus(corpus, {"train": ["Track00001"], "validation": ["Track00002"],
                                 "test": ["Track00003"]})["Track00001"]
    stems_dir = corpus / "train" / "Track00001" / "stems"
    bass = stems["S01"]
    write_audio(stems_dir / "S01.flac", np.stack([bass, bass]), 16000)     # plain stereo
    guitar = stems["S03"]
    write_audio(stems_dir / "S03.flac", np.stack([guitar, -guitar]), 16000)  # anti-phase
    with caplog.at_level(logging.WARNING, logger="inmsrl.data.slakh"):
        prepare_slakh(corpus, tmp_path / "data", split="redux")
    assert f"{stems_dir / 'S01.flac'}: 2 channels, mixed down to mono" in caplog.text
    assert f"{stems_dir / 'S03.flac'}: 2 channels that cancel in the mono mix-down (silent): anti-phase? " \
        "the stem is lost in its submix" in caplog.text
    assert "2 warning(s) about the corpus" in caplog.text
    submix = tmp_path / "audio" / "train" / "Track00001" / "bass.flac"
    np.testing.assert_array_equal(read_audio(submix, sample_rate=None)[0], bass)


def test_bad_metadata_stops_before_writing_and_lists_every_track(tmp_path, redux_corpus):
    corpus, _ = redux_corpus
    first = corrupt(corpus / "train" / "Track00002", lambda d: d["stems"]["S01"].pop("program_num"))
    second = corpus / "validation" / "Track00005" / "metadata.yaml"
    second.write_text("UUID: [\n")
    with pytest.raises(SlakhError) as info:
        prepare_slakh(corpus, tmp_path / "data", split="redux")
    assert f"{first}: stem S01: no 'program_num'" in str(info.value)
    assert f"{second}: invalid YAML" in str(info.value)
    assert not (tmp_path / "data").exists() and not (tmp_path / "audio").exists()


def test_original_flat_layout_splits_by_number_and_drops_redux_omissions(tmp_path):
    corpus = tmp_path / "slakh2100_flac"
    ids = ["Track00001", "Track00002", "Track01500", "Track01501", "Track01875", "Track01876", "Track02100"]
    make_corpus(corpus, {"": ids})
    redux = write_redux_json(tmp_path / "redux.json", {"Track00002": "train", "Track01876": "test"}, ids)
    assert detect_layout(corpus, None)[0] == "original"
    prepare_slakh(corpus, tmp_path / "data", split="redux", redux_json=redux)
    assert DataDir.load(tmp_path / "data" / "train").track_ids == ("Track00001", "Track01500")
    assert DataDir.load(tmp_path / "data" / "validation").track_ids == ("Track01501", "Track01875")
    assert DataDir.load(tmp_path / "data" / "test").track_ids == ("Track02100",)
    with pytest.raises(SlakhError, match="needs --redux-json"):
        prepare_slakh(corpus, tmp_path / "data", split="redux")


def test_original_split_by_number():
    assert [original_split(f"Track{n:05d}") for n in (1, 1500, 1501, 1875, 1876, 2100)] == [
        "train", "train", "validation", "validation", "test", "test"]


def test_layout_detection(tmp_path):
    redux = write_redux_json(tmp_path / "redux.json", {"Track00002": "train"}, ["Track00001"])
    omitted = read_redux_json(redux)
    original = tmp_path / "original"
    make_corpus(original, {"train": ["Track00001", "Track00002"], "validation": ["Track01501"]})
    assert detect_layout(original, omitted)[0] == "original"
    assert detect_layout(original, None) == ("redux", AMBIGUOUS_LAYOUT)  # logged as a warning
    tracks, layout = list_corpus(original, "auto", redux)
    assert layout == "original" and [t.track_id for t in tracks] == ["Track00001", "Track01501"]
    # The same folders without a duplicate present: both readings agree, so redux.
    (original / "train" / "Track00002" / "metadata.yaml").unlink()
    (original / "train" / "Track00002").rename(original / "train" / "NotATrack")
    assert detect_layout(original, omitted)[0] == "redux"
    # A synthetic corpus numbers its tracks across splits: not where the original release puts them.
    synthetic = tmp_path / "synthetic"
    make_corpus(synthetic, {"train": ["Track00001", "Track00002"], "validation": ["Track00003"]})
    layout, why = detect_layout(synthetic, omitted)
    assert layout == "redux" and "validation/Track00003" in why
    with_omitted = tmp_path / "redux"
    make_corpus(with_omitted, {"train": ["Track00001"], "omitted": ["Track00002"]})
    assert detect_layout(with_omitted, omitted) == ("redux", "an omitted/ folder beside the split folders")
    with pytest.raises(SlakhError, match="no TrackNNNNN folders"):
        detect_layout(tmp_path / "redux" / "train" / "Track00001" / "stems", omitted)


def test_real_redux_json_gives_the_redux_release_sizes(slakh_redux_json):
    omitted = read_redux_json(slakh_redux_json)
    assert len(omitted) == 390
    kept = {split: size - sum(1 for s in omitted.values() if s == split)
            for split, size in (("train", 1500), ("validation", 375), ("test", 225))}
    assert kept == {"train": 1289, "validation": 270, "test": 151}
    assert all(original_split(track) == split for track, split in omitted.items())


def test_assign_sets_rejects_unknown_split():
    with pytest.raises(SlakhError, match="unknown split"):
        assign_sets([], split="musdb")


def test_prepare_slakh_command(tmp_path, redux_corpus, capsys, monkeypatch):
    corpus, _ = redux_corpus
    monkeypatch.chdir(tmp_path)
    assert main(["prepare-slakh", "--corpus", corpus.name, "--out", "data", "--split", "paper",
                 "--paper-train", "3", "--sets", "train,test"]) == 0
    assert capsys.readouterr().out == "data/train\ndata/test\n"
    # Relative paths as given: the corpus's mix and audio/ beside data/.
    assert (tmp_path / "data/train/mix.scp").read_text().startswith(
        "Track00001 slakh2100_flac_redux/train/Track00001/mix.flac\n")
    assert (tmp_path / "data/train/piano.scp").read_text().startswith(
        "Track00001 audio/train/Track00001/piano.flac\n")
    assert main(["validate-data-dir", "data/train", "data/test", "--check-audio"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("OK data/train: 3 tracks")
    (tmp_path / corpus.name / "train" / "Track00004" / "stems" / "S03.flac").unlink()
    assert main(["prepare-slakh", "--corpus", corpus.name, "--out", "data", "--split", "redux"]) == 1
    assert "Track00004/metadata.yaml: stem S03 has audio_rendered: true but" in capsys.readouterr().err
    assert FULL_BAND["S03"] == StemSpec(25, inst_class="Guitar")


def test_undecodable_stem_is_reported_by_name(tmp_path, redux_corpus, capsys):
    corpus, _ = redux_corpus
    broken = corpus / "validation" / "Track00005" / "stems" / "S01.flac"
    broken.write_bytes(b"not a flac file")
    assert main(["prepare-slakh", "--corpus", str(corpus), "--out", str(tmp_path / "data"),
                 "--sets", "validation", "--jobs", "2"]) == 1
    assert f"cannot read audio file {broken}" in capsys.readouterr().err
