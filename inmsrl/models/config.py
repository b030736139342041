"""Build a model from a plain dict (a YAML ``model:`` section) and the data directory's sources.

Keys, with the paper's sizes as defaults (§4.3)::

    type: cascade            # separator | clean | cascade | direct | direct_reconst
    target_sources: [bass, piano]  # separator/clean/cascade: the subset of the data's sources it
                                   # handles (default: every source of the data directory)
    unet:                    # the separator U-Net; Direct's encoder (and Direct-Reconst's decoders)
      channels: [16, 32, 64, 128, 256, 512]        # Direct's default: [16, 32, 64, 128, 256, S × 128]
      dropout: 0.5           # after each of the first three decoder layers
      dropout_kind: channel  # channel (Dropout2d, the authors' code) | element (Jansson et al.)
      decoder_activation: leaky_relu               # leaky_relu (paper §4.3) | relu (Jansson et al.)
      leaky_slope: 0.2
    extractor:               # clean/cascade: the feature extractors' encoder
      channels: [16, 32, 64, 128, 256, 512]        # default: unet.channels
    mel_bands: 259           # clean/cascade
    log_mel:                 # clean/cascade: the extractors' input (inmsrl.audio.features.LogMel)
      scale: db              # db: 20·log10 of the mel magnitude (authors' code) | log_power
      standardize: true      # per example over (band, frame): a gain change moves nothing
    input:                   # the U-Net encoder's view of the mixture magnitude (separator, cascade's
      scale: linear          # separators, direct, direct_reconst): linear (authors' code) | db
      standardize: false     # (inmsrl.audio.features.MagnitudeScale); masks multiply the linear one
    embedding_dim: 128       # per source
    stft: {n_fft: 2048, hop_length: 512, sample_rate: 44100}

A key a model type does not use is an error that names it, so a typo never silently falls back to a
default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from inmsrl.audio.features import HOP_LENGTH, MAGNITUDE_SCALES, MEL_BANDS, MEL_SCALES, N_FFT, SAMPLE_RATE
from inmsrl.models.cascade import Cascade, Clean
from inmsrl.models.direct import Direct, DirectReconst, direct_channels
from inmsrl.models.extractor import EMBEDDING_DIM
from inmsrl.models.separator import SourceSeparator
from inmsrl.models.unet import DECODER_ACTIVATIONS, DROPOUT, DROPOUT_KINDS, LEAKY_SLOPE, PAPER_CHANNELS

MODEL_TYPES = ("separator", "clean", "cascade", "direct", "direct_reconst")
SECTION_KEYS = {
    "unet": {"channels", "dropout", "dropout_kind", "decoder_activation", "leaky_slope"},
    "extractor": {"channels"},
    "log_mel": {"scale", "standardize"},
    "input": {"scale", "standardize"},
    "stft": {"n_fft", "hop_length", "sample_rate"},
}
TOP_KEYS = {
    "separator": {"type", "target_sources", "unet", "input", "stft"},
    "clean": {"type", "target_sources", "unet", "extractor", "mel_bands", "log_mel", "embedding_dim", "stft"},
    "cascade": {"type", "target_sources", "unet", "input", "extractor", "mel_bands", "log_mel",
                "embedding_dim", "stft"},
    "direct": {"type", "unet", "input", "embedding_dim", "stft"},
    "direct_reconst": {"type", "unet", "input", "embedding_dim", "stft"},
}


class ModelConfigError(ValueError):
    """A model config that cannot be built; the message names the key."""


def _check_keys(section: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise ModelConfigError(f"unknown key(s) in {where}: {', '.join(unknown)} "
                               f"(allowed: {', '.join(sorted(allowed))})")


def _section(cfg: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = cfg.get(name) or {}
    if not isinstance(section, Mapping):
        raise ModelConfigError(f"model config key '{name}' must be a mapping, got {section!r}")
    _check_keys(section, SECTION_KEYS[name], f"model config section '{name}'")
    return section


def _positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelConfigError(f"model config key '{key}' must be a positive integer, got {value!r}")
    return value


def _channels(value: Any, key: str) -> tuple[int, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise ModelConfigError(f"model config key '{key}' must be a non-empty list of integers, "
                               f"got {value!r}")
    return tuple(_positive_int(c, key) for c in value)


def _fraction(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ModelConfigError(f"model config key '{key}' must be a number in [0, 1), got {value!r}")
    return float(value)


def _choice(value: Any, choices: Sequence[str], key: str) -> str:
    if value not in choices:
        raise ModelConfigError(f"model config key '{key}' must be one of {', '.join(choices)}, got {value!r}")
    return value


def _flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ModelConfigError(f"model config key '{key}' must be true or false, got {value!r}")
    return value


def build_model(cfg: Mapping[str, Any], sources: Sequence[str]) -> nn.Module:
    """The model ``cfg`` describes, for a data directory whose ``sources`` file lists ``sources``."""
    if not isinstance(cfg, Mapping):
        raise ModelConfigError(f"a model config must be a mapping, got {type(cfg).__name__}")
    kind = cfg.get("type")
    if kind not in MODEL_TYPES:
        raise ModelConfigError(f"model config key 'type' must be one of {', '.join(MODEL_TYPES)}, "
                               f"got {kind!r}")
    _check_keys(cfg, TOP_KEYS[kind], f"the '{kind}' model config")
    sources = tuple(sources)

    unet = _section(cfg, "unet")
    stft = _section(cfg, "stft")
    signal = {"n_fft": _positive_int(stft.get("n_fft", N_FFT), "stft.n_fft"),
              "hop_length": _positive_int(stft.get("hop_length", HOP_LENGTH), "stft.hop_length")}
    sample_rate = _positive_int(stft.get("sample_rate", SAMPLE_RATE), "stft.sample_rate")
    dropout = _fraction(unet.get("dropout", DROPOUT), "unet.dropout")
    slope = unet.get("leaky_slope", LEAKY_SLOPE)
    if isinstance(slope, bool) or not isinstance(slope, int | float) or slope < 0:
        raise ModelConfigError(f"model config key 'unet.leaky_slope' must be a non-negative number, "
                               f"got {slope!r}")
    decoder = {"decoder_activation": _choice(unet.get("decoder_activation", "leaky_relu"),
                                             DECODER_ACTIVATIONS, "unet.decoder_activation"),
               "dropout_kind": _choice(unet.get("dropout_kind", "channel"), DROPOUT_KINDS,
                                       "unet.dropout_kind")}
    embedding_dim = _positive_int(cfg.get("embedding_dim", EMBEDDING_DIM), "embedding_dim")
    target_sources = cfg.get("target_sources")
    if target_sources is not None and (isinstance(target_sources, str)
                                       or not isinstance(target_sources, Sequence)):
        raise ModelConfigError(f"model config key 'target_sources' must be a list of names, "
                               f"got {target_sources!r}")

    try:
        view = _section(cfg, "input")
        scale = {"input_scale": _choice(view.get("scale", "linear"), MAGNITUDE_SCALES, "input.scale"),
                 "standardize": _flag(view.get("standardize", False), "input.standardize")}
        if kind in ("direct", "direct_reconst"):
            default = direct_channels(len(sources), embedding_dim)
            channels = _channels(unet["channels"], "unet.channels") if "channels" in unet else default
            if kind == "direct":
                return Direct(sources, channels, embedding_dim, slope, **signal, **scale)
            return DirectReconst(sources, channels, embedding_dim, dropout, slope, **signal, **decoder,
                                 **scale)

        channels = _channels(unet.get("channels", PAPER_CHANNELS), "unet.channels")
        if kind == "separator":
            subset = tuple(target_sources) if target_sources is not None else sources
            unknown = [name for name in subset if name not in sources]
            if unknown:
                raise ModelConfigError(f"model config key 'target_sources' names {', '.join(unknown)}, not "
                                       f"among the data directory's sources ({', '.join(sources)})")
            return SourceSeparator(subset, channels, dropout, slope, **signal, **decoder, **scale)

        extractor = _section(cfg, "extractor")
        log_mel = _section(cfg, "log_mel")
        extractor_channels = _channels(extractor.get("channels", channels), "extractor.channels")
        common = {"extractor_channels": extractor_channels,
                  "mel_bands": _positive_int(cfg.get("mel_bands", MEL_BANDS), "mel_bands"),
                  "mel_scale": _choice(log_mel.get("scale", "db"), MEL_SCALES, "log_mel.scale"),
                  "standardize": _flag(log_mel.get("standardize", True), "log_mel.standardize"),
                  "embedding_dim": embedding_dim, "negative_slope": slope, "sample_rate": sample_rate,
                  **signal}
        if kind == "clean":
            return Clean(sources, target_sources, **common)
        return Cascade(sources, target_sources, separator_channels=channels, dropout=dropout, **common,
                       **decoder, separator_input=scale)
    except ModelConfigError:
        raise
    except ValueError as err:
        raise ModelConfigError(f"cannot build the '{kind}' model: {err}") from err
