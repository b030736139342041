"""Any audio file as a stream of fixed-length mono windows at one sample rate, in bounded memory.

What a user's music collection holds: wav/flac/ogg (decoded by soundfile) and mp3/m4a/aac/opus/...
(decoded by ffmpeg, read from its pipe), at any sample rate, with any number of channels. The file is
read block by block, mixed down to mono (channel mean), resampled with torchaudio's windowed-sinc
resampler and cut into windows of ``window`` samples every ``hop`` samples, so a 10-minute file never
sits in memory whole: at most one window plus one block does.

Streaming resampling is exact: each block is resampled with enough context on both sides that its
output equals, sample for sample (up to float rounding), that of resampling the whole file at once.
A file shorter than one window gives one window, zero-padded; when the windows do not reach the end,
a last one ends at the file's end, so every sample is in some window.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from inmsrl.audio.io import AudioReadError

SOUNDFILE_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".au", ".w64"})
FFMPEG_SUFFIXES = frozenset({".mp3", ".m4a", ".aac", ".opus", ".mp4", ".webm", ".wma", ".mka", ".ac3"})
AUDIO_SUFFIXES = SOUNDFILE_SUFFIXES | FFMPEG_SUFFIXES
BLOCK_SECONDS = 4.0  # decoded per read: bounds memory together with the window
_FILTER_WIDTH = 6    # torchaudio's default lowpass_filter_width (zero crossings)


@dataclass(frozen=True)
class Window:
    """One window of a file: its start (seconds, in the file) and mono samples at the target rate,
    of which the first ``valid`` are audio (the rest is padding of a file shorter than a window)."""

    start: float
    samples: np.ndarray
    valid: int
    rate: int

    @property
    def end(self) -> float:
        """Where the window's audio ends, in seconds."""
        return self.start + self.valid / self.rate


def _soundfile_blocks(path: Path, block_frames: int) -> tuple[int, Iterator[np.ndarray]]:
    """(sample rate, blocks of (frames, channels)) through soundfile; raises at once if undecodable."""
    handle = sf.SoundFile(str(path))

    def blocks() -> Iterator[np.ndarray]:
        with handle:
            while True:
                block = handle.read(block_frames, dtype="float32", always_2d=True)
                if not len(block):
                    return
                yield block

    return handle.samplerate, blocks()


def _ffprobe(path: Path) -> tuple[int, int]:
    """(sample rate, channels) of the first audio stream of ``path``."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        raise AudioReadError(f"cannot decode {path}: ffprobe/ffmpeg is not installed (tools/install.sh "
                             f"installs it; Debian: apt-get install ffmpeg)")
    probe = subprocess.run([ffprobe, "-v", "error", "-select_streams", "a:0", "-show_entries",
                            "stream=sample_rate,channels", "-of", "json", str(path)],
                           capture_output=True, text=True, timeout=60)
    streams = json.loads(probe.stdout or "{}").get("streams") if probe.returncode == 0 else None
    if not streams:
        reason = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else "no audio stream"
        raise AudioReadError(f"cannot decode {path}: {reason}")
    return int(streams[0]["sample_rate"]), int(streams[0]["channels"])


def _ffmpeg_blocks(path: Path, block_frames: int) -> tuple[int, Iterator[np.ndarray]]:
    """(sample rate, blocks of (frames, channels)) read from an ffmpeg pipe as float32."""
    rate, channels = _ffprobe(path)
    command = [shutil.which("ffmpeg") or "ffmpeg", "-nostdin", "-v", "error", "-i", str(path),
               "-map", "0:a:0", "-f", "f32le", "-acodec", "pcm_f32le", "-"]

    def blocks() -> Iterator[np.ndarray]:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            frame_bytes = 4 * channels
            while True:
                data = process.stdout.read(block_frames * frame_bytes)
                if not data:
                    break
                usable = len(data) - len(data) % frame_bytes
                yield np.frombuffer(data[:usable], dtype="<f4").reshape(-1, channels)
            error = process.stderr.read().decode(errors="replace").strip()
            if process.wait() != 0:
                reason = error.splitlines()[-1] if error else "failed"
                raise AudioReadError(f"cannot decode {path}: ffmpeg: {reason}")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stdout.close()
            process.stderr.close()

    return rate, blocks()


def open_blocks(path: str | Path, block_seconds: float = BLOCK_SECONDS) -> tuple[int, Iterator[np.ndarray]]:
    """The file's sample rate and its decoded blocks ``(frames, channels)``: soundfile for the formats it
    reads, ffmpeg for the others (and for a soundfile format that libsndfile cannot open)."""
    path = Path(path)
    if not path.is_file():
        raise AudioReadError(f"cannot read {path}: no such file")
    first_error = None
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        try:
            info = sf.info(str(path))
            return _soundfile_blocks(path, max(1, int(block_seconds * info.samplerate)))
        except (sf.LibsndfileError, RuntimeError) as err:
            first_error = err
    try:
        rate, _ = _ffprobe(path)
    except AudioReadError as err:
        if first_error is not None:
            raise AudioReadError(f"cannot decode {path}: {first_error}") from err
        raise
    return _ffmpeg_blocks(path, max(1, int(block_seconds * rate)))


class StreamResampler:
    """Resamples a stream of mono blocks exactly as resampling it whole would (torchaudio's sinc).

    torchaudio resamples in phases of ``orig / g`` input ↔ ``new / g`` output samples (``g`` the gcd),
    each output depending on inputs within a few periods. Input is therefore processed in whole phases,
    each call with ``context`` phases of past and future input around the ones it emits.
    """

    def __init__(self, orig_rate: int, new_rate: int):
        self.orig, self.new = orig_rate, new_rate
        gcd = math.gcd(orig_rate, new_rate)
        self.in_period, self.out_period = orig_rate // gcd, new_rate // gcd
        # Filter reach in input samples, rounded up to whole phases (plus one for safety).
        reach = _FILTER_WIDTH * orig_rate / min(orig_rate, new_rate) + 1
        self.context = (math.ceil(reach / self.in_period) + 1) * self.in_period
        self.buffer = np.zeros(self.context, dtype=np.float32)  # past context (zeros = the file's padding)
        self.samples_in = 0
        self.samples_out = 0
        self._transform = None

    def _resample(self, audio: np.ndarray) -> np.ndarray:
        import torch
        import torchaudio

        if self._transform is None:  # the transform computes its sinc kernel once, not per block
            self._transform = torchaudio.transforms.Resample(self.orig, self.new)
        with torch.inference_mode():
            return self._transform(torch.from_numpy(audio)).numpy()

    def push(self, block: np.ndarray, final: bool = False) -> np.ndarray:
        """Resampled output for ``block``, as far as enough future context is known (all on ``final``)."""
        if self.orig == self.new:
            return block
        self.samples_in += len(block)
        self.buffer = np.concatenate([self.buffer, block.astype(np.float32, copy=False)])
        available = len(self.buffer) - self.context  # input after the past context
        if final:
            phases = math.ceil(available / self.in_period)
            padded = np.concatenate([self.buffer, np.zeros(phases * self.in_period + self.context
                                                            - available, np.float32)])
        else:
            phases = (available - self.context) // self.in_period
            padded = self.buffer[: self.context + phases * self.in_period + self.context]
        if phases <= 0:
            return np.zeros(0, np.float32)
        out = self._resample(padded)
        skip = self.context // self.in_period * self.out_period
        count = phases * self.out_period
        if final:  # the whole file's output length, ceil(new × input / orig) in float32 as torchaudio has it
            whole = math.ceil(np.float32(self.out_period * self.samples_in / self.in_period))
            count = whole - self.samples_out
        self.samples_out += count
        self.buffer = self.buffer[phases * self.in_period:]
        return out[skip: skip + count]


def stream_windows(path: str | Path, sample_rate: int, window: int, hop: int,
                   block_seconds: float = BLOCK_SECONDS) -> Iterator[Window]:
    """The mono windows of the file ``path`` at ``sample_rate``: ``window`` samples every ``hop``.

    Raises :class:`AudioReadError` naming the file if it cannot be decoded or holds no audio.
    """
    file_rate, blocks = open_blocks(path, block_seconds)
    return block_windows(blocks, file_rate, sample_rate, window, hop, str(path))


def array_windows(audio: np.ndarray, rate: int, sample_rate: int, window: int, hop: int,
                  block_seconds: float = BLOCK_SECONDS) -> Iterator[Window]:
    """The windows of an in-memory signal: ``(samples,)`` or ``(channels, samples)`` at ``rate``."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim not in (1, 2):
        raise ValueError(f"audio must be (samples,) or (channels, samples), got shape {audio.shape}")
    frames = audio.reshape(1, -1).T if audio.ndim == 1 else audio.T
    step = max(1, int(block_seconds * rate))
    blocks = (frames[begin:begin + step] for begin in range(0, len(frames), step))
    return block_windows(blocks, rate, sample_rate, window, hop, "the audio array")


def block_windows(blocks: Iterator[np.ndarray], file_rate: int, sample_rate: int, window: int, hop: int,
                  name: str) -> Iterator[Window]:
    """Mono windows at ``sample_rate`` from decoded blocks ``(frames, channels)`` at ``file_rate``."""
    if window < 1 or hop < 1:
        raise ValueError(f"window and hop must be positive sample counts, got {window} and {hop}")
    resampler = StreamResampler(file_rate, sample_rate)
    buffer = np.zeros(0, np.float32)
    offset = 0          # target-rate index of buffer[0]
    next_start = 0      # start of the next window to emit
    last_end = 0        # end of the last emitted window
    total = 0           # target-rate samples seen

    def emit(final: bool) -> Iterator[Window]:
        nonlocal buffer, offset, next_start, last_end
        while next_start + window <= offset + len(buffer):
            begin = next_start - offset
            yield Window(next_start / sample_rate, buffer[begin: begin + window].copy(), window, sample_rate)
            last_end = next_start + window
            next_start += hop
        if final and last_end < total:
            start = max(0, total - window)
            samples = buffer[start - offset:]
            valid = len(samples)
            if valid < window:
                samples = np.pad(samples, (0, window - valid))
            yield Window(start / sample_rate, samples.copy(), valid, sample_rate)
            last_end = total
        drop = min(max(0, next_start - offset), len(buffer))
        drop = min(drop, max(0, len(buffer) - window))  # keep a window's worth for the final one
        buffer, offset = buffer[drop:], offset + drop

    pending = None
    for block in blocks:
        if pending is not None:
            mono = resampler.push(pending)
            total += len(mono)
            buffer = np.concatenate([buffer, mono])
            yield from emit(final=False)
        pending = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
    mono = resampler.push(pending if pending is not None else np.zeros(0, np.float32), final=True)
    total += len(mono)
    if total == 0:
        raise AudioReadError(f"{name} holds no audio (0 samples)")
    buffer = np.concatenate([buffer, mono])
    yield from emit(final=True)


def find_audio_files(paths: list[str | Path]) -> list[tuple[str, Path]]:
    """``(track id, file)`` for each named file and each audio file under each named folder (recursive).

    A file's id is its name; a file found under a folder has its path relative to that folder. Two
    files with the same id are an error naming both.
    """
    found: dict[str, Path] = {}
    for given in map(Path, paths):
        if given.is_dir():
            entries = [(p.relative_to(given).as_posix(), p) for p in sorted(given.rglob("*"))
                       if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES]
        elif given.exists():
            entries = [(given.name, given)]
        else:
            raise FileNotFoundError(f"{given}: no such file or folder")
        for track_id, path in entries:
            if track_id in found and found[track_id].resolve() != path.resolve():
                raise ValueError(f"two files would get the track id {track_id!r}: {found[track_id]} and "
                                 f"{path} (give their common folder instead)")
            found[track_id] = path
    return sorted(found.items())


def read_scp(path: str | Path) -> list[tuple[str, Path]]:
    """``(track id, file)`` of a Kaldi-style list (``<id> <path>`` per line, like a data directory's
    ``mix.scp``); relative paths are taken from the current directory, as the recipes write them."""
    entries: dict[str, Path] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(maxsplit=1)
        if len(fields) != 2:
            raise ValueError(f"{path}:{number}: expected '<id> <path>', got {line!r}")
        if fields[0] in entries:
            raise ValueError(f"{path}:{number}: track id {fields[0]!r} appears twice")
        entries[fields[0]] = Path(fields[1].strip())
    return sorted(entries.items())
