"""Stage 7, PAFT: the triplets it trains on, what the model hears, and what it may change."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from inmsrl.audio.io import write_audio
from inmsrl.bin.main import main
from inmsrl.data.abx import (
    ALL_DIFF,
    ONE_SHARED,
    AbxClip,
    AbxResponse,
    AbxTriplet,
    clip_origin,
    read_abx_set,
    split_train_test,
    track_index_by_number,
    write_abx_set,
)
from inmsrl.data.datadir import DataDir, TrackRecord
from inmsrl.data.dump import Dump, dump_data_dir
from inmsrl.models.config import build_model
from inmsrl.tasks.common import stems_of
from inmsrl.tasks.paft import PaftTask, clip_origins
from inmsrl.tasks.triplet import triplet_losses
from inmsrl.train.config import load_config, resolve_config
from inmsrl.train.task import RunContext

SOURCES = ["drums", "bass", "piano"]
RATE = 44100
SECONDS = 7
TINY = {"unet": {"channels": [2, 4, 4, 8, 8, 8]}, "mel_bands": 32}
TINY_DIRECT = {"unet": {"channels": [2, 4, 4, 8, 8, 9]}, "embedding_dim": 3}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A dump of 6 noise tracks (1 s clips), an ABX set over them and trained-looking experiments."""
    root = tmp_path_factory.mktemp("paft")
    rng = np.random.default_rng(0)
    records = []
    for t in range(1, 7):
        track = f"Track{t:05d}"
        stems = 0.1 * rng.standard_normal((len(SOURCES), SECONDS * RATE))
        paths = {name: root / "audio" / f"{track}_{name}.wav" for name in SOURCES}
        for name, stem in zip(SOURCES, stems, strict=True):
            write_audio(paths[name], stem, RATE)
        mix = root / "audio" / f"{track}_mix.wav"
        write_audio(mix, stems.sum(0), RATE)
        records.append(TrackRecord(track, mix, paths, float(SECONDS)))
    DataDir.from_tracks(SOURCES, records).write(root / "data")
    dump_data_dir(root / "data", root / "dump")
    triplets = []
    for sample in range(60):
        instrument = ("drums", "bass", "piano")[sample % 3]
        condition = (ALL_DIFF, ONE_SHARED)[(sample // 3) % 2]
        tracks = rng.choice(np.arange(1, 7), size=3, replace=False)
        if condition == ONE_SHARED:
            tracks[1] = tracks[0]
        segments = rng.choice(SECONDS, size=3, replace=False)
        letters = ("X", "A", "B") if condition == ALL_DIFF else ("X", "Y", "C")
        clips = [AbxClip(int(t), int(s) * RATE, (int(s) + 1) * RATE,
                         f"set0/{sample}/{instrument}/{letter}_{t}-{s}.wav", int(s))
                 for t, letter, s in zip(tracks, letters, segments, strict=True)]
        votes_a = int(rng.integers(0, 6))
        responses = tuple(AbxResponse("exsynth1", f"s{i}", "A+" if i < votes_a else "B+") for i in range(5))
        triplets.append(AbxTriplet(0, sample, instrument, condition, *clips, responses))
    write_abx_set(root / "abx", triplets)
    for kind in ("clean", "cascade"):
        save_experiment(root / "exp" / kind, {"type": kind, "target_sources": ["drums", "bass"], **TINY})
    save_experiment(root / "exp" / "direct_reconst", {"type": "direct_reconst", **TINY_DIRECT})
    return root


def save_experiment(exp: Path, config: dict) -> None:
    torch.manual_seed(0)
    model = build_model(config, SOURCES)
    with torch.no_grad():  # BatchNorm statistics that differ from the defaults, so that a reset would show
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.uniform_(-0.1, 0.1)
    exp.mkdir(parents=True)
    torch.save({"model": model.state_dict(), "config": {"model": config}, "epoch": 1}, exp / "final.pt")


def paft_config(corpus: Path, init: str, **task) -> dict:
    model = torch.load(corpus / "exp" / init / "final.pt", weights_only=False)["config"]["model"]
    return {"seed": 3, "model": model,
            "task": {"name": "paft", "init": str(corpus / "exp" / init), "abx_dir": str(corpus / "abx"),
                     "abx_dump": str(corpus / "dump"), "train_dump": str(corpus / "dump"),
                     "valid_dump": str(corpus / "dump"), "pieces": "pseudo", "fresh_every_epoch": True,
                     "split_seed": 5, "batch_size": 4, **task},
            "optim": {"lr": 1e-2}, "trainer": {"max_epochs": 1, "patience": 1}}


def make_task(config: dict) -> PaftTask:
    return PaftTask(config, RunContext(0, 1, torch.device("cpu"), config["seed"], Path(".")))


def run_training(tmp_path: Path, config: dict) -> dict[str, torch.Tensor]:
    path = tmp_path / "paft.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", "--config", str(path), "--exp-dir", str(tmp_path / "exp")]) == 0
    return torch.load(tmp_path / "exp" / "final.pt", weights_only=False)["model"]


def test_trains_on_the_70_percent_split_only_with_x_anchor_and_majority_positive(corpus):
    task = make_task(paft_config(corpus, "cascade"))
    abx = read_abx_set(corpus / "abx")
    train70, held_out = split_train_test(abx.triplets, 0.7, 5)  # what scoring evaluates on with --seed 5
    trained = {t.key for t in task.train_set.triplets} | {t.key for t in task.valid_set.triplets}
    assert not trained & {t.key for t in held_out}
    assert trained == {t.key for t in train70 if t.instrument in ("drums", "bass") and t.majority}
    assert not {t.key for t in task.train_set.triplets} & {t.key for t in task.valid_set.triplets}
    dump = Dump.open(corpus / "dump")
    index = track_index_by_number(dump.track_ids)
    for triplet, clips in zip(task.train_set.triplets, task.train_set.clips, strict=True):
        winner = triplet.a if triplet.votes_a > triplet.votes_b else triplet.b
        loser = triplet.b if winner is triplet.a else triplet.a
        expected = [clip_origin(c, index, RATE) for c in (triplet.x, winner, loser)]  # scoring's mapping
        assert clips.tolist() == [list(e) for e in expected]
        assert clip_origins(triplet, dump).tolist() == clips.tolist()


def test_pseudo_pieces_carry_the_clip_target_and_others_from_pieces_a_n_a(corpus):
    task = make_task(paft_config(corpus, "cascade"))
    dataset, dump = task.train_set, Dump.open(corpus / "dump")
    dataset.set_epoch(1)
    for index in range(8):
        item = dataset[index]
        triplet = dataset.triplets[int(item["triplet"])]
        b = SOURCES.index(triplet.instrument)
        for role, clip in enumerate((triplet.x, triplet.positive, triplet.negative)):
            track = track_index_by_number(dump.track_ids)[clip.track]
            clip_audio = dump.pcm(track, b, clip.start, RATE)
            np.testing.assert_array_equal(item["audio"][role, b].numpy(), clip_audio)
            other_track, other_start = item["other_origin"][role].tolist()
            for s in range(len(SOURCES)):
                if s != b:
                    np.testing.assert_array_equal(item["audio"][role, s].numpy(),
                                                  dump.pcm(other_track, s, other_start, RATE))
        (a1, _), (n1, _), (a2, _) = item["other_origin"].tolist()
        assert a1 == a2 != n1 and item["other_origin"][0, 1] != item["other_origin"][2, 1]


def test_normal_pieces_are_the_clips_own_mixtures(corpus):
    task = make_task(paft_config(corpus, "cascade", pieces="normal"))
    dump = Dump.open(corpus / "dump")
    item = task.train_set[0]
    triplet = task.train_set.triplets[int(item["triplet"])]
    for role, clip in enumerate((triplet.x, triplet.positive, triplet.negative)):
        track = track_index_by_number(dump.track_ids)[clip.track]
        own = np.stack([dump.pcm(track, s, clip.start, RATE) for s in range(len(SOURCES))])
        np.testing.assert_array_equal(item["audio"][role].numpy(), own)


def test_one_instrument_path_gives_the_full_forward_loss(corpus):
    task = make_task(paft_config(corpus, "cascade", train_separators=True, separation_weight=1.0))
    model = task.build_model().eval()
    batch = next(iter(task.train_loader(1)))
    with torch.no_grad():
        fast = task.losses(model, batch)
        full = triplet_losses(model, stems_of(batch), task.embedding_row[batch["target"]], task.margin)
    torch.testing.assert_close(fast["triplet"], full["triplet"])
    assert fast["separation"] > 0


@pytest.mark.parametrize("kind", ["cascade", "clean", "direct_reconst"])
def test_paft_changes_the_extractors_and_nothing_else(corpus, tmp_path, kind):
    before = torch.load(corpus / "exp" / kind / "final.pt", weights_only=False)["model"]
    after = run_training(tmp_path, paft_config(corpus, kind, train_examples=8, valid_examples=4))
    extractor = ("extractors.",) if kind != "direct_reconst" else ("encoder.", "head.")
    frozen = [k for k in before if not k.startswith(extractor)]
    assert frozen and any(k.startswith(("separator.", "decoders.", "spectrogram")) for k in frozen)
    for key in frozen:  # weights and BatchNorm statistics bit for bit
        assert torch.equal(before[key], after[key]), key
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(extractor))


def test_keep_batchnorm_stats_trains_extractor_weights_but_not_their_statistics(corpus, tmp_path):
    before = torch.load(corpus / "exp" / "cascade" / "final.pt", weights_only=False)["model"]
    after = run_training(tmp_path, paft_config(corpus, "cascade", train_examples=8, valid_examples=4,
                                               keep_batchnorm_stats=True))
    statistics = [k for k in before if k.startswith("extractors.") and k.endswith(("running_mean",
                                                                                   "running_var"))]
    assert statistics and all(torch.equal(before[k], after[k]) for k in statistics)
    assert any(not torch.equal(before[k], after[k]) for k in before
               if k.startswith("extractors.") and k.endswith(".weight"))


def test_cascade_paft_trains_the_separators_too(corpus, tmp_path):
    before = torch.load(corpus / "exp" / "cascade" / "final.pt", weights_only=False)["model"]
    after = run_training(tmp_path, paft_config(corpus, "cascade", train_examples=8, valid_examples=4,
                                               train_separators=True, separation_weight=1.0))
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"separator", "extractors"}
    assert "separation" in (tmp_path / "exp" / "train.log").read_text()


def test_bad_configs_are_refused_with_the_key_named(corpus):
    with pytest.raises(ValueError, match="unknown key 'task.unknown_key' of task 'paft'"):
        resolve_config(paft_config(corpus, "cascade", unknown_key=1))
    with pytest.raises(ValueError, match="model.type cascade"):
        make_task(paft_config(corpus, "clean", train_separators=True))
    config = paft_config(corpus, "cascade")
    config["model"] = {**config["model"], "mel_bands": 16}
    with pytest.raises(ValueError, match="model section"):
        make_task(config).build_model()


def train_cli(tmp_path: Path, config: dict, exp_dir: Path, capsys) -> tuple[int, str]:
    """``inmsrl train`` on ``config``: its exit status and what it printed on stderr."""
    path = tmp_path / f"{exp_dir.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    capsys.readouterr()
    status = main(["train", "--config", str(path), "--exp-dir", str(exp_dir)])
    return status, capsys.readouterr().err


def test_a_malformed_abx_directory_is_named_without_a_traceback(corpus, tmp_path, capsys):
    abx = tmp_path / "abx"
    shutil.copytree(corpus / "abx", abx)
    answers = abx / "inst_sim_abx_answers.csv"
    lines = answers.read_text().splitlines(keepends=True)
    answers.write_text("".join(lines[:3]) + lines[3].replace(",A+,", ",Q+,", 1) + "".join(lines[4:]))
    config = paft_config(corpus, "cascade", abx_dir=str(abx))
    status, err = train_cli(tmp_path, config, tmp_path / "bad_row", capsys)
    assert status == 2 and f"inmsrl train: {answers}:4: answer_total = 'Q+'" in err
    (abx / "dict_triplet_synth1.json").write_text("{")
    answers.write_text("".join(lines))
    status, err = train_cli(tmp_path, config, tmp_path / "bad_json", capsys)
    assert status == 2 and f"inmsrl train: {abx / 'dict_triplet_synth1.json'}:1: not valid JSON" in err
    status, err = train_cli(tmp_path, paft_config(corpus, "cascade", abx_dir=str(tmp_path / "none")),
                            tmp_path / "no_abx", capsys)
    assert status == 2 and f"{tmp_path / 'none' / 'inst_sim_abx_answers.csv'}: answers file not found" in err
    piano = write_abx_set(tmp_path / "piano_only", [t for t in read_abx_set(corpus / "abx").triplets
                                                    if t.instrument == "piano"])
    status, err = train_cli(tmp_path, paft_config(corpus, "cascade", abx_dir=str(piano)),
                            tmp_path / "piano", capsys)
    assert status == 2 and f"{piano} (task.abx_dir): no ABX triplet of the instruments the model " \
                           "embeds (drums, bass)" in err
    assert "Traceback" not in err


def test_an_experiment_directory_that_cannot_be_written_is_named(corpus, tmp_path, capsys):
    (tmp_path / "a_file").write_text("not a directory\n")
    config = paft_config(corpus, "cascade")
    status, err = train_cli(tmp_path, config, tmp_path / "a_file" / "exp", capsys)
    assert status == 2
    assert f"inmsrl train: experiment directory {tmp_path / 'a_file' / 'exp'}: cannot write" in err
    if os.geteuid() != 0:  # root writes into read-only folders anyway
        (tmp_path / "read_only").mkdir(mode=0o555)
        status, err = train_cli(tmp_path, config, tmp_path / "read_only", capsys)
        assert status == 2 and "Permission denied" in err and str(tmp_path / "read_only") in err


def test_a_dump_too_small_for_the_triplet_sampler_is_named(corpus, tmp_path, capsys):
    data = DataDir.load(corpus / "data")
    one = data.track_ids[:1]
    DataDir(data.sources, one, {name: {t: data.paths[name][t] for t in one} for name in data.paths},
            {t: data.durations[t] for t in one}).write(tmp_path / "one_track")
    dump_data_dir(tmp_path / "one_track", tmp_path / "small_dump")
    config = {"seed": 0, "model": {"type": "clean", "target_sources": ["drums", "bass"], **TINY},
              "task": {"name": "triplet", "train_dump": str(tmp_path / "small_dump"),
                       "valid_dump": str(corpus / "dump"), "segment_seconds": 1, "valid_segment_seconds": 1,
                       "train_examples": 4, "valid_examples": 4, "batch_size": 4},
              "optim": {"lr": 1e-3}, "trainer": {"max_epochs": 1}}
    status, err = train_cli(tmp_path, config, tmp_path / "triplet", capsys)
    assert status == 2
    assert f"inmsrl train: {tmp_path / 'small_dump'}, 44100-sample segments: source 0: too few pieces" in err
    assert "(sources 0 = drums, 1 = bass, 2 = piano)" in err


@pytest.mark.parametrize("recipe, conf", [("mini_slakh", "conf"), ("slakh", "conf/paper")])
def test_every_paft_model_of_a_recipe_has_a_config_that_fits_the_model_it_starts_from(recipe, conf):
    import re
    import shlex

    root = Path(__file__).resolve().parents[1] / "egs" / recipe
    match = re.search(r'--paft-models\s+"([^"]+)"', (root / "run.sh").read_text())
    template = (root / "inmsrl.sh").read_text()
    models = shlex.split(match.group(1)) if match else shlex.split(
        re.search(r'^paft_models="([^"]+)"', template, re.M).group(1))
    assert models
    for model in models:
        path = root / conf / f"paft_{model}.yaml"
        config = load_config(path, ["task.init=i", "task.abx_dir=a", "task.abx_dump=d"])
        assert config["task"]["name"] == "paft", path
        init = "cascade" if model == "cascade_paft" else model.removesuffix("_normal")
        init_model = yaml.safe_load((root / conf / f"{init}.yaml").read_text())["model"]
        assert config["model"] == init_model, f"{path}: model section differs from {init}.yaml's"
        assert config["task"]["pieces"] == ("normal" if model.endswith("_normal") or init == "clean"
                                            else "pseudo"), path
