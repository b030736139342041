"""A micro run of the mini recipe, stages 0-5, on a tiny corpus with tiny models.

It drives the recipe as a user does (``./run.sh`` with options, outputs redirected into a temporary
folder), checks that every stage leaves what the next one needs, that the separation losses went down,
and that a training killed in stage 4 resumes from its checkpoint instead of restarting.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import soundfile as sf

# Tiny everything: 16 tracks of 12 s; every training 2-3 epochs of a handful of examples.
TRAIN_OPTS = ("task.train_examples=8 task.valid_examples=4 task.batch_size=4 task.valid_segment_seconds=3 "
              "trainer.max_epochs=3 trainer.patience=3")


def recipe_args(work: Path, *extra: str) -> list[str]:
    return ["--data-dir", str(work / "data"), "--dump-dir", str(work / "dump"),
            "--exp-dir", str(work / "exp"),
            "--corpus-opts", "--num-tracks 16 --duration 12 --eval-duration 12 --splits 0.4,0.35,0.25",
            "--abx-opts", "--triplets 8", "--train-opts", TRAIN_OPTS, *extra]


def run_recipe(recipe: Path, work: Path, *extra: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "MINI_SLAKH": str(work / "corpus")}
    return subprocess.run(["./run.sh", *recipe_args(work, *extra)], cwd=recipe, capture_output=True,
                          text=True, env=env, timeout=timeout)


def epoch_losses(log: Path) -> list[float]:
    return [float(m) for m in re.findall(r"epoch \d+/\d+ \| train loss=([0-9.eE+-]+)", log.read_text())]


@pytest.mark.timeout(1200)
def test_mini_recipe_stages_0_to_5_with_resume(repo_root, tmp_path):
    recipe = repo_root / "egs" / "mini_slakh"
    work = tmp_path / "work"
    first = run_recipe(recipe, work, "--stop-stage", "3")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    for dset in ("train", "validation", "test"):
        assert (work / "data" / dset / "sources").read_text().split() == [
            "drums", "bass", "piano", "guitar", "residuals"]
        assert (work / "dump" / dset / "dump.yaml").is_file()
        assert (work / "dump" / dset / "segments_3s.npz").is_file()
    assert (work / "dump" / "abx" / "inst_sim_abx_answers.csv").is_file()
    assert list((work / "submixes").glob("train/*/drums.flac")), "submixes go beside the data dir"
    for source in ("drums", "bass", "piano", "guitar"):
        exp = work / "exp" / "mss" / source
        assert (exp / "final.pt").is_file() and (exp / "done").is_file()
        losses = epoch_losses(exp / "train.log")
        assert len(losses) == 3 and min(losses[1:]) < losses[0], f"{source}: {losses}"

    # Stage 4, killed once the Clean extractors have written a checkpoint, then re-run: it resumes.
    env = {**os.environ, "MINI_SLAKH": str(work / "corpus")}
    killed = subprocess.Popen(["./run.sh", *recipe_args(work, "--stage", "4", "--stop-stage", "4")],
                              cwd=recipe, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    last = work / "exp" / "clean" / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 600
    while not last.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert last.exists(), "stage 4 wrote no checkpoint"
    # As a crashed machine would: every process of the run, the tasks that run.pl put in process groups
    # of their own too (they would otherwise live on, still holding their experiments' locks).
    subprocess.run(["pkill", "-KILL", "-s", str(killed.pid)], check=False)
    killed.wait()
    assert not (work / "exp" / "clean" / "done").exists()

    second = run_recipe(recipe, work, "--stage", "4", "--stop-stage", "5")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    clean_log = (work / "exp" / "clean" / "train.log").read_text()
    assert re.search(r"resuming from epoch [1-9]", clean_log), clean_log[-2000:]
    assert clean_log.count("training triplet in") == 1, "the killed training was restarted, not resumed"
    for name in ("clean", "cascade", "cascade_ft"):
        exp = work / "exp" / name
        assert (exp / "done").is_file() and (exp / "final.pt").is_file(), name
        assert all(loss == loss for loss in epoch_losses(exp / "train.log")), f"{name}: NaN loss"
    assert "separation=" in (work / "exp" / "cascade_ft" / "train.log").read_text()

    # A finished recipe re-run does no training again.
    third = run_recipe(recipe, work, "--stage", "3", "--stop-stage", "5")
    assert third.returncode == 0, third.stderr[-3000:]
    assert third.stdout.count("is already done") >= 3, third.stdout[-3000:]

    # A stem rewritten after stage 2: re-running stages 1-2 remakes its submix and dumps its set again.
    stem = sorted((work / "corpus" / "train").glob("Track*/stems/S*.flac"))[0]
    audio, rate = sf.read(stem)
    sf.write(stem, audio * 0.5, rate)
    fourth = run_recipe(recipe, work, "--stage", "1", "--stop-stage", "2")
    assert fourth.returncode == 0, fourth.stdout[-3000:] + fourth.stderr[-3000:]
    assert f"{work / 'dump' / 'train'}: the audio of {work / 'data' / 'train'} changed since it was " \
           "dumped" in fourth.stdout, fourth.stdout[-3000:]
    assert fourth.stdout.count("dumping again") == 1, "only the set whose audio changed is dumped again"
