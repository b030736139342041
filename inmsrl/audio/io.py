"""Reading and writing audio files through soundfile, with mono mix-down and resampling.

Every corpus in the toolkit is handled at one sample rate (44.1 kHz in the paper) and in mono, so the
readers here convert on the way in and name the file in every error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 44100


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
    With ``sample_rate`` set, the result is resampled to it; ``None`` keeps the file's rate.
    """
    try:
        data, file_sr = sf.read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioReadError(f"cannot read audio file {path}: {err}") from err
    audio = data.mean(axis=1) if mono else data.T
    if sample_rate is not None and sample_rate != file_sr:
        audio = resample(audio, file_sr, sample_rate)
        file_sr = sample_rate
    return np.ascontiguousarray(audio, dtype=np.float32), file_sr


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
