"""The ``inmsrl`` console script: version, help, and the environment report."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

from inmsrl import __version__
from inmsrl.bin.main import SUBCOMMANDS


def inmsrl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inmsrl.bin.main", *args], capture_output=True,
                          text=True, timeout=120)


def test_version_and_help():
    assert inmsrl("--version").stdout.strip() == f"inmsrl {__version__}"
    help_text = inmsrl("--help").stdout
    for name in SUBCOMMANDS:
        assert name in help_text


def test_no_command_prints_help_and_fails():
    result = inmsrl()
    assert result.returncode == 2 and "usage: inmsrl" in result.stdout


def test_every_subcommand_has_a_description_and_a_run_function():
    for name, (module_name, _) in SUBCOMMANDS.items():
        module = importlib.import_module(f"inmsrl.bin.{module_name}")
        assert callable(module.run) and callable(module.add_arguments), name
        assert (module.__doc__ or "").strip(), f"inmsrl {name} has no description"


def test_info_reports_versions_and_devices_as_json():
    result = inmsrl("info", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["inmsrl"] == __version__
    assert info["packages"]["torch"] != "missing"
    assert info["devices"][-1].startswith("cpu")


def test_git_revision_is_dirty_for_code_but_not_for_a_recipes_regenerated_results(tmp_path):
    import subprocess

    from inmsrl.environment import git_revision

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
                       check=True, capture_output=True)

    (tmp_path / "egs" / "mini").mkdir(parents=True)
    (tmp_path / "pkg.py").write_text("x = 1\n")
    (tmp_path / "egs" / "mini" / "RESULTS.md").write_text("old\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "init")
    clean = git_revision(tmp_path)
    assert clean and not clean.endswith("+dirty") and clean != "unknown"
    (tmp_path / "egs" / "mini" / "RESULTS.md").write_text("new\n")
    assert git_revision(tmp_path) == clean
    (tmp_path / "pkg.py").write_text("x = 2\n")
    assert git_revision(tmp_path) == clean + "+dirty"
