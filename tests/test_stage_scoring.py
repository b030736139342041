"""Stage 8 scores what the recipe trained, found by what each experiment's config says it is.

``inmsrl experiments`` lists a recipe's finished experiments from their ``experiment:`` sections, and
the Slakh recipe's stage 8 runs on fixture experiments (tiny untrained models of a tiny dump): it scores
``cascade_wo_pseudo`` (with its SDR, since it separates) and an experiment of a family no code knows,
and leaves out what its config says is not scored.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from test_eval_cli import make_data_dir, save_experiment
from test_recipe_template import with_inmsrl_on_path

from inmsrl.bin.main import main
from inmsrl.data.dump import dump_data_dir

REPO = Path(__file__).resolve().parents[1]


def describe(exp: Path, **section) -> None:
    """Give a fixture experiment the ``experiment:`` section ``section``."""
    config = yaml.safe_load((exp / "config.yaml").read_text())
    (exp / "config.yaml").write_text(yaml.safe_dump({**config, "experiment": section}))


def recipe_section(recipe_config: str) -> dict:
    """The ``experiment:`` section of one of the recipes' configs."""
    return yaml.safe_load((REPO / "egs" / recipe_config).read_text())["experiment"]


def test_experiments_lists_the_finished_described_and_scored_ones(tmp_path, capsys):
    exp = tmp_path / "exp"
    save_experiment(exp / "cascade_ft", "cascade")
    describe(exp / "cascade_ft", **recipe_section("mini_slakh/conf/cascade_ft.yaml"))
    save_experiment(exp / "paft_cascade_2", "cascade")
    describe(exp / "paft_cascade_2", **recipe_section("mini_slakh/conf/paft_cascade.yaml"))
    save_experiment(exp / "clean_all", "clean")
    describe(exp / "clean_all", **recipe_section("slakh/conf/paper/clean_all.yaml"))
    save_experiment(exp / "running", "clean")
    (exp / "running" / "done").unlink()
    save_experiment(exp / "old", "clean")
    (exp / "old" / "config.yaml").write_text("seed: 0\n")  # trained before configs described themselves
    assert main(["experiments", "--exp-dir", str(exp)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["# name\tpaft_data\tseparates\tfamily\tlabel",
                                         "cascade_ft\t-\ttrue\tcascade\tCascade-FT",
                                         "paft_cascade_2\tpseudo\ttrue\tcascade\tCascade w/ PAFT"]
    assert f"{exp}/old is finished but its config.yaml has no experiment: section" in captured.err
    chosen = ["--models", "clean_all", "running", "old", "nope"]
    assert main(["experiments", "--exp-dir", str(exp), *chosen]) == 1
    err = capsys.readouterr().err
    for reason in ("running: not finished", "old: its config.yaml has no experiment: section",
                   "nope: no such experiment"):
        assert reason in err


@pytest.mark.timeout(600)
def test_slakh_stage8_scores_cascade_wo_pseudo_and_a_new_family(tmp_path):
    # A copy of what the recipe needs, so that RESULTS.md is written there, not into the checkout.
    root = tmp_path / "repo"
    for part in ("egs/TEMPLATE", "egs/slakh", "utils"):
        shutil.copytree(REPO / part, root / part, symlinks=True)
    work = tmp_path / "work"
    make_data_dir(work / "data" / "test")
    dump_data_dir(work / "data" / "test", work / "dump" / "test")
    exp = work / "exp"
    save_experiment(exp / "clean", "clean")
    describe(exp / "clean", **recipe_section("slakh/conf/paper/clean.yaml"))
    save_experiment(exp / "cascade_wo_pseudo", "cascade")
    describe(exp / "cascade_wo_pseudo", **recipe_section("slakh/conf/paper/cascade_wo_pseudo.yaml"))
    save_experiment(exp / "hybrid", "clean")
    describe(exp / "hybrid", family="hybrid", label="Hybrid (a new family)")
    save_experiment(exp / "direct_pretrain", "clean")
    describe(exp / "direct_pretrain", **recipe_section("slakh/conf/paper/direct_pretrain.yaml"))

    score_opts = ("--segment-seconds 2 --pseudo-targets 2 --pseudo-others 2 --vis-pieces 3 --vis-segments 2 "
                  "--vis-per-pair 2 --device cpu")
    result = subprocess.run(
        ["./run.sh", "--stage", "8", "--stop-stage", "8", "--nj", "1", "--exp-dir", str(exp),
         "--data-dir", str(work / "data"), "--dump-dir", str(work / "dump"), "--target-sources", "drums bass",
         "--score-opts", score_opts],
        cwd=root / "egs" / "slakh", capture_output=True, text=True, timeout=560,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PATH": with_inmsrl_on_path()})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "no ABX set" in result.stdout and "perceptual agreement (Tables 1 and 5) skipped" in result.stdout
    assert "scoring cascade_wo_pseudo: Cascade w/o pseudo-musical pieces (family cascade)" in result.stdout
    scores = json.loads((exp / "scores" / "scores.json").read_text())
    assert set(scores["models"]) == {"clean", "cascade_wo_pseudo", "hybrid", "mfcc_clean"}
    assert scores["models"]["hybrid"]["family"] == "hybrid"
    assert set(scores["sdr"]) == {"mixture", "cascade_wo_pseudo"}  # the one model that separates
    text = (root / "egs" / "slakh" / "RESULTS.md").read_text()
    table2 = text.split("### Table 2")[1].split("###")[0]
    rows = [line.split("|")[1].strip() for line in table2.splitlines() if line.startswith("| ")][1:]
    assert rows == ["Clean", "Cascade w/o pseudo-musical pieces", "Hybrid (a new family)",
                    "MFCC statistics, clean stems", "chance (a random model)", "perfect separation"]
    assert "| Cascade w/o pseudo-musical pieces |" in text.split("### Table 4")[1]


@pytest.mark.parametrize("conf", sorted({p.parent for p in (REPO / "egs").glob("*/conf/**/*.yaml")}))
def test_every_recipe_config_describes_its_experiment_consistently(conf):
    from inmsrl.train.config import load_config

    for path in sorted(conf.glob("*.yaml")):
        config = load_config(path, partial=True)
        described = config.get("experiment")
        assert described, f"{path}: no experiment: section"
        if config["task"]["name"] == "paft":
            assert described["paft_data"] == config["task"]["pieces"], path
        else:
            assert described["paft_data"] is None, path
        if described["base_model"]:
            assert (conf / f"{described['base_model']}.yaml").is_file(), f"{path}: base_model has no config"
        separates = config["model"]["type"] in ("separator", "cascade", "direct_reconst")
        assert described["separates"] == separates, path
