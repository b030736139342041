"""utils/parse_options.sh: the option rules every recipe script relies on."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

SCRIPT = """
stage=0
stop_stage=100
use_gpu=false
name="two words"
help_message="Usage: demo [options] <dir>"
. {utils}/parse_options.sh
printf '%s|' "$stage" "$stop_stage" "$use_gpu" "$name" "$#" "$@"
"""


def run_demo(repo_root: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    script = SCRIPT.format(utils=repo_root / "utils")
    return subprocess.run(["bash", "-c", script, "demo", *args], capture_output=True, text=True,
                          cwd=cwd)


def values(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0, result.stderr
    return result.stdout.split("|")[:-1]


def test_dash_and_underscore_spellings_set_the_same_variable(repo_root):
    assert values(run_demo(repo_root, "--stop-stage", "3"))[1] == "3"
    assert values(run_demo(repo_root, "--stop_stage", "4"))[1] == "4"
    assert values(run_demo(repo_root, "--stop-stage=5"))[1] == "5"


def test_values_with_spaces_and_positional_arguments_survive(repo_root):
    out = values(run_demo(repo_root, "--name", "a b  c", "--stage", "2", "data/x", "exp y"))
    assert out[:5] == ["2", "100", "false", "a b  c", "2"]
    assert out[5:] == ["data/x", "exp y"]


def test_double_dash_ends_the_options(repo_root):
    out = values(run_demo(repo_root, "--stage", "1", "--", "--not-an-option"))
    assert out[0] == "1" and out[5:] == ["--not-an-option"]


def test_boolean_takes_only_true_or_false(repo_root):
    assert values(run_demo(repo_root, "--use-gpu", "true"))[2] == "true"
    bad = run_demo(repo_root, "--use-gpu", "yes")
    assert bad.returncode == 1
    assert "--use-gpu" in bad.stderr and "true or false" in bad.stderr


def test_unknown_option_is_an_error_naming_it(repo_root):
    bad = run_demo(repo_root, "--stgae", "3")
    assert bad.returncode == 1
    assert "unknown option --stgae" in bad.stderr


def test_missing_value_is_an_error(repo_root):
    bad = run_demo(repo_root, "--stage")
    assert bad.returncode == 1 and "--stage needs a value" in bad.stderr


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_the_help_message_and_succeeds(repo_root, flag):
    result = run_demo(repo_root, flag)
    assert result.returncode == 0
    assert result.stdout.strip() == "Usage: demo [options] <dir>"


def test_config_file_sets_defaults_and_later_options_win(repo_root, tmp_path):
    conf = tmp_path / "opts.conf"
    conf.write_text("stage=7\nstop_stage=8\n")
    out = values(run_demo(repo_root, "--config", str(conf), "--stop-stage", "9"))
    assert out[:2] == ["7", "9"]
    missing = run_demo(repo_root, "--config", str(tmp_path / "nope.conf"))
    assert missing.returncode == 1 and "nope.conf" in missing.stderr
