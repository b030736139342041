"""Stage 6, the Direct family: pre-training to Clean targets, triplet training, Direct-Reconst.

The corpus is seeded noise (one signal per track and source, piano silent in track 0 and bass silent in
one segment of track 1), dumped at 16 kHz; the models are tiny. What is checked is what a user of the
recipe relies on: the pre-training targets are exactly the concatenated Clean embeddings with zero
blocks for left-out or silent sources, the triplet loss looks at the target's block only, the
reconstruction terms are there and training lowers them, DA redraws the pieces and the fixed set does
not, and the shipped mini configs train every variant end to end into models with the common
``embed`` interface.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from inmsrl.audio.io import write_audio
from inmsrl.bin.main import main
from inmsrl.data.datadir import DataDir, TrackRecord
from inmsrl.data.dump import dump_data_dir
from inmsrl.data.segments import ensure_segment_tables
from inmsrl.models.config import build_model
from inmsrl.models.direct import Direct, DirectOutput, DirectReconst
from inmsrl.tasks.common import TaskConfigError, load_trained
from inmsrl.tasks.direct import DirectPretrainTask, DirectTripletTask, direct_triplet_losses
from inmsrl.train.config import ConfigError, load_config, resolve_config
from inmsrl.train.task import RunContext, task_factory
from inmsrl.train.trainer import train

SR = 16000
SOURCES = ("drums", "bass", "piano", "guitar", "residuals")
TRACKS = 8
SECONDS = 7  # two 3 s segments per track
PIANO, BASS = SOURCES.index("piano"), SOURCES.index("bass")
DIM = 3
STFT = {"n_fft": 256, "hop_length": 256, "sample_rate": SR}
CLEAN_MODEL = {"type": "clean", "target_sources": list(SOURCES), "unet": {"channels": [2, 4, 8]},
               "mel_bands": 16, "embedding_dim": DIM, "stft": STFT}
DIRECT_MODEL = {"type": "direct", "embedding_dim": DIM, "unet": {"channels": [2, 4, 5 * DIM]}, "stft": STFT}
RECONST_MODEL = {**DIRECT_MODEL, "type": "direct_reconst",
                 "unet": {"channels": [2, 4, 5 * DIM], "dropout": 0.0}}
CONF = Path(__file__).resolve().parents[1] / "egs"


def source_signal(track: int, source: int) -> np.ndarray:
    rng = np.random.default_rng([track, source])
    signal = rng.uniform(-0.3, 0.3, SR * SECONDS).astype(np.float32)
    if source == PIANO and track == 0:
        signal[:] = 0.0                    # a piece without piano
    if source == BASS and track == 1:
        signal[3 * SR:6 * SR] = 0.0        # bass silent in the second segment
    return signal


@pytest.fixture(scope="module")
def dump_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("direct")
    records = []
    for t in range(TRACKS):
        paths = {}
        for s, name in enumerate(SOURCES):
            paths[name] = root / "audio" / f"T{t}" / f"{name}.flac"
            write_audio(paths[name], source_signal(t, s), SR)
        mix = root / "audio" / f"T{t}" / "mix.flac"
        write_audio(mix, sum(source_signal(t, s) for s in range(len(SOURCES))) / len(SOURCES), SR)
        records.append(TrackRecord(f"T{t}", mix, paths, float(SECONDS)))
    DataDir.from_tracks(SOURCES, records).write(root / "data")
    dump = dump_data_dir(root / "data", root / "dump", sample_rate=SR)
    ensure_segment_tables(dump, [3.0])
    return root / "dump"


def config(dump_dir: Path, task: dict, model: dict, **trainer) -> dict:
    return resolve_config({
        "task": {"train_dump": str(dump_dir), "valid_dump": str(dump_dir), "segment_seconds": 3,
                 "valid_segment_seconds": 3, "batch_size": 4, **task},
        "model": model, "optim": {"lr": 1e-3},
        "trainer": {"max_epochs": 1, "device": "cpu", "tensorboard": False, "progress_bar": False,
                    **trainer}})


def context(tmp_path: Path) -> RunContext:
    return RunContext(rank=0, world_size=1, device=torch.device("cpu"), seed=0, exp_dir=tmp_path)


@pytest.fixture(scope="module")
def clean_exp(dump_dir, tmp_path_factory) -> Path:
    """A (barely) trained Clean over all five sources: the pre-training targets."""
    exp = tmp_path_factory.mktemp("clean_all") / "exp"
    train(config(dump_dir, {"name": "triplet", "train_examples": 4, "valid_examples": 2}, CLEAN_MODEL), exp)
    return exp


def pretrain_task(dump_dir, clean_exp, tmp_path, **task) -> DirectPretrainTask:
    cfg = config(dump_dir, {"name": "direct_pretrain", "clean": str(clean_exp), "train_examples": 48,
                            "valid_examples": 4, **task}, DIRECT_MODEL)
    return DirectPretrainTask(resolve_config(cfg), context(tmp_path))


def triplet_task(dump_dir, tmp_path, model=DIRECT_MODEL, **task) -> DirectTripletTask:
    cfg = config(dump_dir, {"name": "direct_triplet", "train_examples": 8, "valid_examples": 4, **task},
                 model)
    return DirectTripletTask(resolve_config(cfg), context(tmp_path))


def test_pretraining_targets_are_clean_embeddings_with_zero_blocks(dump_dir, clean_exp, tmp_path):
    """The targets are Clean's embeddings of the subset's active sources, zero blocks elsewhere, and —
    as in the authors' code — the concatenation scaled to unit length (normalize_targets: false keeps
    Clean's scale). They are computed once per segment; they must equal Clean's embedding of the
    segment's stems computed when the item is drawn."""
    task = pretrain_task(dump_dir, clean_exp, tmp_path, normalize_targets=False)
    normalised = pretrain_task(dump_dir, clean_exp, tmp_path)
    assert normalised.normalize_targets
    clean = load_trained(clean_exp, SOURCES).eval()
    dump = task.train.dump
    seen = {"left out": 0, "silent": 0, "embedded": 0}
    for batch in task.train_loader(1):
        stems = batch["audio"].float() / 32768
        targets = task.targets(batch["clean"], batch["active"]).view(len(stems), len(SOURCES), DIM)
        unit = normalised.targets(batch["clean"], batch["active"])
        torch.testing.assert_close(unit, torch.nn.functional.normalize(targets.flatten(1), dim=1))
        assert torch.allclose(unit.norm(dim=1)[unit.norm(dim=1) > 0], torch.ones(1))
        # Clean of the segment with all its sources: each extractor sees only its own stem.
        track, start = batch["origin"][:, 0, 0], batch["origin"][:, 0, 1]
        full = torch.stack([torch.from_numpy(dump.segment(int(t), int(s), task.train.table.length).copy())
                            for t, s in zip(track, start, strict=True)])
        with torch.no_grad():
            expected = clean(full)
        for i in range(len(stems)):
            segment = np.flatnonzero((task.train.table.track == int(track[i]))
                                     & (task.train.table.start == int(start[i])))[0]
            for k in range(len(SOURCES)):
                if not batch["subset"][i, k]:
                    assert torch.equal(targets[i, k], torch.zeros(DIM))
                    seen["left out"] += 1
                elif not task.train.table.active[segment, k]:
                    assert torch.equal(targets[i, k], torch.zeros(DIM))
                    seen["silent"] += 1
                else:
                    torch.testing.assert_close(targets[i, k], expected[i, k], rtol=1e-4, atol=1e-5)
                    assert targets[i, k].abs().sum() > 0
                    seen["embedded"] += 1
    assert min(seen.values()) > 0, seen  # every case occurred in the batch

    model = task.build_model()
    batch = next(iter(task.train_loader(1)))
    losses = task.losses(model, batch)
    stems = batch["audio"].float() / 32768
    expected_loss = torch.nn.functional.mse_loss(model(stems.sum(1)).embedding,
                                                 task.targets(batch["clean"], batch["active"]))
    torch.testing.assert_close(losses["loss"], expected_loss)
    assert {f"mse_{name}" for name in SOURCES} <= set(losses)


def test_pretraining_refuses_a_clean_model_of_another_size(dump_dir, clean_exp, tmp_path):
    cfg = config(dump_dir, {"name": "direct_pretrain", "clean": str(clean_exp), "train_examples": 4,
                            "valid_examples": 2}, {**DIRECT_MODEL, "embedding_dim": DIM + 1})
    with pytest.raises(TaskConfigError, match="clean_all"):
        DirectPretrainTask(cfg, context(tmp_path))
    with pytest.raises(ConfigError, match="'task.valid_examplez'.*did you mean 'task.valid_examples'"):
        pretrain_task(dump_dir, clean_exp, tmp_path, valid_examplez=3)


class PerturbOtherBlocks(torch.nn.Module):
    """Runs Direct, then adds noise to every embedding block but the rows' targets (or to the targets)."""

    def __init__(self, direct: Direct, targets: torch.Tensor, where: str):
        super().__init__()
        self.module, self.targets, self.where = direct, targets, where

    def forward(self, mixture: torch.Tensor) -> DirectOutput:
        output = self.module(mixture)
        keep = self.module.conditioning.masks[self.targets.repeat_interleave(3)]
        noise = torch.randn_like(output.embedding) * (1 - keep if self.where == "others" else keep)
        return output._replace(embedding=output.embedding + 10 * noise)


def test_triplet_loss_looks_at_the_target_block_only(dump_dir, tmp_path):
    task = triplet_task(dump_dir, tmp_path)
    model = task.build_model().eval()
    batch = next(iter(task.train_loader(1)))
    stems, targets = batch["audio"].flatten(0, 1).float() / 32768, batch["target"].flatten()
    assert len(set(targets.tolist())) > 1
    with torch.no_grad():
        plain = direct_triplet_losses(model, stems, targets, margin=0.2)["triplet"]
        others = direct_triplet_losses(PerturbOtherBlocks(model, targets, "others"), stems, targets, 0.2)
        own = direct_triplet_losses(PerturbOtherBlocks(model, targets, "target"), stems, targets, 0.2)
    torch.testing.assert_close(others["triplet"], plain)
    assert not torch.isclose(own["triplet"], plain)


def test_direct_batches_hold_basic_and_additional_triplets_in_pairs(dump_dir, tmp_path):
    """Each item is a basic triplet and its additional one (same anchor, positive and negative swapped,
    another target), so a batch of B items trains on 2B triplets with every pair inside it."""
    task = triplet_task(dump_dir, tmp_path, batch_size=3)
    batch = next(iter(task.train_loader(1)))
    audio, targets = batch["audio"], batch["target"]
    assert audio.shape[:3] == (3, 2, 3) and targets.shape == (3, 2)
    for basic, additional, (b, c) in zip(audio[:, 0], audio[:, 1], targets.tolist(), strict=True):
        assert b != c
        assert torch.equal(additional[0], basic[0])
        assert torch.equal(additional[1], basic[2]) and torch.equal(additional[2], basic[1])
    assert len(task.train_set) == 8  # train_examples counts basic triplets: 16 triplets per epoch


def test_direct_reconst_learns_to_reconstruct_every_source(dump_dir, tmp_path):
    torch.manual_seed(0)
    task = triplet_task(dump_dir, tmp_path, RECONST_MODEL, reconstruction_weight=1.0,
                        reconstruction="all_sources")
    model = task.build_model().train()
    batch = next(iter(task.train_loader(1)))
    first = task.losses(model, batch)
    assert {f"l1_{name}" for name in SOURCES} <= set(first)
    torch.testing.assert_close(first["reconstruction"],
                               torch.stack([first[f"l1_{name}"] for name in SOURCES]).mean())
    torch.testing.assert_close(first["loss"], first["triplet"] + first["reconstruction"])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(8):
        optimizer.zero_grad()
        task.losses(model, batch)["loss"].backward()
        optimizer.step()
    last = task.losses(model, batch)
    for name in SOURCES:
        assert last[f"l1_{name}"] < first[f"l1_{name}"], name


def test_direct_reconst_trains_the_target_decoder_over_three_roles(dump_dir, tmp_path):
    """The authors' reconstruction loss: only each triplet's target decoder, L1 to the target's clean
    magnitude, each role's mean summed over anchor, positive and negative."""
    torch.manual_seed(0)
    task = triplet_task(dump_dir, tmp_path, RECONST_MODEL, reconstruction_weight=1.0)
    assert task.reconstruction == "target"
    model = task.build_model().eval()
    batch = next(iter(task.train_loader(1)))
    stems, targets = batch["audio"].flatten(0, 1).float() / 32768, batch["target"].flatten()
    with torch.no_grad():
        losses = task.losses(model, batch)
        full = model(stems.flatten(0, 1).sum(1))
        clean = model.target_magnitudes(stems.flatten(0, 1))
    roles = targets.repeat_interleave(3)
    rows = torch.arange(len(roles))
    error = (full.reconstructions[rows, roles] - clean[rows, roles]).abs().mean(dim=(-2, -1)).view(-1, 3)
    torch.testing.assert_close(losses["reconstruction"], error.mean(dim=0).sum())
    torch.testing.assert_close(losses["loss"], losses["triplet"] + losses["reconstruction"])
    with pytest.raises(ConfigError, match="task.reconstruction"):
        triplet_task(dump_dir, tmp_path, RECONST_MODEL, reconstruction_weight=1.0, reconstruction="some")


def test_reconstruction_weight_goes_with_direct_reconst(dump_dir, tmp_path):
    with pytest.raises(TaskConfigError, match="direct_reconst"):
        triplet_task(dump_dir, tmp_path, DIRECT_MODEL, reconstruction_weight=1.0)
    with pytest.raises(TaskConfigError, match="direct_reconst"):
        triplet_task(dump_dir, tmp_path, RECONST_MODEL, reconstruction_weight=0.0)


@pytest.mark.parametrize("fresh", [False, True])
def test_da_redraws_the_pseudo_musical_pieces_every_epoch(dump_dir, tmp_path, fresh):
    task = triplet_task(dump_dir, tmp_path, fresh_every_epoch=fresh)
    origins = [torch.cat([b["origin"] for b in task.train_loader(epoch)]) for epoch in (1, 2, 1)]
    assert torch.equal(origins[0], origins[2])  # an epoch's set depends on the epoch only
    assert torch.equal(origins[0], origins[1]) is not fresh


def test_direct_checkpoint_initialises_direct_reconst(dump_dir, clean_exp, tmp_path):
    pretrained = tmp_path / "pretrain"
    train(config(dump_dir, {"name": "direct_pretrain", "clean": str(clean_exp), "train_examples": 4,
                            "valid_examples": 2}, DIRECT_MODEL), pretrained)
    source = load_trained(pretrained, SOURCES).state_dict()
    model = triplet_task(dump_dir, tmp_path, RECONST_MODEL, init=str(pretrained),
                         reconstruction_weight=1.0).build_model()
    assert isinstance(model, DirectReconst)
    for key, value in model.state_dict().items():
        if not key.startswith("decoders."):
            assert torch.equal(value, source[key]), key
    wider = {**DIRECT_MODEL, "embedding_dim": DIM + 1, "unet": {"channels": [2, 4, 5 * (DIM + 1)]}}
    with pytest.raises(TaskConfigError, match="does not fit"):
        triplet_task(dump_dir, tmp_path, wider, init=str(pretrained)).build_model()


def mini(name: str) -> str:
    return str(CONF / "mini_slakh" / "conf" / f"{name}.yaml")


TINY = ["task.train_examples=4", "task.valid_examples=2", "task.batch_size=2", "task.valid_segment_seconds=3",
        "trainer.max_epochs=1", "trainer.device=cpu", "trainer.tensorboard=false",
        f"model.stft.sample_rate={SR}"]  # the fixture dump's rate; the mini recipe's is 22,050 Hz


def test_mini_configs_train_every_variant_end_to_end(dump_dir, tmp_path):
    """Stage 6 as the mini recipe runs it: its Clean (stage 4, every source) is the teacher of
    direct_pretrain → direct, direct_da, direct_reconst."""
    data = [f"task.train_dump={dump_dir}", f"task.valid_dump={dump_dir}"]
    exp = tmp_path / "exp"

    def run(name: str, *extra: str) -> Path:
        status = main(["train", "--config", mini(name), "--exp-dir", str(exp / name), *data, *TINY, *extra])
        assert status == 0, name
        assert (exp / name / "final.pt").is_file() and (exp / name / "done").is_file()
        return exp / name

    run("clean")
    run("direct_pretrain", f"task.clean={exp / 'clean'}")
    mixture = torch.randn(2, 3 * SR) * 0.1
    for name in ("direct", "direct_da", "direct_reconst"):
        model = load_trained(run(name, f"task.init={exp / 'direct_pretrain'}"), SOURCES).eval()
        with torch.no_grad():
            assert model.embed(mixture).shape == (2, len(SOURCES), model.embedding_dim)
    assert isinstance(model, DirectReconst)
    assert "l1_residuals=" in (exp / "direct_reconst" / "train.log").read_text()


@pytest.mark.parametrize("recipe, teacher", [("mini_slakh/conf", "clean"), ("slakh/conf/paper", "clean_all")])
def test_stage6_configs_name_known_tasks_keys_and_buildable_models(recipe, teacher):
    """Stage 6's configs build, and Direct's block is the teacher's (--direct-teacher) embedding size."""
    for name in (teacher, "direct_pretrain", "direct", "direct_da", "direct_reconst"):
        path = CONF / recipe / f"{name}.yaml"
        cfg = load_config(path, ["task.clean=exp/clean_all"] if name == "direct_pretrain" else [])
        task_factory(cfg["task"]["name"])
        model = build_model(cfg["model"], SOURCES)
        assert model.sources == SOURCES, path
        if name != teacher:
            assert model.embedding_dim == yaml.safe_load((CONF / recipe / f"{teacher}.yaml").read_text())[
                "model"]["embedding_dim"], f"{path}: Direct's block must match {teacher}'s embedding_dim"
    fixed, fresh = (yaml.safe_load((CONF / recipe / f"{n}.yaml").read_text())["task"]["fresh_every_epoch"]
                    for n in ("direct", "direct_da"))
    assert (fixed, fresh) == (False, True)



def test_a_dump_at_another_rate_than_the_models_features_is_refused(dump_dir, tmp_path):
    """A model whose STFT and mel are set for another sample rate would train on wrong features."""
    other_rate = {**DIRECT_MODEL, "stft": {**STFT, "sample_rate": 2 * SR}}
    with pytest.raises(TaskConfigError, match=rf"{dump_dir}.* {SR} Hz.*{2 * SR} Hz.*stft.sample_rate"):
        triplet_task(dump_dir, tmp_path, other_rate)


def test_pseudo_pretraining_mixtures_take_each_source_from_its_own_segment(dump_dir, clean_exp, tmp_path):
    """With mixtures: pseudo no source of a pre-training mixture tells of another's piece: each comes
    from its own random segment, and its target is Clean's embedding of that segment's stem."""
    task = pretrain_task(dump_dir, clean_exp, tmp_path, mixtures="pseudo", normalize_targets=False)
    clean = load_trained(clean_exp, SOURCES).eval()
    table, dump = task.train.table, task.train.dump
    batch = next(iter(task.train_loader(1)))
    mixed = 0
    for i in range(len(batch["audio"])):
        segments = batch["segments"][i].numpy()
        origin = batch["origin"][i].numpy()
        np.testing.assert_array_equal(origin[:, 0], table.track[segments])
        mixed += len(set(origin[:, 0].tolist())) > 1
        for k in range(len(SOURCES)):
            stems = dump.segment(int(origin[k, 0]), int(origin[k, 1]), table.length)
            with torch.no_grad():
                expected = clean(torch.from_numpy(stems.copy())[None])[0, k]
            torch.testing.assert_close(batch["clean"][i, k], expected, rtol=1e-4, atol=1e-5)
    assert mixed > 0
    with pytest.raises(ConfigError, match="task.mixtures"):
        pretrain_task(dump_dir, clean_exp, tmp_path, mixtures="mixed")


def test_paper_clean_and_cascade_batches_give_every_instrument_64_triplets_per_step(dump_dir, tmp_path):
    """The paper trains one run per instrument with 64 triplets of that instrument per step; the
    authors' config batches of 64 groups give every instrument exactly that."""
    from inmsrl.tasks.triplet import TripletTask

    for name in ("clean", "cascade"):
        cfg = resolve_config(yaml.safe_load((CONF / "slakh/conf/paper" / f"{name}.yaml").read_text()))
        cfg["task"].update(train_dump=str(dump_dir), valid_dump=str(dump_dir), segment_seconds=1,
                           valid_segment_seconds=1, train_examples=64, valid_examples=2, num_workers=0)
        cfg["model"]["stft"] = {"sample_rate": SR}
        task = TripletTask(cfg, context(tmp_path))
        batch = next(iter(task.train_loader(1)))
        instruments = batch["target"].flatten().tolist()
        assert {instruments.count(t) for t in set(instruments)} == {64}, name
        assert len(set(instruments)) == 4 and cfg["task"]["fresh_every_epoch"], name


def test_e2e_ft_separation_loss_sums_the_target_separators_l1_over_the_three_roles():
    """Authors' code: the auxiliary loss is the L1 of the triplet's instrument's separator, each role's
    mean over the batch, summed over anchor, positive and negative (separation_loss: mean divides by 3)."""
    from inmsrl.tasks.triplet import triplet_losses

    torch.manual_seed(0)
    model = build_model({"type": "cascade", "target_sources": ["drums", "bass"], "unet": {"channels": [2, 4]},
                         "mel_bands": 8, "embedding_dim": 3, "stft": STFT}, SOURCES).eval()
    stems = torch.randn(4, 3, len(SOURCES), SR) * 0.1
    rows = torch.tensor([0, 1, 1, 0])
    with torch.no_grad():
        losses = triplet_losses(model, stems, rows, 0.2, separation_weight=1.0, names=["drums", "bass"],
                                per_instrument=True)
        mean = triplet_losses(model, stems, rows, 0.2, separation_weight=1.0, separation_loss="mean",
                              per_instrument=True)
        full = model(stems.flatten(0, 1).sum(1))
    expected = 0.0
    for k in (0, 1):  # each instrument's mean over its triplets, per role, summed over roles and instruments
        items = torch.nonzero(rows == k).squeeze(1)
        for role in range(3):
            flat = items * 3 + role
            target = model.separator.magnitude(stems[items, role, k])
            expected += (full.separation.magnitudes[flat, k] - target).abs().mean(dim=(-2, -1)).mean()
    torch.testing.assert_close(losses["separation"], expected)
    torch.testing.assert_close(mean["separation"], expected / 3)
