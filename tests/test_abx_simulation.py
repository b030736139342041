"""The simulated-listener ABX set: format round trip, clip rules, determinism, listeners that follow the
hidden attributes (and not "same song")."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from inmsrl.audio.io import read_audio
from inmsrl.bin.main import main
from inmsrl.data.abx import ALL_DIFF, CONDITIONS, ONE_SHARED, read_abx_set
from inmsrl.data.abx_simulation import (
    CLIP_SAMPLES,
    AbxSimulationError,
    PartView,
    SimulationOptions,
    StemView,
    answer_triplet,
    aspect_similarities,
    attribute_similarity,
    collect_clips,
    draw_listeners,
    simulate_abx_set,
)
from inmsrl.data.segments import active_in_segments
from inmsrl.data.slakh import class_stems, read_track_metadata
from inmsrl.data.synth import SynthOptions, generate_corpus
from inmsrl.data.synth.render import default_soundfont, timbre_signature

INSTRUMENTS = ("drums", "bass", "piano", "guitar", "residuals")
TRIPLETS, MIN_ANSWERS, MAX_ANSWERS = 24, 3, 17


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """14 synthetic tracks of 15 s (three clips each), all in the test split."""
    out = tmp_path_factory.mktemp("abxsim") / "corpus"
    generate_corpus(out, SynthOptions(num_tracks=14, duration=15.0, seed=5, splits=(0.0, 0.0, 1.0)),
                    log=lambda line: None)
    return out


def simulate_cli(corpus: Path, out: Path, seed: int = 0, triplets: int = TRIPLETS) -> Path:
    assert main(["abx-simulate", "--corpus", str(corpus), "--split", "test", "--out", str(out),
                 "--triplets", str(triplets), "--min-answers", str(MIN_ANSWERS),
                 "--max-answers", str(MAX_ANSWERS), "--seed", str(seed)]) == 0
    return out


@pytest.fixture(scope="module")
def simulated(corpus, tmp_path_factory) -> Path:
    return simulate_cli(corpus, tmp_path_factory.mktemp("abxsim") / "abx")


@pytest.fixture(scope="module")
def triplets(simulated):
    return read_abx_set(simulated).triplets


def stem(program: int, rhythm: str, figure: str, register: int, velocity: int = 80,
         density: float = 4.0, is_drum: bool = False) -> StemView:
    return StemView(program, is_drum, rhythm, figure, register, velocity, density)


def test_round_trip_through_the_public_format(corpus, simulated, triplets):
    direct = simulate_abx_set(corpus, "test", SimulationOptions(
        triplets=TRIPLETS, min_answers=MIN_ANSWERS, max_answers=MAX_ANSWERS, seed=0))
    assert sorted(triplets, key=lambda t: t.key) == sorted(direct, key=lambda t: t.key)
    assert sorted(p.name for p in simulated.iterdir()) == [
        "dict_triplet_synth1.json", "dict_triplet_synth2.json", "inst_sim_abx_answers.csv", "simulation.json"]


def test_counts_answers_and_subjects(triplets):
    for instrument in INSTRUMENTS:
        for condition in CONDITIONS:
            cell = [t for t in triplets if (t.instrument, t.condition) == (instrument, condition)]
            assert len(cell) == TRIPLETS, (instrument, condition)
            assert {(t.set_id, t.sample_id) for t in cell} == {divmod(i, 4) for i in range(TRIPLETS)}
    counts = [t.num_responses for t in triplets]
    assert min(counts) >= MIN_ANSWERS and max(counts) <= MAX_ANSWERS
    assert len(set(counts)) > 5  # the number of listeners varies from triplet to triplet
    for triplet in triplets:
        subjects = [(r.experiment, r.subject_id) for r in triplet.responses]
        assert len(set(subjects)) == len(subjects), f"{triplet.key}: a subject answered twice"
        assert all(r.choice_time_ms > 15000 for r in triplet.responses)
    responses = [r for t in triplets for r in t.responses]
    assert {r.experiment for r in responses} == {"exsynth1", "exsynth2"}
    assert {r.total for r in responses} == {"A+", "A-", "B+", "B-"}
    assert 0.05 < np.mean([r.swapped for r in responses]) < 0.95  # both screen orders are shown
    assert any(r.melody is None for r in responses)  # N/A on some aspects


def test_clip_rules_of_both_conditions(triplets):
    x_of = {}
    for triplet in triplets:
        x, a, b = triplet.x, triplet.a, triplet.b
        if triplet.condition == ONE_SHARED:
            assert (a.letter, b.letter) == ("Y", "C")
            assert a.track == x.track and b.track != x.track
            assert a.end <= x.start or x.end <= a.start, f"{triplet.key}: X and Y overlap"
        else:
            assert triplet.condition == ALL_DIFF and (a.letter, b.letter) == ("A", "B")
            assert len({x.track, a.track, b.track}) == 3
        # As in the public data, both conditions of a (set, sample, instrument) share their X.
        assert x_of.setdefault((triplet.set_id, triplet.sample_id, triplet.instrument), x) == x


def test_every_clip_is_a_window_where_the_target_plays(corpus, triplets):
    tracks = {int(d.name.removeprefix("Track")): d for d in (corpus / "test").iterdir()}
    class_audio: dict[tuple[int, str], np.ndarray] = {}
    for triplet in triplets:
        for clip in (triplet.x, triplet.a, triplet.b):
            key = (clip.track, triplet.instrument)
            if key not in class_audio:
                meta = read_track_metadata(tracks[clip.track])
                keys = class_stems(meta)[triplet.instrument]
                assert keys, f"track {clip.track} has no {triplet.instrument} but is used for it"
                class_audio[key] = sum(read_audio(meta.stem_path(k), sample_rate=None)[0] for k in keys)
            audio = class_audio[key]
            assert clip.num_samples == CLIP_SAMPLES and clip.sample_rate == 44100
            assert clip.start >= 0 and clip.end <= len(audio)
            window = audio[clip.start:clip.end]  # the silence rule looks only inside the clip
            assert active_in_segments(window, np.array([0]), CLIP_SAMPLES)[0], clip.path


def test_same_seed_same_files_other_seed_other_answers(corpus, tmp_path):
    first = simulate_cli(corpus, tmp_path / "first", seed=3, triplets=8)
    second = simulate_cli(corpus, tmp_path / "second", seed=3, triplets=8)
    other = simulate_cli(corpus, tmp_path / "other", seed=4, triplets=8)
    for path in sorted(first.iterdir()):
        assert path.read_bytes() == (second / path.name).read_bytes(), path.name
    answers = "inst_sim_abx_answers.csv"
    assert (first / answers).read_bytes() != (other / answers).read_bytes()


def test_listeners_follow_the_attributes_in_the_simulated_set(corpus, triplets):
    clips = collect_clips(corpus, "test", INSTRUMENTS)
    view = {(instrument, clip.track, clip.segment): clip.view
            for instrument, by_track in clips.clips.items() for found in by_track.values() for clip in found}
    followed = []
    for triplet in triplets:
        if triplet.condition == ALL_DIFF and triplet.is_confident():
            x, a, b = (view[(triplet.instrument, clip.track, clip.segment)]
                       for clip in (triplet.x, triplet.a, triplet.b))
            margin = attribute_similarity(x, a) - attribute_similarity(x, b)
            followed.append((margin > 0) == (triplet.majority == "a"))
    assert len(followed) >= 20 and np.mean(followed) >= 0.85
    one_shared = [t for t in triplets if t.condition == ONE_SHARED]
    assert np.mean([t.majority == "a" for t in one_shared]) > 0.9  # the same part usually sounds closer


def test_a_clip_is_most_similar_to_itself():
    part = PartView("piano", (stem(0, "comp-r01", "voicing-02", 55),), 120.0, frozenset({0, 5}))
    assert aspect_similarities(part, part) == {"timbre": 1.0, "rhythm": 1.0, "melody": 1.0, "tempo": 1.0}
    other = PartView("piano", (stem(4, "comp-r03", "voicing-05", 48),), 100.0, frozenset({2}))
    assert attribute_similarity(part, other) < attribute_similarity(part, part)
    with pytest.raises(ValueError, match="bass part"):
        aspect_similarities(part, PartView("bass", (stem(33, "bass-r01", "bass-f00", 28),), 120.0))


@pytest.mark.parametrize("sharer", ["a", "b"])
def test_majority_picks_the_clip_that_shares_the_attributes(sharer):
    x = PartView("bass", (stem(33, "bass-r01", "bass-f02", 33, 80, 4.0),), 110.0, frozenset({0, 7}))
    unlike = PartView("bass", (stem(38, "bass-r06", "bass-f05", 28, 112, 9.0),), 110.0, frozenset({2, 9}))
    alike = PartView("bass", (stem(33, "bass-r01", "bass-f02", 33, 80, 4.0),), 110.0, frozenset({0, 7}))
    a, b = (alike, unlike) if sharer == "a" else (unlike, alike)
    listeners = draw_listeners(np.random.default_rng(0), 60)
    rng = np.random.default_rng(1)
    trials = [answer_triplet(x, a, b, listeners, 11, rng) for _ in range(100)]
    chose_sharer = [r.chose_a == (sharer == "a") for responses in trials for r in responses]
    majorities = [np.mean([r.chose_a for r in responses]) > 0.5 for responses in trials]
    assert np.mean(chose_sharer) > 0.85
    assert np.mean([m == (sharer == "a") for m in majorities]) >= 0.98


def test_another_song_wins_when_its_part_is_closer_than_the_same_songs():
    # X: a pad. Y (same song, later): the pad has stopped and a lead melody plays instead.
    # C (another song): the same pad program, rhythm and voicing, in another key and tempo.
    pad = stem(48, "pad-r01", "voicing-02", 55)
    x = PartView("residuals", (pad,), 120.0, frozenset({0, 5}))
    y = PartView("residuals", (stem(73, "mel-r04", "contour-07", 72, 112, 6.0),), 120.0, frozenset({7, 9}))
    c = PartView("residuals", (pad,), 104.0, frozenset({2, 7}))
    assert attribute_similarity(x, c) > attribute_similarity(x, y) + 0.3
    listeners = draw_listeners(np.random.default_rng(2), 60)
    rng = np.random.default_rng(3)
    trials = [answer_triplet(x, y, c, listeners, 11, rng) for _ in range(50)]
    assert np.mean([np.mean([not r.chose_a for r in responses]) > 0.5 for responses in trials]) >= 0.95


def test_too_few_tracks_and_missing_attributes_are_clear_errors(corpus, tmp_path):
    small = tmp_path / "small"
    for track in sorted((corpus / "test").iterdir())[:2]:
        shutil.copytree(track, small / "test" / track.name)
    with pytest.raises(AbxSimulationError, match="All-Diff needs 3 different tracks"):
        simulate_abx_set(small, "test", SimulationOptions(triplets=2))
    with pytest.raises(AbxSimulationError, match="no tracks in the 'train' split"):
        simulate_abx_set(small, "train", SimulationOptions(triplets=2))
    metadata = small / "test" / sorted(p.name for p in (small / "test").iterdir())[0] / "metadata.yaml"
    data = yaml.safe_load(metadata.read_text())
    for entry in data["stems"].values():
        entry.pop("inmsrl_attributes")
    metadata.write_text(yaml.safe_dump(data))
    with pytest.raises(AbxSimulationError, match=rf"{metadata}: stem S\d\d has no inmsrl_attributes"):
        collect_clips(small, "test", INSTRUMENTS)


def test_cli_rejects_bad_options(corpus, tmp_path, capsys):
    assert main(["abx-simulate", "--corpus", str(corpus), "--out", str(tmp_path / "x"),
                 "--min-answers", "5", "--max-answers", "4"]) == 1
    assert "--min-answers" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["abx-simulate", "--corpus", str(corpus), "--out", str(tmp_path / "x"),
              "--instruments", "flute"])


def test_presets_that_render_alike_are_one_timbre_to_listeners():
    """TimGM6mb renders the Jazz kit (32) sample for sample as the Standard kit (0): listeners must hear
    one kit, while the Room kit (8) stays another sound."""
    soundfont = str(default_soundfont())
    standard, jazz, room = (timbre_signature(kit, True, soundfont) for kit in (0, 32, 8))
    assert standard == jazz != room
    groove = ("groove-01", None, None, 90, 12.0)
    x, same_sound, other = (PartView("drums", (StemView(kit, True, *groove, timbre=timbre),), 120.0)
                            for kit, timbre in ((0, standard), (32, jazz), (8, room)))
    assert aspect_similarities(x, same_sound)["timbre"] == 1.0
    assert aspect_similarities(x, other)["timbre"] < 1.0


def test_a_clip_hears_the_section_it_falls_in(corpus):
    """A part that changes between sections is heard with the patterns of the section under the clip."""
    clips = collect_clips(corpus, "test", INSTRUMENTS)
    checked = 0
    for track in sorted((corpus / "test").iterdir()):
        meta = read_track_metadata(track)
        song = meta.fields["inmsrl_song"]
        bar_s = 240.0 / song["tempo"]
        number = int(track.name.removeprefix("Track"))
        for instrument, keys in class_stems(meta).items():
            if instrument not in INSTRUMENTS or len(keys) != 1:
                continue
            sections = meta.stems[keys[0]].extra["inmsrl_attributes"]["sections"]
            for clip in clips.clips[instrument].get(number, ()):
                if len(clip.view.stems) != 1:
                    continue
                middle = (clip.start + clip.end) / 2 / 44100 / bar_s
                inside = [s for s in sections if s["start_bar"] <= (clip.start / 44100) / bar_s
                          and (clip.end / 44100) / bar_s <= s["end_bar"]]
                if inside and inside[0]["playing"]:
                    assert inside[0]["start_bar"] <= middle < inside[0]["end_bar"]
                    assert clip.view.stems[0].rhythm_id == inside[0]["rhythm_id"]
                    assert clip.view.stems[0].figure_id == inside[0]["figure_id"]
                    assert clip.view.stems[0].velocity == inside[0]["velocity"]
                    checked += 1
    assert checked >= 10
