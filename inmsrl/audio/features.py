"""Time-frequency features of the paper (§4.3): STFT magnitude and log-mel, as torch modules.

Settings: 44.1 kHz, window 2048, hop 512, Hann, centred, so a 3 s segment (132,300 samples) gives
1025 bins × 259 frames. The log-mel that feeds the similarity feature extractors has 259 bands on the
**Slaney** mel scale with Slaney (area) normalisation: with the HTK scale, 259 bands over 1025 bins
leave one band with an all-zero filter (a constant input row that carries no information).

The paper does not say how the mel spectrogram is scaled; the authors' code (the reference where the
paper is silent) takes the mel filterbank of the *magnitude*, converts it to decibels,
``20·log10(max(mel, 1e-5))``, and standardises each example over frequency and time, so that a gain
change moves no input value: scale ``"db"`` with ``standardize``, the default. Scale ``"log_power"``
(``ln(mel(|X|²) + 1e-8)``, no standardisation) is kept for comparison.

The modules always compute in float32 with autocast disabled: they sit at the input of models trained
under bf16 autocast, and an FFT, a squared magnitude or a log in bf16 would lose most of the dynamic
range before the network sees it.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

SAMPLE_RATE = 44100
N_FFT = 2048
HOP_LENGTH = 512
MEL_BANDS = 259
LOG_FLOOR = 1e-8  # "log_power": added to the mel power before the log (silence → ln 1e-8 ≈ -18.4)
DB_FLOOR = 1e-5   # "db": the mel magnitude is floored here before 20·log10 (silence → -100 dB)
STANDARDIZE_EPS = 1e-5  # added to the standard deviation: a constant (silent) input maps to zeros
MEL_SCALES = ("db", "log_power")
MAGNITUDE_SCALES = ("linear", "db")


def num_frames(num_samples: int, hop_length: int = HOP_LENGTH) -> int:
    """STFT frames of a centred transform of ``num_samples`` samples (132,300 → 259)."""
    return 1 + num_samples // hop_length


def num_bins(n_fft: int = N_FFT) -> int:
    """One-sided frequency bins of an ``n_fft``-point STFT (2048 → 1025)."""
    return n_fft // 2 + 1


class Spectrogram(nn.Module):
    """Waveform ``(..., samples)`` → STFT magnitude ``(..., n_fft // 2 + 1, frames)``."""

    def __init__(self, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH):
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.stft = torchaudio.transforms.Spectrogram(
            n_fft=n_fft, hop_length=hop_length, window_fn=torch.hann_window, center=True, power=1.0)

    @property
    def num_bins(self) -> int:
        return num_bins(self.n_fft)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=waveform.device.type, enabled=False):
            return self.stft(waveform.float())


def standardized(features: torch.Tensor) -> torch.Tensor:
    """Each example brought to zero mean and unit variance over its last two axes (band, frame)."""
    mean = features.mean(dim=(-2, -1), keepdim=True)
    std = features.std(dim=(-2, -1), keepdim=True, correction=0)
    return (features - mean) / (std + STANDARDIZE_EPS)


class MagnitudeScale(nn.Module):
    """How a network sees a linear STFT magnitude ``(..., bins, frames)``: as it is (``"linear"``) or in
    decibels (``"db"``: ``20·log10(max(·, DB_FLOOR))``), optionally standardised per example.

    Direct's encoder reads the mixture magnitude; the authors' code feeds it linear and unscaled,
    where loud low notes dwarf everything else — the default, and ``db`` with ``standardize`` the
    option that gives quiet instruments the same footing as the extractors' log-mel input.
    """

    def __init__(self, scale: str = "linear", standardize: bool = False):
        super().__init__()
        if scale not in MAGNITUDE_SCALES:
            raise ValueError(f"magnitude scale must be one of {', '.join(MAGNITUDE_SCALES)}, got {scale!r}")
        self.scale, self.standardize = scale, standardize

    def extra_repr(self) -> str:
        return f"scale={self.scale!r}, standardize={self.standardize}"

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        if self.scale == "linear" and not self.standardize:
            return magnitude
        with torch.autocast(device_type=magnitude.device.type, enabled=False):
            features = magnitude.float()
            if self.scale == "db":
                features = 20.0 * torch.log10(features.clamp_min(DB_FLOOR))
            return standardized(features) if self.standardize else features


class LogMel(nn.Module):
    """STFT magnitude ``(..., bins, frames)`` → log-mel ``(..., mel_bands, frames)``.

    Takes the magnitude rather than the waveform so that a separated magnitude (Cascade) feeds it
    directly and fine-tuning can back-propagate through it into the separator. ``scale``: ``"db"``
    (mel filterbank of the magnitude, ``20·log10(max(·, DB_FLOOR))``) or ``"log_power"`` (mel filterbank
    of the power, natural log of it plus ``LOG_FLOOR``); ``standardize`` then brings each example to
    zero mean and unit variance over its last two axes (mel band and frame).
    """

    def __init__(self, mel_bands: int = MEL_BANDS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE,
                 scale: str = "db", standardize: bool = True):
        super().__init__()
        if scale not in MEL_SCALES:
            raise ValueError(f"log-mel scale must be one of {', '.join(MEL_SCALES)}, got {scale!r}")
        self.mel_bands = mel_bands
        self.scale = scale
        self.standardize = standardize
        self.mel = torchaudio.transforms.MelScale(
            n_mels=mel_bands, sample_rate=sample_rate, f_min=0.0, f_max=sample_rate / 2,
            n_stft=num_bins(n_fft), norm="slaney", mel_scale="slaney")

    def extra_repr(self) -> str:
        return f"mel_bands={self.mel_bands}, scale={self.scale!r}, standardize={self.standardize}"

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=magnitude.device.type, enabled=False):
            magnitude = magnitude.float()
            if self.scale == "db":
                features = 20.0 * torch.log10(self.mel(magnitude).clamp_min(DB_FLOOR))
            else:
                features = torch.log(self.mel(magnitude.square()) + LOG_FLOOR)
            return standardized(features) if self.standardize else features


def empty_mel_bands(mel_bands: int = MEL_BANDS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE,
                    mel_scale: str = "slaney") -> int:
    """How many mel filters have no non-zero weight at this resolution (0 for the paper's Slaney set)."""
    import warnings

    import torchaudio.functional as AF

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torchaudio warns about exactly what we count
        bank = AF.melscale_fbanks(num_bins(n_fft), 0.0, sample_rate / 2, mel_bands, sample_rate,
                                  norm="slaney", mel_scale=mel_scale)
    return int((bank.amax(dim=0) == 0).sum())
