"""The recipe machinery: egs/TEMPLATE's stage script, its recipes' run.sh, db.sh, cmd.sh and setup.sh."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


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
    (["--stage", "abc"], "--stage must be an integer from 0 to 8, not 'abc'"),
    (["--stage", "9"], "--stage must be an integer from 0 to 8, not '9'"),
    (["--stop-stage", "-1"], "--stop-stage must be an integer from 0 to 8, not '-1'"),
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
