"""An Inst-Sim-ABX set for a synthetic corpus, answered by simulated listeners (docs/design.md §7).

The public ABX answers refer to Slakh audio that a synthetic corpus does not have, so PAFT and the
perceptual-agreement score need an ABX set of their own, in the same CSV+JSON format. Its clips are 5 s
windows of the corpus's tracks where the target instrument plays; its answers come from simulated
listeners who hear the *hidden attributes* the generator (``inmsrl synth``) stored for every stem.

What a listener hears of the target instrument in a clip is a :class:`PartView`: the stems of the
instrument's class that are audible in the clip (their sound — the program as the corpus's SoundFont
renders it, :func:`~inmsrl.data.synth.render.timbre_signature`, so presets that sound the same are one
timbre —, and the rhythm, figure, register, velocity and density of the song section the stem plays
most of the clip in), the drum fill heard in the clip, the chord roots the clip covers and the song's
tempo. The track a clip comes from is *not* part of it: listeners judge by what they hear, never by
"same song", so a clip of another song with the same groove and program can beat another clip of the
same song whose part has changed (another section's patterns, a residual stem entering, a fill, other
chords).

:func:`aspect_similarities` compares two views on timbre, rhythm, melody and tempo; a listener's
overall similarity is their weighted sum (:func:`attribute_similarity`). Each simulated listener
weighs the aspects around the population's weights (:data:`POPULATION_WEIGHTS`), perceives every
aspect difference with noise, answers A or B by the sign of the weighted difference and says "+"
when the margin is clear; sub-judgements per aspect come from the same perceived differences (N/A
when the listener hears no difference). The noise of :class:`ListenerModel` is set so that about as
many triplets reach the paper's "> 75 % agreement" as in the real data (~45 % All-Diff, ~85 %
One-Shared).

Clip layout follows the public data: per (set, sample, instrument) one X clip shared by both
conditions; One-Shared adds Y (another non-overlapping clip of X's track) and C (another track),
All-Diff adds A and B (two more tracks). Clip ``seg`` is the index of the 219,136-sample window in the
track (``start = seg * length``); sets hold 4 samples, so triplet ``i`` is ``set i//4, sample i%4``.
Everything random comes from the seed (one stream for listeners, one per instrument for the clips, one
per triplet for its answers), so a seed gives the same files on every run.
"""

from __future__ import annotations

import contextlib
import logging
import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from inmsrl.audio.io import read_audio
from inmsrl.data.abx import (
    CONDITIONS,
    ONE_SHARED,
    PAIR_LETTERS,
    AbxClip,
    AbxResponse,
    AbxTriplet,
    clip_path,
)
from inmsrl.data.segments import SILENCE_THRESHOLD, active_in_segments
from inmsrl.data.slakh import (
    SOURCES,
    SlakhError,
    TrackMetadata,
    class_stems,
    list_corpus,
    read_track_metadata,
    track_number,
)
from inmsrl.data.synth.music import SCALES
from inmsrl.data.synth.render import SoundFontError, default_soundfont, soundfont_sha256, timbre_signature

logger = logging.getLogger(__name__)

# 5 s clips of the public data: 219,136 samples at 44.1 kHz (a multiple of 2048).
CLIP_SAMPLES = 219136
CLIP_SAMPLE_RATE = 44100
SAMPLES_PER_SET = 4
ASPECTS = ("timbre", "rhythm", "melody")
DEFAULT_EXPERIMENTS = ("exsynth1", "exsynth2")
# The public data has ~48 answers per subject (median); the listener pool is sized to match.
ANSWERS_PER_SUBJECT = 48
# A stem more than 20 dB below the loudest stem of its class in a clip is masked: not heard.
MASKING_DB = 20.0
# Draws of a triplet's clips before accepting one already used (tiny corpora cannot avoid repeats).
MAX_DRAWS = 50

# How much the population attends to each aspect, per instrument (sums to 1). Drums have little
# "melody" (only their fills), so it weighs less there; tempo is a small term everywhere.
POPULATION_WEIGHTS: dict[str, dict[str, float]] = {
    "drums": {"timbre": 0.35, "rhythm": 0.45, "melody": 0.10, "tempo": 0.10},
    "bass": {"timbre": 0.30, "rhythm": 0.30, "melody": 0.30, "tempo": 0.10},
    "piano": {"timbre": 0.35, "rhythm": 0.25, "melody": 0.30, "tempo": 0.10},
    "guitar": {"timbre": 0.35, "rhythm": 0.25, "melody": 0.30, "tempo": 0.10},
    "residuals": {"timbre": 0.40, "rhythm": 0.20, "melody": 0.30, "tempo": 0.10},
}
WEIGHTED_TERMS = (*ASPECTS, "tempo")


class AbxSimulationError(ValueError):
    """A corpus that cannot give the requested ABX set (missing attributes, too few tracks, ...)."""


@dataclass(frozen=True)
class StemView:
    """The hidden attributes of one audible stem (``program`` is the kit preset for drums); ``timbre``
    identifies what the program sounds like (equal for presets that render the same; the program
    number itself when unknown)."""

    program: int
    is_drum: bool
    rhythm_id: str
    figure_id: str | None
    register: int | None
    velocity: int
    density: float
    timbre: str | None = None

    @property
    def sound(self) -> str:
        return self.timbre if self.timbre is not None else f"program-{self.program}"


@dataclass(frozen=True)
class PartView:
    """What a listener hears of the target instrument in one clip; the track is deliberately absent.

    ``fills`` are the drum fills heard in the clip (empty for other classes and fill-less clips);
    ``chord_roots`` are the pitch classes of the chord roots of the bars the clip covers.
    """

    instrument: str
    stems: tuple[StemView, ...]
    tempo: float
    chord_roots: frozenset[int] = frozenset()
    fills: frozenset[str] = frozenset()


def program_similarity(first: int, second: int, is_drum: bool) -> float:
    """1 for the same program (kit), 0.5 for the same GM family (kit family), else 0."""
    if first == second:
        return 1.0
    family = _kit_family if is_drum else (lambda program: program // 8)
    return 0.5 if family(first) == family(second) else 0.0


def sound_similarity(p: StemView, q: StemView) -> float:
    """1 for stems that sound the same (same rendered timbre), else :func:`program_similarity`."""
    return 1.0 if p.sound == q.sound else program_similarity(p.program, q.program, p.is_drum)


def _kit_family(kit: int) -> int:
    """GS drum kits: 0–23 acoustic (standard, room, power), 24–31 electronic, 32–47 jazz/brush."""
    return 0 if kit < 24 else 1 if kit < 32 else 2 if kit < 48 else 3


def _closeness(first: float, second: float, scale: float) -> float:
    return max(0.0, 1.0 - abs(first - second) / scale)


def _stem_timbre(p: StemView, q: StemView) -> float:
    return 0.85 * sound_similarity(p, q) + 0.15 * _closeness(p.velocity, q.velocity, 48.0)


def _stem_rhythm(p: StemView, q: StemView) -> float:
    ratio = min(p.density, q.density) / max(p.density, q.density) if max(p.density, q.density) > 0 else 1.0
    return 0.7 * (p.rhythm_id == q.rhythm_id) + 0.3 * ratio


def _stem_melody(p: StemView, q: StemView) -> float:
    same_figure = p.figure_id is not None and p.figure_id == q.figure_id
    if p.register is None or q.register is None:
        register = 1.0 if p.register == q.register else 0.0
    else:
        register = _closeness(p.register, q.register, 24.0)
    return 0.6 * same_figure + 0.4 * register


def _matched(first: Sequence[StemView], second: Sequence[StemView],
             similarity: Callable[[StemView, StemView], float]) -> float:
    """Symmetric best-match mean: each stem is compared with its closest stem of the other part."""
    if not first or not second:
        return 1.0 if not first and not second else 0.0
    forward = sum(max(similarity(p, q) for q in second) for p in first) / len(first)
    backward = sum(max(similarity(p, q) for p in first) for q in second) / len(second)
    return 0.5 * (forward + backward)


def _jaccard(first: frozenset, second: frozenset) -> float:
    union = first | second
    return len(first & second) / len(union) if union else 1.0


def aspect_similarities(x: PartView, y: PartView) -> dict[str, float]:
    """Similarity of two clips' target parts per aspect, each in [0, 1] (1 for a clip with itself).

    * timbre — the sound (same rendered timbre: 1, same GM family or kit family: 0.5) and a little
      velocity;
    * rhythm — the same rhythm pattern (the groove for drums), else how close the onset densities are;
    * melody — the same figure (bass figure, voicing, arpeggio order, contour) and register, plus the
      chord roots the clips cover; for drums, the fills heard (none in both counts as the same);
    * tempo — the songs' tempi, 40 BPM apart or more counting as unrelated.

    A part with several audible stems (residuals, two guitars) is compared stem by stem with the
    closest stem of the other part, in both directions. Nothing here knows which track a clip is from.
    """
    if x.instrument != y.instrument:
        raise ValueError(f"cannot compare a {x.instrument} part with a {y.instrument} part")
    if x.instrument == "drums":
        if x.fills and y.fills:
            melody = max(0.3, _jaccard(x.fills, y.fills))
        else:
            melody = 1.0 if not x.fills and not y.fills else 0.0
    else:
        melody = 0.8 * _matched(x.stems, y.stems, _stem_melody) + 0.2 * _jaccard(x.chord_roots, y.chord_roots)
    return {
        "timbre": _matched(x.stems, y.stems, _stem_timbre),
        "rhythm": _matched(x.stems, y.stems, _stem_rhythm),
        "melody": melody,
        "tempo": _closeness(x.tempo, y.tempo, 40.0),
    }


def attribute_similarity(x: PartView, y: PartView, weights: Mapping[str, float] | None = None) -> float:
    """The weighted sum of :func:`aspect_similarities` (population weights of the instrument by default).

    This is the judgement of the average listener without noise: the larger
    ``attribute_similarity(x, a) - attribute_similarity(x, b)``, the larger the share of simulated
    listeners answering A (listeners' own weights and noise scatter around it).
    """
    weights = POPULATION_WEIGHTS[x.instrument] if weights is None else weights
    similarities = aspect_similarities(x, y)
    return sum(weights[term] * similarities[term] for term in WEIGHTED_TERMS)


@dataclass(frozen=True)
class ListenerModel:
    """The noise of the simulated listening test (all on the scale of similarities in [0, 1]).

    ``weight_spread`` is the standard deviation of a listener's log-weights around the population's;
    ``perception_noise`` is added to every perceived aspect difference of every response and
    ``decision_noise`` to the overall judgement; ``lapse_rate`` is the chance of an answer at random
    (inattention). A listener answers "+" when the margin exceeds their own threshold (drawn around
    ``confident_margin`` overall and ``confident_aspect_margin`` per aspect) and N/A on an aspect
    whose perceived difference is below ``undecided_margin``. ``position_bias`` favours the clip shown
    first (the public data picks the left clip 53 % of the time).
    """

    weight_spread: float = 0.5
    perception_noise: float = 0.16
    decision_noise: float = 0.04
    lapse_rate: float = 0.21
    confident_margin: float = 0.3
    confident_aspect_margin: float = 0.5
    undecided_margin: float = 0.07
    position_bias: float = 0.01


@dataclass(frozen=True)
class Listener:
    """One simulated subject: their weights per instrument and their own thresholds and pace."""

    experiment: str
    subject_id: str
    weights: Mapping[str, Mapping[str, float]]
    confident_margin: float
    confident_aspect_margin: float
    position_bias: float
    pace_ms: float


def draw_listeners(rng: np.random.Generator, count_per_experiment: int,
                   experiments: Sequence[str] = DEFAULT_EXPERIMENTS,
                   model: ListenerModel = ListenerModel()) -> list[Listener]:
    """``count_per_experiment`` listeners per experiment, ``subject1``, ``subject2``, ... in each."""
    listeners = []
    for experiment in experiments:
        for number in range(1, count_per_experiment + 1):
            factors = np.exp(rng.normal(0.0, model.weight_spread, len(WEIGHTED_TERMS)))
            weights = {}
            for instrument, population in POPULATION_WEIGHTS.items():
                raw = {term: population[term] * factor
                       for term, factor in zip(WEIGHTED_TERMS, factors, strict=True)}
                total = sum(raw.values())
                weights[instrument] = {term: value / total for term, value in raw.items()}
            strictness = float(np.exp(rng.normal(0.0, 0.3)))
            listeners.append(Listener(
                experiment, f"subject{number}", weights,
                confident_margin=model.confident_margin * strictness,
                confident_aspect_margin=model.confident_aspect_margin * strictness,
                position_bias=float(rng.normal(model.position_bias, model.position_bias)),
                pace_ms=float(np.exp(rng.normal(math.log(12000.0), 0.35)))))
    return listeners


def undecided_margin(instrument: str, aspect: str, model: ListenerModel = ListenerModel()) -> float:
    """The perceived difference below which a listener answers N/A on ``aspect``.

    It grows as the aspect matters less for the instrument, so drum "melody" gets the most N/A, as in
    the public data (41 % there, ~15 % elsewhere).
    """
    population = POPULATION_WEIGHTS[instrument]
    typical = sum(population[term] for term in ASPECTS) / len(ASPECTS)
    return model.undecided_margin * math.sqrt(typical / population[aspect])


def _signed(value: float, margin: float) -> str:
    return ("A" if value > 0 else "B") + ("+" if abs(value) > margin else "-")


def judge(listener: Listener, x: PartView, a: PartView, b: PartView, rng: np.random.Generator,
          swapped: bool = False, model: ListenerModel = ListenerModel()) -> AbxResponse:
    """One listener's answer to "which of a/b is more similar to x?", in the canonical (a, b) terms.

    ``swapped`` means the screen showed b first (the position bias then favours b).
    """
    sims_a, sims_b = aspect_similarities(x, a), aspect_similarities(x, b)
    # An inattentive listener hears no real difference: their impression is noise alone.
    attentive = 0.0 if rng.random() < model.lapse_rate else 1.0
    perceived = {term: attentive * (sims_a[term] - sims_b[term]) + rng.normal(0.0, model.perception_noise)
                 for term in WEIGHTED_TERMS}
    weights = listener.weights[x.instrument]
    margin = sum(weights[term] * perceived[term] for term in WEIGHTED_TERMS)
    margin += listener.position_bias * (-1.0 if swapped else 1.0) + rng.normal(0.0, model.decision_noise)
    criteria = {term: None if abs(perceived[term]) < undecided_margin(x.instrument, term, model)
                else _signed(perceived[term], listener.confident_aspect_margin) for term in ASPECTS}
    # Close calls take longer; everyone listens to the three clips (15 s) before answering.
    pace = listener.pace_ms * (1.0 + math.exp(-abs(margin) / 0.05)) * math.exp(rng.normal(0.0, 0.4))
    return AbxResponse(listener.experiment, listener.subject_id, _signed(margin, listener.confident_margin),
                       criteria["timbre"], criteria["rhythm"], criteria["melody"],
                       choice_time_ms=int(15000 + round(pace)), swapped=swapped)


# ---------------------------------------------------------------------------------------------------
# Clips of a corpus and what is heard in them


@dataclass(frozen=True)
class ClipCandidate:
    """A window ``[start, end)`` of a track in which the instrument is active, and its part view."""

    track: int
    segment: int
    start: int
    end: int
    view: PartView


def clip_length(sample_rate: int) -> int:
    """Samples in a clip at ``sample_rate`` (219,136 at 44.1 kHz, the public data's clips)."""
    return round(CLIP_SAMPLES * sample_rate / CLIP_SAMPLE_RATE)


def _hidden_attributes(meta: TrackMetadata, key: str) -> Mapping:
    attributes = meta.stems[key].extra.get("inmsrl_attributes")
    needed = ("program", "rhythm_id", "figure_id", "register", "velocity", "density")
    if not isinstance(attributes, Mapping) or any(name not in attributes for name in needed):
        raise AbxSimulationError(
            f"{meta.directory / 'metadata.yaml'}: stem {key} has no inmsrl_attributes with "
            f"{', '.join(needed)}; simulated listeners need a corpus made by `inmsrl synth`")
    return attributes


def _song(meta: TrackMetadata) -> Mapping:
    song = meta.fields.get("inmsrl_song")
    needed = ("tempo", "tonic", "mode", "progression", "bars")
    if not isinstance(song, Mapping) or any(name not in song for name in needed):
        raise AbxSimulationError(f"{meta.directory / 'metadata.yaml'}: no inmsrl_song with "
                                 f"{', '.join(needed)}; simulated listeners need a corpus made by "
                                 "`inmsrl synth`")
    if song["mode"] not in SCALES:
        raise AbxSimulationError(f"{meta.directory / 'metadata.yaml'}: inmsrl_song.mode "
                                 f"{song['mode']!r} is not one of {', '.join(SCALES)}")
    return song


def _bars_in(start_s: float, end_s: float, bar_s: float, bars: int) -> range:
    return range(max(0, int(start_s // bar_s)), min(bars, int(math.ceil(end_s / bar_s))))


def _section_at(sections: Sequence[Mapping], bar: int) -> Mapping | None:
    """The section (of a song or a part) that contains ``bar``, if sections are recorded."""
    return next((section for section in sections if section["start_bar"] <= bar < section["end_bar"]), None)


def _chord_roots(song: Mapping, start_s: float, end_s: float) -> frozenset[int]:
    """Pitch classes of the chord roots of the bars overlapping the clip (one chord per bar, from the
    progression of the bar's section)."""
    scale = SCALES[song["mode"]]
    bar_s = 240.0 / float(song["tempo"])
    roots = set()
    for bar in _bars_in(start_s, end_s, bar_s, int(song["bars"])):
        section = _section_at(song.get("sections") or (), bar)
        progression = list(section["progression"] if section else song["progression"])
        offset = section["start_bar"] if section else 0
        degree = int(progression[(bar - offset) % len(progression)])
        roots.add((int(song["tonic"]) + scale[degree % 7] + 12 * (degree // 7)) % 12)
    return frozenset(roots)


def _heard_section(attributes: Mapping, song: Mapping, start_s: float, end_s: float) -> Mapping:
    """The attributes a stem has in the clip: those of the section it plays most of the clip in (a
    corpus without sections: the stem's own, song-long ones)."""
    sections = [section for section in attributes.get("sections") or () if section.get("playing", True)]
    if not sections:
        return attributes
    bar_s = 240.0 / float(song["tempo"])
    bars = _bars_in(start_s, end_s, bar_s, int(song["bars"]))

    def overlap(section: Mapping) -> int:
        return len(range(max(bars.start, section["start_bar"]), min(bars.stop, section["end_bar"])))

    return max(sections, key=overlap)


def _fill_heard(attributes: Mapping, song: Mapping, start_s: float, end_s: float) -> str | None:
    """The drum fill sounding in the clip, if any: fills end every fourth bar and start mid-bar or
    later, in sections (or songs) that have one and where the drums play."""
    bar_s = 240.0 / float(song["tempo"])
    sections = attributes.get("sections") or ()
    entry = int(attributes.get("entry_bar") or 0)
    for bar in _bars_in(start_s, end_s, bar_s, int(song["bars"])):
        section = _section_at(sections, bar) if sections else attributes
        if section is None or not section.get("playing", bar >= entry) or section.get("figure_id") is None:
            continue
        if bar % 4 == 3:
            fill_start, fill_end = (bar + 0.5) * bar_s, (bar + 1) * bar_s
            if min(end_s, fill_end) - max(start_s, fill_start) >= bar_s / 8:
                return str(section["figure_id"])
    return None


def _stem_view(attributes: Mapping, heard: Mapping, is_drum: bool, timbre: str | None) -> StemView:
    register = heard["register"]
    return StemView(program=int(attributes["program"]), is_drum=is_drum,
                    rhythm_id=str(heard["rhythm_id"]),
                    figure_id=None if heard["figure_id"] is None else str(heard["figure_id"]),
                    register=None if register is None else int(register),
                    velocity=int(heard["velocity"]), density=float(heard["density"]), timbre=timbre)


def scan_track(meta: TrackMetadata, instruments: Sequence[str], soundfont: str | None = None
               ) -> tuple[int, dict[str, list[ClipCandidate]]]:
    """Sample rate and, per instrument, the clip windows of the track where it is active.

    A class's stems are summed and tested with the silence rule of :mod:`inmsrl.data.segments`; in an
    active window, the stems heard are those within :data:`MASKING_DB` of the class's loudest stem.
    With ``soundfont`` (the corpus's), a stem's timbre is what that SoundFont renders for its program.
    """
    song = _song(meta)
    groups = class_stems(meta)
    found: dict[str, list[ClipCandidate]] = {instrument: [] for instrument in instruments}
    sample_rate = 0
    for instrument in instruments:
        keys = groups[instrument]
        if not keys:
            continue
        signals = []
        for key in keys:
            audio, rate = read_audio(meta.stem_path(key), sample_rate=None)
            if sample_rate and rate != sample_rate:
                raise AbxSimulationError(f"{meta.stem_path(key)}: {rate} Hz, but other stems of the "
                                         f"track are at {sample_rate} Hz")
            sample_rate = rate
            signals.append(audio)
        length = clip_length(sample_rate)
        samples = min(len(signal) for signal in signals)
        count = samples // length
        if count == 0:
            continue
        stems = np.stack([signal[:samples] for signal in signals])
        starts = np.arange(count, dtype=np.int64) * length
        active = active_in_segments(stems.sum(axis=0), starts, length)
        attributes = [_hidden_attributes(meta, key) for key in keys]
        timbres = [None if soundfont is None else
                   timbre_signature(int(attrs["program"]), instrument == "drums", soundfont)
                   for attrs in attributes]
        for segment in np.flatnonzero(active):
            start = int(starts[segment])
            window = stems[:, start:start + length]
            rms = np.sqrt(np.mean(np.square(window, dtype=np.float64), axis=1))
            heard = ((rms >= rms.max() * 10 ** (-MASKING_DB / 20))
                     & (np.ptp(window, axis=1) >= SILENCE_THRESHOLD))
            start_s, end_s = start / sample_rate, (start + length) / sample_rate
            drum = instrument == "drums"
            views = tuple(_stem_view(attrs, _heard_section(attrs, song, start_s, end_s), drum, timbre)
                          for attrs, timbre, on in zip(attributes, timbres, heard, strict=True) if on)
            fills = frozenset(fill for attrs, on in zip(attributes, heard, strict=True) if on and drum
                              for fill in [_fill_heard(attrs, song, start_s, end_s)] if fill is not None)
            view = PartView(instrument, views, float(song["tempo"]),
                            frozenset() if drum else _chord_roots(song, start_s, end_s), fills)
            found[instrument].append(ClipCandidate(track_number(meta.track_id), int(segment), start,
                                                   start + length, view))
    return sample_rate, found


@dataclass(frozen=True)
class CorpusClips:
    """Every usable clip of one split, per instrument and track number."""

    sample_rate: int
    clips: Mapping[str, Mapping[int, tuple[ClipCandidate, ...]]]
    tracks: tuple[str, ...]


def corpus_soundfont(corpus: str | Path) -> str | None:
    """The SoundFont a synthetic corpus was rendered with (its ``corpus.yaml``): the recorded path, or
    the default SoundFont when its content hash matches; None for a corpus without ``corpus.yaml``
    (listeners then tell timbres apart by program number). A recorded SoundFont that cannot be found is
    an error naming it: listeners must hear what the corpus's audio holds."""
    path = Path(corpus) / "corpus.yaml"
    if not path.is_file():
        return None
    try:
        description = yaml.safe_load(path.read_text()) or {}
        recorded = description.get("soundfont_path")
        wanted = description["options"]["soundfont_sha256"]
    except (yaml.YAMLError, KeyError, TypeError, AttributeError) as err:
        raise AbxSimulationError(f"{path}: cannot read the SoundFont it was rendered with ({err})") from err
    candidates = [Path(recorded)] if recorded else []
    with contextlib.suppress(SoundFontError):
        candidates.append(default_soundfont())
    for candidate in candidates:
        try:
            if candidate.is_file() and soundfont_sha256(candidate) == wanted:
                return str(candidate)
        except SoundFontError:
            continue
    raise AbxSimulationError(f"{path}: the SoundFont it was rendered with ({recorded}, sha256 "
                             f"{wanted[:12]}…) is not available; simulated listeners need it to know which "
                             "presets sound alike")


def collect_clips(corpus: str | Path, split: str, instruments: Sequence[str],
                  log: Callable[[str], None] | None = None) -> CorpusClips:
    """Read the split's tracks of a synthetic corpus (redux layout) and find their active clips."""
    unknown = [name for name in instruments if name not in SOURCES]
    if unknown:
        raise AbxSimulationError(f"unknown instrument(s) {', '.join(unknown)}; "
                                 f"choose from {', '.join(SOURCES)}")
    try:
        tracks, _ = list_corpus(corpus, layout="redux")
    except SlakhError as err:
        raise AbxSimulationError(str(err)) from err
    chosen = [track for track in tracks if track.split == split]
    if not chosen:
        raise AbxSimulationError(f"{corpus}: no tracks in the {split!r} split")
    clips: dict[str, dict[int, tuple[ClipCandidate, ...]]] = {name: {} for name in instruments}
    sample_rate = 0
    soundfont = corpus_soundfont(corpus)
    for done, track in enumerate(chosen, 1):
        try:
            meta = read_track_metadata(track.directory)
        except SlakhError as err:
            raise AbxSimulationError(str(err)) from err
        rate, found = scan_track(meta, instruments, soundfont)
        if rate and sample_rate and rate != sample_rate:
            raise AbxSimulationError(f"{track.directory}: {rate} Hz, but earlier tracks are at "
                                     f"{sample_rate} Hz")
        sample_rate = rate or sample_rate
        for instrument, candidates in found.items():
            if candidates:
                clips[instrument][candidates[0].track] = tuple(candidates)
        if log is not None and (done % 25 == 0 or done == len(chosen)):
            log(f"abx-simulate: scanned {done}/{len(chosen)} {split} tracks")
    return CorpusClips(sample_rate, clips, tuple(track.track_id for track in chosen))


# ---------------------------------------------------------------------------------------------------
# Triplets and their answers


@dataclass(frozen=True)
class SimulationOptions:
    """What the simulated ABX set looks like; see the module docstring."""

    triplets: int = 240
    min_answers: int = 3
    max_answers: int = 17
    instruments: tuple[str, ...] = SOURCES  # the synthetic corpus is in Slakh's classes
    seed: int = 0
    experiments: tuple[str, ...] = DEFAULT_EXPERIMENTS
    model: ListenerModel = field(default_factory=ListenerModel)

    def __post_init__(self) -> None:
        if self.triplets < 1:
            raise AbxSimulationError(f"--triplets must be at least 1, got {self.triplets}")
        if not 1 <= self.min_answers <= self.max_answers:
            raise AbxSimulationError(f"need 1 <= --min-answers <= --max-answers, got {self.min_answers} "
                                     f"and {self.max_answers}")
        if not self.instruments or len(set(self.instruments)) != len(self.instruments):
            raise AbxSimulationError(f"--instruments must name each instrument once, got {self.instruments}")
        if self.seed < 0:
            raise AbxSimulationError(f"--seed must be non-negative, got {self.seed}")
        if not self.experiments:
            raise AbxSimulationError("at least one experiment name is needed")


@dataclass(frozen=True)
class _Draw:
    """One (set, sample, instrument)'s clips: X and Y of one track, C, A and B of three others."""

    x: ClipCandidate
    y: ClipCandidate
    c: ClipCandidate
    a: ClipCandidate
    b: ClipCandidate

    @property
    def identity(self) -> tuple:
        return tuple((clip.track, clip.segment) for clip in (self.x, self.y, self.c, self.a, self.b))


def _stream(seed: int, *names: str | int) -> np.random.Generator:
    """An independent random stream per purpose, fixed by the seed and the names."""
    keys = [name if isinstance(name, int) else zlib.crc32(name.encode()) for name in names]
    return np.random.default_rng([seed, *keys])


def _draw_clips(instrument: str, by_track: Mapping[int, Sequence[ClipCandidate]], count: int,
                seed: int) -> list[_Draw]:
    """``count`` draws for ``instrument``, avoiding repeats while the corpus allows."""
    eligible = sorted(by_track)
    shared = [track for track in eligible if len(by_track[track]) >= 2]
    if len(eligible) < 3:
        raise AbxSimulationError(
            f"{instrument}: only {len(eligible)} track(s) of the split have an active "
            f"{CLIP_SAMPLES}-sample clip; All-Diff needs 3 different tracks")
    if not shared:
        raise AbxSimulationError(f"{instrument}: no track of the split has two active clips; One-Shared "
                                 "needs X and Y from the same track")
    rng = _stream(seed, "clips", instrument)
    draws: list[_Draw] = []
    seen: set[tuple] = set()
    repeats = 0
    for _ in range(count):
        for attempt in range(MAX_DRAWS):
            x_track = shared[int(rng.integers(len(shared)))]
            others = [track for track in eligible if track != x_track]
            c_track = others[int(rng.integers(len(others)))]
            a_track, b_track = (others[int(i)] for i in rng.choice(len(others), 2, replace=False))
            x_index, y_index = rng.choice(len(by_track[x_track]), 2, replace=False)
            pick = {track: by_track[track][int(rng.integers(len(by_track[track])))]
                    for track in (c_track, a_track, b_track)}
            draw = _Draw(by_track[x_track][int(x_index)], by_track[x_track][int(y_index)], pick[c_track],
                         pick[a_track], pick[b_track])
            if draw.identity not in seen or attempt == MAX_DRAWS - 1:
                repeats += draw.identity in seen
                break
        seen.add(draw.identity)
        draws.append(draw)
    if repeats:
        logger.warning("%s: the split is too small for %d distinct draws; %d repeat an earlier one",
                       instrument, count, repeats)
    return draws


def _abx_clip(candidate: ClipCandidate, set_id: int, sample_id: int, instrument: str, letter: str,
              sample_rate: int) -> AbxClip:
    return AbxClip(candidate.track, candidate.start, candidate.end,
                   clip_path(set_id, sample_id, instrument, letter, candidate.track, candidate.segment),
                   candidate.segment, sample_rate)


def answer_triplet(x: PartView, a: PartView, b: PartView, listeners: Sequence[Listener], answers: int,
                   rng: np.random.Generator, model: ListenerModel = ListenerModel(),
                   ) -> tuple[AbxResponse, ...]:
    """``answers`` responses by distinct ``listeners``, each shown (a, b) or (b, a) at random."""
    if answers > len(listeners):
        raise AbxSimulationError(f"{answers} answers per triplet need at least as many listeners, "
                                 f"got {len(listeners)}")
    chosen = rng.choice(len(listeners), answers, replace=False)
    return tuple(judge(listeners[int(i)], x, a, b, rng, swapped=bool(rng.random() < 0.5), model=model)
                 for i in sorted(chosen))


def simulate_abx_set(corpus: str | Path, split: str, options: SimulationOptions = SimulationOptions(),
                     log: Callable[[str], None] | None = None) -> list[AbxTriplet]:
    """The ABX triplets of ``split`` with simulated answers, for :func:`inmsrl.data.abx.write_abx_set`."""
    clips = collect_clips(corpus, split, options.instruments, log)
    draws = {instrument: _draw_clips(instrument, clips.clips[instrument], options.triplets, options.seed)
             for instrument in options.instruments}
    expected = options.triplets * len(CONDITIONS) * len(options.instruments) * (
        options.min_answers + options.max_answers) / 2
    per_experiment = max(options.max_answers,
                         math.ceil(expected / ANSWERS_PER_SUBJECT / len(options.experiments)))
    listeners = draw_listeners(_stream(options.seed, "listeners"), per_experiment, options.experiments,
                               options.model)
    triplets = []
    for index in range(options.triplets):
        set_id, sample_id = divmod(index, SAMPLES_PER_SET)
        for instrument in options.instruments:
            draw = draws[instrument][index]
            for condition in CONDITIONS:
                pair = (draw.y, draw.c) if condition == ONE_SHARED else (draw.a, draw.b)
                letters = PAIR_LETTERS[condition]
                key = f"set{set_id}/{sample_id}/{instrument}/{condition}"
                rng = _stream(options.seed, "answers", key)
                answers = int(rng.integers(options.min_answers, options.max_answers + 1))
                responses = answer_triplet(draw.x.view, pair[0].view, pair[1].view, listeners, answers, rng,
                                           options.model)
                x, a, b = (_abx_clip(clip, set_id, sample_id, instrument, letter, clips.sample_rate)
                           for clip, letter in zip((draw.x, *pair), ("X", *letters), strict=True))
                triplets.append(AbxTriplet(set_id, sample_id, instrument, condition, x, a, b, responses))
    return triplets
