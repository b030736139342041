"""Any audio file as fixed-length mono windows at the model's rate: formats, resampling, memory, errors."""

from __future__ import annotations

import subprocess
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from inmsrl.audio.io import AudioReadError
from inmsrl.audio.stream import StreamResampler, array_windows, find_audio_files, stream_windows


def noise(rate: int, seconds: float, channels: int = 1, seed: int = 0) -> np.ndarray:
    data = np.random.default_rng(seed).uniform(-0.5, 0.5, (int(rate * seconds), channels))
    return data.astype(np.float32)


@pytest.mark.parametrize(("orig", "new"), [(48000, 44100), (22050, 44100), (44100, 16000), (8000, 11025)])
def test_streamed_resampling_equals_resampling_the_whole_signal(orig, new):
    signal = noise(orig, 1.3)[:, 0]
    whole = AF.resample(torch.from_numpy(signal), orig, new).numpy()
    resampler = StreamResampler(orig, new)
    pieces = [resampler.push(signal[i:i + 7777]) for i in range(0, len(signal), 7777)]
    streamed = np.concatenate([*pieces, resampler.push(np.zeros(0, np.float32), final=True)])
    assert len(streamed) == len(whole)
    np.testing.assert_allclose(streamed, whole, atol=1e-5)  # float rounding of the kernel only


def test_windows_cover_the_file_and_stereo_is_mixed_down(tmp_path):
    stereo = noise(48000, 23.0, channels=2)
    sf.write(tmp_path / "a.wav", stereo, 48000, subtype="FLOAT")
    windows = list(stream_windows(tmp_path / "a.wav", 16000, window=10 * 16000, hop=5 * 16000,
                                  block_seconds=1.5))
    # Windows every 5 s while they fit, then one ending at the end of the file.
    assert [w.start for w in windows] == [0.0, 5.0, 10.0, 13.0]
    assert all(len(w.samples) == 160000 and w.valid == 160000 for w in windows)
    assert windows[-1].end == pytest.approx(23.0)
    expected = AF.resample(torch.from_numpy(stereo.mean(axis=1)), 48000, 16000).numpy()
    np.testing.assert_allclose(windows[1].samples, expected[80000:240000], atol=1e-5)
    np.testing.assert_allclose(windows[-1].samples, expected[-160000:], atol=1e-5)


def test_a_file_shorter_than_a_window_gives_one_padded_window():
    windows = list(array_windows(noise(8000, 0.5)[:, 0], 8000, 8000, window=8000, hop=4000))
    assert len(windows) == 1 and windows[0].valid == 4000 and windows[0].end == 0.5
    assert not windows[0].samples[4000:].any()


def test_every_format_decodes_at_any_rate(tmp_path):
    sf.write(tmp_path / "a.flac", noise(44100, 3.0), 44100)
    sf.write(tmp_path / "b.ogg", noise(22050, 3.0, channels=2), 22050)
    sf.write(tmp_path / "c.wav", noise(32000, 3.0), 32000)
    for suffix in ("mp3", "m4a", "opus"):
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(tmp_path / "c.wav"),
                        str(tmp_path / f"c.{suffix}")], check=True)
    for name in ("a.flac", "b.ogg", "c.wav", "c.mp3", "c.m4a", "c.opus"):
        windows = list(stream_windows(tmp_path / name, 8000, window=8000, hop=8000))
        duration = windows[-1].end
        assert duration == pytest.approx(3.0, abs=0.1), name  # lossy coders add a few ms of padding
        assert all(np.abs(w.samples).max() > 0.05 for w in windows), name


def test_a_long_file_streams_in_bounded_memory(tmp_path):
    rate, minutes = 8000, 10
    with sf.SoundFile(tmp_path / "long.wav", "w", rate, 2) as out:  # written in pieces, never held whole
        for _ in range(minutes * 6):
            out.write(noise(rate, 10.0, channels=2))
    tracemalloc.start()
    try:
        count = sum(1 for _ in stream_windows(tmp_path / "long.wav", 16000, 10 * 16000, 5 * 16000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 119
    whole = minutes * 60 * 16000 * 4  # the resampled file in float32: 38 MB
    assert peak < whole / 5, f"peak {peak / 2**20:.1f} MiB while streaming"


def test_unreadable_and_empty_files_are_errors_naming_them(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "bad.flac").write_bytes(b"fLaC" + bytes(range(256)) * 8)
    (tmp_path / "bad.mp3").write_bytes(b"ID3" + bytes(500))
    sf.write(tmp_path / "silent.wav", np.zeros((0, 1), np.float32), 8000)
    for name in ("empty.wav", "bad.flac", "bad.mp3", "silent.wav", "missing.wav"):
        with pytest.raises(AudioReadError, match=name):
            list(stream_windows(tmp_path / name, 8000, 8000, 8000))


def test_folders_are_searched_recursively_and_ids_must_be_unique(tmp_path):
    for path in ("music/a.wav", "music/sub/b.MP3", "music/notes.txt", "other/a.wav"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"")
    found = find_audio_files([tmp_path / "music"])
    assert [track_id for track_id, _ in found] == ["a.wav", "sub/b.MP3"]
    with pytest.raises(ValueError, match="a.wav"):
        find_audio_files([tmp_path / "music", tmp_path / "other" / "a.wav"])
    with pytest.raises(FileNotFoundError, match="nowhere"):
        find_audio_files([tmp_path / "nowhere"])
