"""The recipe machinery: egs/TEMPLATE's stage script, its recipes' run.sh, db.sh, cmd.sh and setup.sh."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def with_inmsrl_on_path() -> str:
    """PATH with the directory of this interpreter's ``inmsrl`` first: a copied repository has no
    tools/venv, and CI runs the tests without activating one."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])


def run_recipe(recipe: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["./run.sh", *args], cwd=recipe, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


@pytest.fixture()
def mini(repo_root) -> Path:
    return repo_root / "egs" / "mini_slakh"


def test_help_lists_every_stage_and_succeeds(mini):
    result = run_recipe(mini, "--help")
    assert result.returncode == 0, result.stderr
    for number, name in enumerate(["corpus", "data prep", "dump", "MSS", "triplet", "E2E-FT", "Direct",
                                   "PAFT", "scoring"]):
        assert f"  {number}  {name}" in result.stdout
    assert "--stop-stage" in result.stdout


def test_unknown_option_fails_naming_it(mini, tmp_path):
    result = run_recipe(mini, "--exp-dir", str(tmp_path / "exp"), "--stop-stgae", "3")
    assert result.returncode == 1
    assert "unknown option --stop-stgae" in result.stderr
    assert not (tmp_path / "exp").exists(), "nothing may run after a bad option"


def test_positional_argument_is_rejected(mini):
    result = run_recipe(mini, "--stage", "2", "stray")
    assert result.returncode == 1 and "unexpected argument(s): stray" in result.stderr


def stage_zero(mini: Path, tmp_path: Path, *extra: str) -> tuple[list[str], subprocess.CompletedProcess]:
    """Runs stage 0 of the mini recipe on a tiny corpus under ``tmp_path``."""
    args = ["--stage", "0", "--stop_stage", "0", "--exp-dir", str(tmp_path / "exp dir"),
            "--corpus-opts", "--num-tracks 3 --duration 2", *extra]
    return args, run_recipe(mini, *args, env={"MINI_SLAKH": str(tmp_path / "corpus")})


def test_stage_zero_alone_generates_the_corpus_with_timestamped_stage_logs(mini, tmp_path):
    _, result = stage_zero(mini, tmp_path)
    assert result.returncode == 0, result.stderr
    stage_lines = [line for line in result.stdout.splitlines() if " Stage " in line]
    assert [line.split(" Stage ")[1].split(":")[0] for line in stage_lines] == ["0", "0"]
    assert all(line[:4].isdigit() and line[10] == "T" for line in stage_lines), stage_lines
    assert "done in" in stage_lines[-1]
    assert len(list((tmp_path / "corpus").glob("*/Track*/metadata.yaml"))) == 3
    assert "Stage 1" not in result.stdout


def test_command_line_is_saved_for_rerunning(mini, tmp_path):
    _, first = stage_zero(mini, tmp_path)
    assert first.returncode == 0, first.stderr
    history = (tmp_path / "exp dir" / "command_history.sh").read_text().splitlines()
    command = history[-1]
    assert command.startswith(f"cd {mini} && ./inmsrl.sh ")
    # Re-running the saved line repeats the same stages with the same options (the corpus is kept).
    rerun = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=300,
                           env={**os.environ, "MINI_SLAKH": str(tmp_path / "corpus")})
    assert rerun.returncode == 0, rerun.stderr
    assert "Stage 0" in rerun.stdout and "Stage 1" not in rerun.stdout
    assert (tmp_path / "exp dir" / "command_history.sh").read_text().splitlines()[-1] == command


def test_unset_corpus_path_fails_with_a_message_naming_it(repo_root, tmp_path):
    env = {"SLAKH": ""}
    result = run_recipe(repo_root / "egs" / "slakh", "--stage", "0", "--stop-stage", "0",
                        "--exp-dir", str(tmp_path / "exp"), env=env)
    assert result.returncode != 0
    assert "SLAKH is not set" in result.stderr and "db.sh" in result.stderr


def test_missing_corpus_folder_is_reported(repo_root, tmp_path):
    env = {"SLAKH": str(tmp_path / "nowhere")}
    result = run_recipe(repo_root / "egs" / "slakh", "--stage", "0", "--stop-stage", "0",
                        "--exp-dir", str(tmp_path / "exp"), env=env)
    assert result.returncode != 0 and "nowhere does not exist" in result.stderr


def test_unknown_job_backend_is_an_error(mini, tmp_path):
    result = run_recipe(mini, "--stage", "0", "--stop-stage", "0", "--exp-dir", str(tmp_path / "e"),
                        env={"cmd_backend": "pbs"})
    assert result.returncode != 0 and "unknown cmd_backend 'pbs'" in result.stderr


@pytest.mark.parametrize("backend, wrapper", [("local", "run.pl"), ("sge", "queue.pl"),
                                               ("slurm", "slurm.pl")])
def test_cmd_sh_picks_the_wrapper_of_the_backend(mini, backend, wrapper):
    result = subprocess.run(["bash", "-c", ". ./cmd.sh && echo \"$train_cmd|$cuda_cmd\""], cwd=mini,
                            capture_output=True, text=True, env={**os.environ, "cmd_backend": backend})
    train_cmd, cuda_cmd = result.stdout.strip().split("|")
    assert train_cmd.split()[0] == cuda_cmd.split()[0] == wrapper
    if backend != "local":
        assert "--gpu 1" in cuda_cmd


def test_setup_sh_creates_a_working_recipe(repo_root, tmp_path):
    # A copy of the parts setup.sh works with, so the test never writes into the checkout. Without
    # tools/venv in the copy, path.sh falls back to the inmsrl found on PATH.
    root = tmp_path / "repo"
    shutil.copytree(repo_root / "egs" / "TEMPLATE", root / "egs" / "TEMPLATE", symlinks=True)
    shutil.copytree(repo_root / "utils", root / "utils", symlinks=True)
    setup = root / "egs" / "TEMPLATE" / "setup.sh"
    made = subprocess.run([str(setup), "egs/mydata"], cwd=root, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    recipe = root / "egs" / "mydata"
    assert os.readlink(recipe / "inmsrl.sh") == "../TEMPLATE/inmsrl.sh"
    assert (recipe / "utils" / "parse_options.sh").exists()
    for name in ("path.sh", "cmd.sh", "db.sh", "conf/slurm.conf", "local/data.sh", "run.sh"):
        assert (recipe / name).is_file(), name
    venv_bin = str(repo_root / "tools" / "venv" / "bin")
    result = subprocess.run(["./run.sh", "--stage", "0", "--stop-stage", "0"], cwd=recipe,
                            capture_output=True, text=True,
                            env={**os.environ, "PATH": venv_bin + os.pathsep + os.environ["PATH"]})
    # The new recipe runs the shared stages; its template local/corpus.sh asks to be written.
    assert result.returncode == 1
    assert "Stage 0: corpus" in result.stdout and "local/corpus.sh: not written yet" in result.stderr
    again = subprocess.run([str(setup), "egs/mydata"], cwd=root, capture_output=True, text=True)
    assert again.returncode == 1 and "already exists" in again.stderr
    nested = subprocess.run([str(setup), "egs/a/b"], cwd=root, capture_output=True, text=True)
    assert nested.returncode == 1 and "next to TEMPLATE" in nested.stderr


@pytest.mark.parametrize("args, message", [
    (["--stage", "abc"], "--stage must be an integer from 0 to 9, not 'abc'"),
    (["--stage", "10"], "--stage must be an integer from 0 to 9, not '10'"),
    (["--stop-stage", "-1"], "--stop-stage must be an integer from 0 to 9, not '-1'"),
    (["--stage", "5", "--stop-stage", "3"], "--stage 5 comes after --stop-stage 3"),
    (["--nj", "0"], "--nj must be an integer from 1, not '0'"),
    (["--seed", "x1"], "--seed must be an integer from 0, not 'x1'"),
])
def test_bad_stage_numbers_are_errors_before_anything_runs(mini, tmp_path, args, message):
    # Every output under tmp_path, in case a stage ran after all.
    result = run_recipe(mini, "--exp-dir", str(tmp_path / "exp"), "--data-dir", str(tmp_path / "data"),
                        "--dump-dir", str(tmp_path / "dump"), *args,
                        env={"MINI_SLAKH": str(tmp_path / "corpus")})
    assert result.returncode == 1
    assert message in result.stderr
    assert "integer expression expected" not in result.stderr
    assert not (tmp_path / "exp").exists(), "nothing may run after a bad option"


CORPUS_SH = """#!/usr/bin/env bash
# A tiny synthetic corpus with no ABX data.
set -euo pipefail
inmsrl synth --out corpus --num-tracks 16 --duration 7 --seed 0 --splits 0.25,0.25,0.5 --jobs 2
"""
DATA_SH = """#!/usr/bin/env bash
set -euo pipefail
data_dir=data
. utils/parse_options.sh
inmsrl prepare-slakh --corpus corpus --layout redux --split redux --out "${data_dir}" --audio-out submixes
"""
UNET = "unet: {channels: [2, 4, 4, 8, 8, 8]}"
TINY_MODELS = {"mss": f"{{{UNET}}}", "cascade": f"{{{UNET}, mel_bands: 32}}",
               "cascade_ft": f"{{{UNET}, mel_bands: 32}}",
               "clean": f"{{{UNET}, mel_bands: 32, embedding_dim: 2}}",
               "direct_pretrain": "{unet: {channels: [2, 4, 4, 8, 8, 10]}, embedding_dim: 2}",
               "direct": "{unet: {channels: [2, 4, 4, 8, 8, 10]}, embedding_dim: 2}"}
TINY_TRAINING = ("task.train_examples=4 task.valid_examples=2 task.batch_size=2 task.valid_segment_seconds=3 "
                 "trainer.max_epochs=1 trainer.patience=1")


@pytest.mark.timeout(1200)
def test_a_new_recipe_without_abx_data_runs_every_stage_and_names_the_skipped(repo_root, tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(repo_root / "egs" / "TEMPLATE", root / "egs" / "TEMPLATE", symlinks=True)
    shutil.copytree(repo_root / "utils", root / "utils", symlinks=True)
    made = subprocess.run([str(root / "egs" / "TEMPLATE" / "setup.sh"), "egs/noabx"], cwd=root,
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    recipe = root / "egs" / "noabx"
    (recipe / "local" / "corpus.sh").write_text(CORPUS_SH)
    (recipe / "local" / "data.sh").write_text(DATA_SH)
    # The mini recipe's configs, shrunk by configs that inherit them (base:).
    shutil.copytree(repo_root / "egs" / "mini_slakh" / "conf", recipe / "conf" / "mini")
    for name, model in TINY_MODELS.items():
        (recipe / "conf" / f"{name}.yaml").write_text(f"base: mini/{name}.yaml\nmodel: {model}\n")
    result = subprocess.run(
        ["./run.sh", "--paft-models", "", "--triplet-models", "cascade", "--direct-models", "direct",
         "--direct-teacher", "clean", "--sample-rate", "22050",  # the mini configs' rate
         "--nj", "1", "--segment-seconds", "3",
         "--train-opts", TINY_TRAINING, "--score-opts", "--segment-seconds 3 --pseudo-targets 2 "
         "--pseudo-others 2 --vis-pieces 3 --vis-segments 2 --vis-per-pair 2"],
        cwd=recipe, capture_output=True, text=True, timeout=1180,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PATH": with_inmsrl_on_path()})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    log = result.stdout
    assert "no local/abx.sh: this corpus has no ABX set" in log
    assert "Stage 7: PAFT skipped: --paft-models is empty" in log
    assert "no ABX set (dump/abx): perceptual agreement (Tables 1 and 5) skipped" in log
    assert "Stages run: 0 1 2 3 4 5 6 8 9." in log
    assert "Stages skipped: 7 (--paft-models is empty)." in log
    results = (recipe / "RESULTS.md").read_text()
    assert "Table 2: MES-Normal" in results and "| Cascade-FT |" in results and "| Direct |" in results
    assert "Table 5" not in results
    # With the default PAFT models, stage 7 says why it has nothing to learn from.
    paft = subprocess.run(["./run.sh", "--stage", "7", "--stop-stage", "7"], cwd=recipe, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PATH": with_inmsrl_on_path()})
    assert paft.returncode == 0, paft.stderr
    assert "Stage 7: PAFT skipped: this corpus has no ABX set (no local/abx.sh)" in paft.stdout
