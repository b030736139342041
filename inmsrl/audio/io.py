"""Reading and writing audio files through soundfile, with mono mix-down and resampling.

Every corpus in the toolkit is handled at one sample rate (44.1 kHz in the paper) and in mono, so the
readers here convert on the way in and name the file in every error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 44100
# A multichannel file whose mono mix-down is this much quieter than its channels mostly cancels out.
ANTI_PHASE_DB = 10.0


class AudioReadError(RuntimeError):
    """A file that should hold audio cannot be decoded."""


def audio_info(path: str | Path) -> sf._SoundFileInfo:
    """Sample rate, channels and frame count of ``path`` without decoding it."""
    try:
        return sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioReadError(f"cannot read audio file {path}: {err}") from err


def resample(audio: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """Band-limited resampling along the last axis (torchaudio's windowed-sinc resampler)."""
    if orig_sr == new_sr:
        return audio
    import torch
    import torchaudio.functional as AF

    out = AF.resample(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)), orig_sr, new_sr)
    return out.numpy()


def read_audio(path: str | Path, sample_rate: int | None = SAMPLE_RATE, mono: bool = True,
               start: int = 0, frames: int = -1) -> tuple[np.ndarray, int]:
    """Decode ``path`` to float32 in [-1, 1].

    Returns ``(audio, sample_rate)``; ``audio`` is ``(samples,)`` when ``mono`` (channels averaged),
    else ``(channels, samples)``. ``start``/``frames`` select a region in the file's own sample rate.
    With ``sample_rate`` set, the result is resampled to it; ``None`` keeps the file's rate. A file
    that decodes to fewer frames than its header promises, or that holds NaN or infinite samples,
    raises :class:`AudioReadError` naming the file (and the first bad sample).
    """
    try:
        with sf.SoundFile(str(path)) as stream:
            available = max(stream.frames - start, 0)
            expected = available if frames < 0 else min(frames, available)
            stream.seek(min(start, stream.frames))
            data = stream.read(frames, dtype="float32", always_2d=True)
            file_sr = stream.samplerate
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioReadError(f"cannot read audio file {path}: {err}") from err
    if len(data) < expected:
        raise AudioReadError(f"cannot read audio file {path}: decoded {start + len(data)} of the "
                             f"{start + available} frames its header gives (truncated?)")
    check_finite(data, path, first_frame=start)
    audio = data.mean(axis=1) if mono else data.T
    if sample_rate is not None and sample_rate != file_sr:
        audio = resample(audio, file_sr, sample_rate)
        file_sr = sample_rate
    return np.ascontiguousarray(audio, dtype=np.float32), file_sr


def mix_down(audio: np.ndarray) -> tuple[np.ndarray, str | None]:
    """The mono mix-down (mean of the channels) of ``(channels, samples)`` audio, as every reader here
    makes it, and, when the channels cancel in it (anti-phase), how much was lost: ``"silent"`` or
    ``"N dB below the channels"``; None when they do not."""
    mono = audio.mean(axis=0)
    channel_power = float(np.mean(np.square(audio, dtype=np.float64)))
    mono_power = float(np.mean(np.square(mono, dtype=np.float64)))
    if channel_power <= 0 or mono_power >= channel_power * 10 ** (-ANTI_PHASE_DB / 10):
        return mono, None
    drop = 10 * np.log10(channel_power / mono_power) if mono_power > 0 else np.inf
    return mono, "silent" if drop > 120 else f"{drop:.0f} dB below the channels"


def check_finite(data: np.ndarray, path: str | Path, first_frame: int = 0) -> None:
    """Raise :class:`AudioReadError` if ``data`` (``(frames, channels)`` as decoded) holds NaN or inf.

    A float file can hold them and every later step would launder them (int16 conversion turns NaN
    into 0 and inf into full scale), so they are refused where the file is read.
    """
    found = _first_nonfinite(data, first_frame)
    if found is not None:
        raise AudioReadError(_nonfinite_message(path, *found))


def _first_nonfinite(data: np.ndarray, first_frame: int) -> tuple[int, int, int, float] | None:
    """``(count, frame, channel, value)`` of the non-finite samples of ``data`` and the first of them."""
    bad = ~np.isfinite(data)
    if not bad.any():
        return None
    frame, channel = (int(i) for i in np.argwhere(bad)[0])
    return int(bad.sum()), first_frame + frame, channel, float(data[frame, channel])


def _nonfinite_message(path: str | Path, count: int, frame: int, channel: int, value: float) -> str:
    return (f"{path}: {count} non-finite sample(s) (NaN or inf); the first is {value} at sample {frame} "
            f"(channel {channel})")


def check_audio_file(path: str | Path, block_frames: int = 1 << 20) -> sf._SoundFileInfo:
    """Decode all of ``path`` block by block and return its header; :class:`AudioReadError` if it does
    not decode, ends before the frame count its header gives, or holds non-finite samples."""
    info = audio_info(path)
    decoded, count, first = 0, 0, None
    try:
        with sf.SoundFile(str(path)) as stream:
            for block in stream.blocks(blocksize=block_frames, dtype="float32", always_2d=True):
                found = _first_nonfinite(block, decoded)
                if found is not None:
                    count += found[0]
                    first = first or found[1:]
                decoded += len(block)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioReadError(f"cannot decode audio file {path} after {decoded} of {info.frames} frames: "
                             f"{err}") from err
    if first is not None:
        raise AudioReadError(_nonfinite_message(path, count, *first))
    if decoded != info.frames:
        raise AudioReadError(f"cannot read audio file {path}: decoded {decoded} of the {info.frames} "
                             "frames its header gives (truncated?)")
    return info


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE,
                subtype: str = "PCM_16") -> None:
    """Write ``audio`` (``(samples,)`` or ``(channels, samples)``) to ``path``; format from the suffix.

    Values are clipped to [-1, 1] first so that 16-bit files never wrap around. The file is written
    under a temporary name and renamed, so a killed writer never leaves a truncated file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    if data.ndim == 2:
        data = data.T
    tmp = path.with_name(f".{path.name}.tmp")
    sf.write(str(tmp), data, sample_rate, subtype=subtype, format=path.suffix.lstrip(".").upper())
    tmp.replace(path)
