"""The synthetic corpus in MUSDB18-HQ's layout (inmsrl synth --layout musdb) that egs/mini_musdb runs on:
what its files hold, that the MUSDB preparation takes it, that it resumes and refuses other options,
and that the vocal line leaves Slakh-layout corpora as they were."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from inmsrl.bin.main import main
from inmsrl.data.datadir import DataDir
from inmsrl.data.musdb import read_layout
from inmsrl.data.synth import programs
from inmsrl.data.synth.music import compose_song

RATE = 16000
OPTIONS = ["--num-tracks", "8", "--duration", "4", "--seed", "3", "--sample-rate", str(RATE),
           "--splits", "0.5,0.25,0.25", "--vocal-chance", "1"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mini_musdb") / "corpus"
    assert main(["synth", "--layout", "musdb", "--out", str(out), *OPTIONS]) == 0
    return out


def test_the_musdb_rule_groups_programs_into_the_four_sources():
    assert programs.musdb_source(0, True) == "drums"
    assert programs.musdb_source(33, False) == "bass"
    assert programs.musdb_source(53, False) == programs.musdb_source(81, False) == "vocals"  # Oohs, Lead 2
    assert programs.musdb_source(0, False) == programs.musdb_source(25, False) == "other"    # piano, guitar


# Fingerprint of compose_song(default_rng([5, i]), 30 s) for i < 20, computed with the generator as it
# was before the vocal option existed: Slakh-layout corpora must stay exactly what they were.
SONGS_BEFORE_VOCALS = "2bcffd059b0a89870a061bfd66ecd4146bcaa037e1935b0bfc0eda4ad84e58f8"


def test_a_vocal_line_is_drawn_only_when_asked_for():
    songs = [compose_song(np.random.default_rng([5, i]), 30.0) for i in range(20)]
    assert not any(p.attributes["source_class"] == "vocals" for s in songs for p in s.parts)
    fingerprint = hashlib.sha256()
    for part in (p for s in songs for p in s.parts):
        fingerprint.update(repr((part.program, part.is_drum, [(n.pitch, round(n.start, 6), round(n.end, 6),
                                                               n.velocity) for n in part.notes])).encode())
    assert fingerprint.hexdigest() == SONGS_BEFORE_VOCALS
    sung = [compose_song(np.random.default_rng([5, i]), 30.0, vocal_chance=1.0) for i in range(20)]
    for song in sung:
        vocals = [p for p in song.parts if p.attributes["source_class"] == "vocals"]
        assert len(vocals) == 1 and vocals[0].program in programs.VOCAL_PROGRAMS


def test_tracks_are_in_musdb_layout_stereo_and_sum_to_their_mixture(corpus: Path):
    layout = read_layout()
    validation = (corpus / "validation_tracks.txt").read_text().split()
    train = sorted(p.name for p in (corpus / "train").iterdir())
    test = sorted(p.name for p in (corpus / "test").iterdir())
    assert len(train) == 6 and len(test) == 2 and len(validation) == 2
    assert set(validation) <= set(train)             # MUSDB's validation tracks sit in train/
    vocal_tracks = 0
    for folder in [corpus / "train" / name for name in train] + [corpus / "test" / name for name in test]:
        mixture, rate = sf.read(folder / layout.mixture, dtype="int16")
        assert rate == RATE and mixture.shape == (4 * RATE, 2)
        total = np.zeros(mixture.shape, dtype=np.int64)
        for source in layout.sources:
            audio, _ = sf.read(folder / layout.files[source], dtype="int16")
            assert audio.shape == mixture.shape, (folder, source)
            total += audio
        np.testing.assert_array_equal(np.clip(total, -32768, 32767), mixture)
        assert not np.array_equal(mixture[:, 0], mixture[:, 1])        # panned, not dual mono
        vocals, _ = sf.read(folder / layout.files["vocals"])
        vocal_tracks += bool(np.abs(vocals).max() > 0)
        # every vocal stem of the Slakh-layout source is a GM voice or lead program
        metadata = yaml.safe_load((next((corpus / "slakh").glob(f"*/{folder.name}")) / "metadata.yaml")
                                  .read_text())
        for stem in metadata["stems"].values():
            if stem["inmsrl_attributes"]["source_class"] == "vocals":
                assert stem["program_num"] in programs.VOCAL_PROGRAMS
    assert vocal_tracks >= 6        # a sung line in every song (it may rest or be dropped in a short one)


def test_the_musdb_preparation_takes_it_with_its_validation_list(corpus: Path, tmp_path: Path):
    data = tmp_path / "data"
    assert main(["prepare-musdb", "--corpus", str(corpus), "--out", str(data),
                 "--validation-tracks", str(corpus / "validation_tracks.txt")]) == 0
    listed = (corpus / "validation_tracks.txt").read_text().split()
    assert sorted(DataDir.load(data / "validation").track_ids) == sorted(listed)
    assert DataDir.load(data / "train").sources == ("vocals", "drums", "bass", "other")
    assert len(DataDir.load(data / "test").track_ids) == 2


def test_a_rerun_resumes_and_other_options_are_refused(corpus: Path, capsys: pytest.CaptureFixture):
    stamp = (corpus / "test" / "Track00008" / "mixture.wav").stat().st_mtime_ns
    assert main(["synth", "--layout", "musdb", "--out", str(corpus), *OPTIONS]) == 0
    assert "0 tracks grouped into MUSDB's layout, 8 already there" in capsys.readouterr().err
    assert (corpus / "test" / "Track00008" / "mixture.wav").stat().st_mtime_ns == stamp
    changed = [o if o != "1" else "0.5" for o in OPTIONS]           # --vocal-chance 0.5
    assert main(["synth", "--layout", "musdb", "--out", str(corpus), *changed]) == 1
    assert "options.vocal_chance: 1.0 (existing) vs 0.5 (now)" in capsys.readouterr().err


@pytest.mark.timeout(300)
def test_the_mini_musdb_recipe_generates_prepares_and_dumps_its_corpus(repo_root: Path, tmp_path: Path):
    """Stages 0-2 of egs/mini_musdb (its local/corpus.sh and local/data.sh) on a tiny corpus."""
    work = tmp_path / "work"
    env = {**os.environ, "MINI_MUSDB": str(tmp_path / "corpus"),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    result = subprocess.run(
        ["./run.sh", "--stage", "0", "--stop-stage", "2", "--data-dir", str(work / "data"),
         "--dump-dir", str(work / "dump"), "--exp-dir", str(work / "exp"),
         "--corpus-opts", "--num-tracks 16 --duration 4 --eval-duration 12 --splits 0.5,0.25,0.25"],
        cwd=repo_root / "egs" / "mini_musdb", capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    listed = (tmp_path / "corpus" / "validation_tracks.txt").read_text().split()
    assert list(DataDir.load(work / "data" / "validation").track_ids) == sorted(listed)
    assert DataDir.load(work / "data" / "test").sources == ("vocals", "drums", "bass", "other")
    assert (work / "dump" / "test").is_dir()
    assert "this corpus has no ABX set" in result.stdout
