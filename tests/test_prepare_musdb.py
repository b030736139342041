"""MUSDB18-HQ preparation (inmsrl.data.musdb, inmsrl prepare-musdb, egs/musdb18hq) on tiny generated
corpora in its layout: train/ and test/ of <Artist - Title>/ folders of stereo WAVs."""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from inmsrl.audio.io import read_audio
from inmsrl.bin.main import main
from inmsrl.data.datadir import DataDir
from inmsrl.data.musdb import MusdbError, list_tracks, prepare_musdb, read_layout, track_id

RATE = 16000      # MUSDB18-HQ is at 44.1 kHz; the checks do not depend on the rate, the test's speed does
SECONDS = 2
VALIDATION = "Actions - One Minute Smile"          # one of musdb's 14 validation tracks
TRAIN = "A Classic Education - NightOwl"
TEST = "Al James - Schoolboy Facination"


def musdb_yaml() -> dict:
    """The musdb package's own configs/mus.yaml, read here independently of inmsrl."""
    spec = importlib.util.find_spec("musdb")
    assert spec is not None, "the musdb package (installed with museval) is missing"
    package = Path(next(iter(spec.submodule_search_locations)))
    return yaml.safe_load((package / "configs" / "mus.yaml").read_text())


def write_track(folder: Path, seed: int, seconds: float = SECONDS) -> dict[str, np.ndarray]:
    """A track folder: one stereo noise WAV per musdb source and their sum as mixture.wav."""
    rng = np.random.default_rng(seed)
    frames = int(seconds * RATE)
    files = musdb_yaml()["sources"]
    stems = {name: 0.1 * rng.standard_normal((frames, 2)).astype(np.float32) for name in files}
    folder.mkdir(parents=True, exist_ok=True)
    for name, audio in stems.items():
        sf.write(folder / files[name], audio, RATE, subtype="PCM_16")
    sf.write(folder / "mixture.wav", sum(stems.values()), RATE, subtype="PCM_16")
    return stems


def make_corpus(root: Path) -> Path:
    for seed, (folder, name) in enumerate((("train", VALIDATION), ("train", TRAIN), ("test", TEST))):
        write_track(root / folder / name, seed)
    return root


def test_the_sources_files_and_validation_split_are_the_musdb_packages():
    config = musdb_yaml()
    layout = read_layout()
    assert layout.sources == tuple(config["sources"])        # vocals drums bass other, in its order
    assert dict(layout.files) == config["sources"] and layout.mixture == config["mixture"]
    assert layout.validation_tracks == tuple(config["validation_tracks"])
    assert len(layout.validation_tracks) == 14 and VALIDATION in layout.validation_tracks


def test_the_validation_set_is_the_musdb_list_and_the_rest_of_train_trains(tmp_path, caplog):
    # Folders are enough to split: the 14 validation tracks, two others in train/, one in test/.
    validation = read_layout().validation_tracks
    for name in (*validation, TRAIN, "Zeno - Signs"):
        (tmp_path / "train" / name).mkdir(parents=True)
    (tmp_path / "test" / TEST).mkdir(parents=True)
    sets = list_tracks(tmp_path, validation)
    assert sorted(t.name for t in sets["validation"]) == sorted(validation)
    assert [t.name for t in sets["train"]] == [TRAIN, "Zeno - Signs"]
    assert [t.name for t in sets["test"]] == [TEST]
    # A validation track the corpus lacks is named in a warning; a corpus with none of them is an error.
    (tmp_path / "train" / validation[0]).rename(tmp_path / "train" / "Renamed - Track")
    with caplog.at_level(logging.WARNING, logger="inmsrl.data.musdb"):
        assert len(list_tracks(tmp_path, validation)["validation"]) == 13
    assert f"1 of the 14 validation tracks are missing, so the validation set has 13: {validation[0]}" \
        in caplog.text
    with pytest.raises(MusdbError, match="holds none of the 1 validation tracks"):
        list_tracks(tmp_path, ["Nobody - Nothing"])


def test_track_ids_hold_no_whitespace_and_colliding_ids_are_an_error(tmp_path):
    assert track_id("Actions - One Minute Smile") == "Actions_-_One_Minute_Smile"
    assert track_id("Johnny Lokke - Promises & Lies") == "Johnny_Lokke_-_Promises_Lies"
    for name in ("A - B", "A  -  B"):
        (tmp_path / "train" / name).mkdir(parents=True)
    (tmp_path / "test" / TEST).mkdir(parents=True)
    with pytest.raises(MusdbError, match="both become track id A_-_B"):
        list_tracks(tmp_path, ["A - B"])


def run_recipe(repo_root: Path, corpus: Path, work: Path, *args: str,
               **env: str) -> subprocess.CompletedProcess:
    """The MUSDB18-HQ recipe's ./run.sh, its outputs under ``work``; ``inmsrl`` is the one beside this
    interpreter (path.sh falls back to it where the checkout has no tools/venv)."""
    env = {**os.environ, "MUSDB18HQ": str(corpus),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]), **env}
    return subprocess.run(["./run.sh", "--data-dir", str(work / "data"), "--exp-dir", str(work / "exp"),
                           *args], cwd=repo_root / "egs" / "musdb18hq", capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.mark.timeout(300)
def test_recipe_stages_0_and_1_prepare_mono_sources_and_the_standard_split(repo_root, tmp_path):
    corpus = make_corpus(tmp_path / "musdb18hq")
    stems = {name: sf.read(corpus / "train" / TRAIN / f"{name}.wav", dtype="float32")[0]
             for name in ("vocals", "other")}
    left = stems["other"][:, 0]
    sf.write(corpus / "train" / TRAIN / "other.wav", np.stack([left, -left], axis=1), RATE, subtype="PCM_16")
    work = tmp_path / "work"
    result = run_recipe(repo_root, corpus, work, "--stage", "0", "--stop-stage", "1")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"local/corpus.sh: MUSDB18-HQ found at {corpus} (3 track folders)" in result.stdout
    for name, expected in (("train", TRAIN), ("validation", VALIDATION), ("test", TEST)):
        data = DataDir.load(work / "data" / name)
        assert data.sources == ("vocals", "drums", "bass", "other")
        assert data.track_ids == (track_id(expected),)
        assert data.durations[track_id(expected)] == pytest.approx(SECONDS)
        folder = "test" if name == "test" else "train"
        assert data.audio_path(track_id(expected), "mix") == corpus / folder / expected / "mixture.wav"
    # Each source is the mean of its channels, written beside the data folder.
    vocals = work / "sources" / "train" / track_id(TRAIN) / "vocals.flac"
    assert DataDir.load(work / "data" / "train").audio_path(track_id(TRAIN), "vocals") == vocals
    mono, rate = read_audio(vocals, sample_rate=None)
    assert rate == RATE
    np.testing.assert_allclose(mono, stems["vocals"].mean(axis=1), atol=2 / 32768)
    other = work / "sources" / "train" / track_id(TRAIN) / "other.flac"
    assert (f"{corpus / 'train' / TRAIN / 'other.wav'}: its 2 channels cancel in the mono mix-down "
            f"(silent): anti-phase? other is lost in {other}") in result.stderr
    assert "1 warning(s) about the corpus above" in result.stderr

    # A re-run keeps what is up to date; a rewritten WAV is mixed down again.
    sf.write(corpus / "train" / TRAIN / "vocals.wav", stems["vocals"] * 0.5, RATE, subtype="PCM_16")
    again = run_recipe(repo_root, corpus, work, "--stage", "1", "--stop-stage", "1")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "train: 1/1 tracks (1 written, 0 already up to date)" in again.stderr
    assert "test: 1/1 tracks (0 written, 1 already up to date)" in again.stderr
    np.testing.assert_allclose(read_audio(vocals, sample_rate=None)[0], stems["vocals"].mean(axis=1) * 0.5,
                               atol=2 / 32768)

    # Stage 3 separates every source of the data directory (no --target-sources: no list in the recipe);
    # the job wrapper only prints the trainings (a dry run).
    dry = run_recipe(repo_root, corpus, work, "--stage", "3", "--stop-stage", "3",
                     "--dump-dir", str(work / "dump"), "--ngpu", "0", INMSRL_DRY_RUN="1")
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    lines = (work / "exp" / "log" / "mss.list").read_text().splitlines()
    assert [line.split()[0] for line in lines] == [str(work / "exp" / "mss" / s)
                                                   for s in ("vocals", "drums", "bass", "other")]


@pytest.mark.parametrize("break_it, message", [
    (lambda track: (track / "vocals.wav").unlink(), "{track}: vocals.wav is missing"),
    (lambda track: sf.write(track / "bass.wav", np.zeros((SECONDS * 22050, 2)), 22050),
     "{track}/bass.wav: sample rate 22050 Hz, but mixture.wav has 16000 Hz"),
    (lambda track: sf.write(track / "drums.wav", np.zeros((SECONDS * RATE - 100, 2)), RATE),
     "{track}/drums.wav: 31900 samples, but mixture.wav has 32000"),
    (lambda track: sf.write(track / "other.wav", np.zeros(SECONDS * RATE), RATE),
     "{track}/other.wav: mono, but MUSDB18-HQ files are stereo"),
    (lambda track: (track / "mixture.wav").write_bytes(b"not audio"),
     "cannot read audio file {track}/mixture.wav"),
], ids=["missing stem", "rate mismatch", "length mismatch", "mono", "unreadable"])
def test_a_malformed_track_is_an_error_naming_the_track_and_file(tmp_path, capsys, break_it, message):
    corpus = make_corpus(tmp_path / "musdb18hq")
    track = corpus / "test" / TEST
    break_it(track)
    assert main(["prepare-musdb", "--corpus", str(corpus), "--out", str(tmp_path / "data")]) == 1
    err = capsys.readouterr().err
    assert "prepare-musdb: error: 1 problem(s) in" in err and message.format(track=track) in err, err
    assert not (tmp_path / "data").exists() and not (tmp_path / "audio").exists(), "nothing is written"


def test_every_problem_of_every_track_is_reported_at_once_through_local_data_sh(repo_root, tmp_path):
    corpus = make_corpus(tmp_path / "musdb18hq")
    (corpus / "train" / TRAIN / "bass.wav").unlink()
    sf.write(corpus / "test" / TEST / "vocals.wav", np.zeros(SECONDS * RATE), RATE)
    env = {**os.environ, "MUSDB18HQ": str(corpus),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    result = subprocess.run(["local/data.sh", "--data-dir", str(tmp_path / "data")],
                            cwd=repo_root / "egs" / "musdb18hq", capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 1
    assert f"{corpus / 'train' / TRAIN}: bass.wav is missing" in result.stderr
    assert f"{corpus / 'test' / TEST / 'vocals.wav'}: mono, but MUSDB18-HQ files are stereo" in result.stderr


def test_validation_tracks_of_a_synthetic_corpus_can_be_given(tmp_path):
    corpus = make_corpus(tmp_path / "musdb18hq")
    names = tmp_path / "validation.txt"
    names.write_text(f"# my split\n{TRAIN}\n")
    assert main(["prepare-musdb", "--corpus", str(corpus), "--out", str(tmp_path / "data"),
                 "--validation-tracks", str(names), "--jobs", "2"]) == 0
    assert DataDir.load(tmp_path / "data" / "validation").track_ids == (track_id(TRAIN),)
    assert DataDir.load(tmp_path / "data" / "train").track_ids == (track_id(VALIDATION),)
    assert (tmp_path / "audio" / "test" / track_id(TEST) / "drums.flac").is_file()  # audio/ beside data/


def test_prepare_musdb_returns_the_written_directories(tmp_path):
    written = prepare_musdb(make_corpus(tmp_path / "c"), tmp_path / "data", audio_out=tmp_path / "mono")
    assert written == {name: tmp_path / "data" / name for name in ("train", "validation", "test")}
