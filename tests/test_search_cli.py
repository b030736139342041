"""Using a trained model on one's own music, as the README tells: pack, embed-files, index, search, and
the per-instrument check on pseudo pieces (search-eval)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
from search_fixtures import SOURCES, SR, instrument
from test_recipe_template import with_inmsrl_on_path

from inmsrl.bin.main import main
from inmsrl.search.embedding_file import TrackEmbedding

SONG = 3  # the fixture's song whose audio the folder's files carry


def song(seconds: float, song: int = SONG) -> np.ndarray:
    return sum(instrument(song, name, seconds) for name in SOURCES)


@pytest.fixture(scope="module")
def packed(search_corpus, tmp_path_factory):
    _, exp = search_corpus
    path = tmp_path_factory.mktemp("packed") / "cascade.pt"
    assert main(["pack", str(exp), "-o", str(path)]) == 0
    return path


@pytest.fixture
def music(tmp_path):
    """A folder as a user has one: several formats, rates and channel counts, a 10-minute file, a
    corrupt file and an empty one."""
    folder = tmp_path / "music"
    (folder / "album").mkdir(parents=True)
    stereo = np.stack([song(12.0), song(12.0, 5)], axis=1) * 0.5
    sf.write(folder / "stereo48k.wav", _resample(stereo, 48000), 48000)
    sf.write(folder / "album" / "song.flac", song(8.0, 1), SR)
    sf.write(folder / "album" / "other.ogg", _resample(song(9.0, 2)[:, None], 22050), 22050)
    sf.write(tmp_path / "for_mp3.wav", song(7.0, 4), SR)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(tmp_path / "for_mp3.wav"), "-b:a", "64k",
                    str(folder / "track.mp3")], check=True)
    sf.write(folder / "long.flac", np.tile(song(30.0, 6), 20), SR)  # 10 minutes
    (folder / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(200)))
    (folder / "empty.mp3").write_bytes(b"")
    return folder


def _resample(audio: np.ndarray, rate: int) -> np.ndarray:
    """Linear interpolation to ``rate`` (just a file at another rate; the decoder resamples it back)."""
    times = np.arange(int(len(audio) * rate / SR)) / rate
    return np.stack([np.interp(times, np.arange(len(audio)) / SR, c) for c in audio.T], axis=1)


def test_embed_index_and_search_ones_own_music(packed, music, tmp_path, capsys):
    out = tmp_path / "emb"
    assert main(["embed-files", "--model", str(packed), str(music), "-o", str(out)]) == 1  # some failed
    report = capsys.readouterr().out
    assert "7 file(s)" in report and "5 embedded" in report and "2 failed" in report
    assert "corrupt.wav" in report and "empty.mp3" in report
    embedded = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.npz"))
    assert embedded == ["album/other.ogg.npz", "album/song.flac.npz", "long.flac.npz", "stereo48k.wav.npz",
                        "track.mp3.npz"]
    long = TrackEmbedding.load(out / "long.flac.npz")
    assert long.vectors.shape == (119, len(SOURCES), 16) and long.duration == pytest.approx(600.0)
    assert list(long.starts[:3]) == [0.0, 5.0, 10.0] and long.pooled.shape == (len(SOURCES), 16)

    # A re-run embeds nothing that is up to date; a changed file is embedded again.
    before = (out / "album" / "song.flac.npz").stat().st_mtime_ns
    sf.write(music / "stereo48k.wav", _resample(song(12.0, 7)[:, None], 48000), 48000)
    assert main(["embed-files", "--model", str(packed), str(music), "-o", str(out)]) == 1
    assert "1 embedded, 4 up to date, 2 failed" in capsys.readouterr().out
    assert (out / "album" / "song.flac.npz").stat().st_mtime_ns == before

    assert main(["index", "--index", str(tmp_path / "idx"), str(out)]) == 0
    assert "5 added" in capsys.readouterr().out
    # The query is one of the indexed files: it comes first, at distance 0, at the same time.
    assert main(["search", "--index", str(tmp_path / "idx"), "--query", str(music / "album" / "song.flac"),
                 "--weights", "piano=0.7,drums=0.3", "-k", "3", "--format", "json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["track"] == "album/song.flac" and hits[0]["distance"] == pytest.approx(0, abs=1e-4)
    assert hits[0]["query_time"] == hits[0]["match_time"] and len(hits) == 3
    assert set(hits[0]["per_source"]) == {"piano", "drums"}
    # By track id, as TSV.
    assert main(["search", "--index", str(tmp_path / "idx"), "--query", "long.flac", "-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t")[:3] == ["rank", "track", "distance"]
    assert lines[1].split("\t")[1] == "long.flac"
    # Removing a track.
    assert main(["index", "--index", str(tmp_path / "idx"), "--remove", "long.flac"]) == 0
    assert "1 removed; 4 tracks" in capsys.readouterr().out


def test_a_catalogue_embeds_as_a_job_array(packed, music, tmp_path, capsys, repo_root):
    for name in ("corrupt.wav", "empty.mp3", "long.flac"):
        (music / name).unlink()
    out = tmp_path / "emb"
    log = tmp_path / "log" / "embed.JOB.log"
    env = {**os.environ, "PATH": os.pathsep.join([str(repo_root / "utils"), with_inmsrl_on_path()])}
    subprocess.run([str(repo_root / "utils" / "run.pl"), "JOB=1:2", str(log), "inmsrl", "embed-files",
                    "--model", str(packed), str(music), "-o", str(out), "--part", "JOB", "--num-parts", "2"],
                   check=True, env=env, capture_output=True)
    assert "2 embedded" in (tmp_path / "log" / "embed.1.log").read_text()
    assert "2 embedded" in (tmp_path / "log" / "embed.2.log").read_text()
    assert len(list(out.rglob("*.npz"))) == 4


def test_per_instrument_search_finds_the_song_the_weighted_instrument_comes_from(search_corpus, tmp_path,
                                                                                  capsys):
    dump, exp = search_corpus
    assert main(["search-eval", "--model", str(exp), "--dump", str(dump), "--instruments", "piano", "drums",
                 "--queries", "16", "--window", "2", "--hop", "1",
                 "--json", str(tmp_path / "rates.json")]) == 0
    print(capsys.readouterr().out)  # the table, shown with -s
    rates = json.loads((tmp_path / "rates.json").read_text())["rates"]
    # Pieces with song A's piano over song B's drums (and the rest): weighting the piano finds A more
    # often than weighting the drums, which finds B more often; and the reverse for A's drums.
    assert rates["piano"]["piano"]["shares_target"] > rates["piano"]["drums"]["shares_target"]
    assert rates["piano"]["drums"]["shares_rest"] > rates["piano"]["piano"]["shares_rest"]
    assert rates["drums"]["drums"]["shares_target"] > rates["drums"]["piano"]["shares_target"]
    assert rates["drums"]["piano"]["shares_rest"] > rates["drums"]["drums"]["shares_rest"]


def test_the_python_api_mirrors_the_cli(packed, tmp_path):
    from inmsrl.search import Embedder, Index

    embedder = Embedder.from_pretrained(packed, device="cpu", window=2.0, hop=1.0)
    sf.write(tmp_path / "a.wav", song(6.0, 1), SR, subtype="FLOAT")
    from_file = embedder.embed_file(tmp_path / "a.wav")
    from_array = embedder.embed_array(np.stack([song(6.0, 1)] * 2), SR, "a-array")  # stereo array
    np.testing.assert_allclose(from_file.vectors, from_array.vectors, atol=1e-4)
    others = [embedder.embed_array(song(6.0, s), SR, f"song{s}") for s in (2, 4, 6)]
    index = Index.build([from_file, *others])
    hits = index.search(from_array, {"bass": 1.0}, k=2)
    assert hits[0].track_id == "a.wav" and hits[0].distance == pytest.approx(0, abs=1e-3)
    shutil.rmtree(tmp_path / "idx", ignore_errors=True)
    index.save(tmp_path / "idx")
    assert Index.open(tmp_path / "idx").search("song4", k=1)[0].track_id == "song4"


def test_a_kaldi_style_list_names_the_tracks(packed, tmp_path, capsys):
    for song_id in (1, 2):
        (tmp_path / f"Track{song_id}").mkdir()
        sf.write(tmp_path / f"Track{song_id}" / "mix.flac", song(4.0, song_id), SR)
    (tmp_path / "mix.scp").write_text("".join(f"Track{i} {tmp_path}/Track{i}/mix.flac\n" for i in (1, 2)))
    assert main(["embed-files", "--model", str(packed), "--scp", str(tmp_path / "mix.scp"),
                 "-o", str(tmp_path / "emb")]) == 0
    assert sorted(p.name for p in (tmp_path / "emb").iterdir()) == ["Track1.npz", "Track2.npz"]
    (tmp_path / "bad.scp").write_text("Track1 a.flac\nTrack3\n")
    assert main(["embed-files", "--model", str(packed), "--scp", str(tmp_path / "bad.scp"), "-o", "x"]) == 1
    assert "bad.scp:2" in capsys.readouterr().err


def test_bfloat16_embeds_close_to_float32_and_is_embedded_again_when_chosen(packed, tmp_path, capsys):
    from inmsrl.search import Embedder

    sf.write(tmp_path / "a.wav", song(6.0, 2), SR)
    exact = Embedder.from_pretrained(packed, device="cpu", window=2.0, hop=1.0).embed_file(tmp_path / "a.wav")
    rounded = Embedder.from_pretrained(packed, device="cpu", window=2.0, hop=1.0,
                                       dtype="bfloat16").embed_file(tmp_path / "a.wav")
    assert (exact.meta["dtype"], rounded.meta["dtype"]) == ("float32", "bfloat16")
    difference = (np.linalg.norm(rounded.vectors - exact.vectors, axis=-1)
                  / np.linalg.norm(exact.vectors, axis=-1))
    assert 0 < difference.max() < 0.05  # rounded, not another model
    with pytest.raises(ValueError, match="float16"):
        Embedder.from_pretrained(packed, device="cpu", dtype="float16")

    # Output made in float32 is not "up to date" for a bfloat16 run, and the other way round.
    command = ["embed-files", "--model", str(packed), str(tmp_path / "a.wav"), "-o", str(tmp_path / "emb")]
    assert main(command) == 0 and main(command) == 0
    assert "0 embedded, 1 up to date" in capsys.readouterr().out
    assert main([*command, "--dtype", "bfloat16"]) == 0
    assert "1 embedded, 0 up to date" in capsys.readouterr().out
    assert TrackEmbedding.load(tmp_path / "emb" / "a.wav.npz").meta["dtype"] == "bfloat16"
