"""Training configurations: every section checked against declared options, inheritance (``base:``),
``inmsrl train --print-config``, and the ``experiment:`` description a finished run keeps."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_trainer import write_config  # registers the tiny-regression task

from inmsrl.bin.main import main
from inmsrl.train.config import ConfigError, changed_keys, load_config, resolve_config
from inmsrl.train.description import read_description
from inmsrl.train.task import _REGISTRY, _import_task_package, declared_options
from inmsrl.train.trainer import train

CONF = Path(__file__).resolve().parents[1] / "egs" / "mini_slakh" / "conf"
# A recipe config of every built-in task, and the overrides its stage gives it.
RECIPE_CONFIGS = {
    "mss": ("mss.yaml", []),
    "triplet": ("cascade.yaml", []),
    "direct_pretrain": ("direct_pretrain.yaml", ["task.clean=exp/clean_all"]),
    "direct_triplet": ("direct.yaml", []),
    "paft": ("paft_cascade.yaml",
             ["task.init=exp/cascade", "task.abx_dir=dump/abx", "task.abx_dump=dump/test"]),
}


def recipe_config(tmp_path: Path, task: str, edit=None) -> Path:
    """A copy of the recipe's config of ``task`` in ``tmp_path``, changed by ``edit(raw)``."""
    name, _ = RECIPE_CONFIGS[task]
    raw = yaml.safe_load((CONF / name).read_text())
    if edit:
        edit(raw)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return path


def train_cli(capsys, path: Path, *args: str) -> tuple[int, str]:
    status = main(["train", "--config", str(path), "--exp-dir", str(path.parent / "exp"), *args])
    return status, capsys.readouterr().err


def test_every_built_in_task_declares_its_options():
    _import_task_package()
    builtin = [name for name, factory in _REGISTRY.items() if factory.__module__.startswith("inmsrl.tasks.")]
    assert sorted(builtin) == sorted(RECIPE_CONFIGS)
    for name in builtin:
        options, sections = declared_options(name)
        assert options and sections == ("model",), name


@pytest.mark.parametrize("task", sorted(RECIPE_CONFIGS))
def test_a_misspelt_task_key_stops_the_run_with_a_suggestion(tmp_path, capsys, task):
    path = recipe_config(tmp_path, task, lambda raw: raw["task"].update(batch_sise=8))
    status, err = train_cli(capsys, path, *RECIPE_CONFIGS[task][1])
    assert status == 2
    assert (f"{path}: unknown key 'task.batch_sise' of task '{task}' (did you mean 'task.batch_size'?)"
            in err), err
    assert not (tmp_path / "exp").exists(), "nothing may run"


def test_a_misspelt_top_level_section_stops_the_run(tmp_path, capsys):
    path = recipe_config(tmp_path, "mss", lambda raw: raw.update(traner=raw.pop("trainer")))
    status, err = train_cli(capsys, path)
    assert status == 2 and "unknown top-level key 'traner' (did you mean 'trainer'?)" in err


@pytest.mark.parametrize("key, value, message", [
    ("task.batch_size", -8, "'task.batch_size' must be an integer >= 1, not -8"),
    ("task.batch_size", 8.5, "'task.batch_size' must be an integer >= 1, not 8.5"),
    ("task.batch_size", "eight", "'task.batch_size' must be an integer >= 1, not 'eight'"),
    ("optim.lr", -1, "'optim.lr' must be a number > 0, not -1"),
    ("optim.lr", float("nan"), "'optim.lr' must be a number > 0, not nan"),
    ("task.train_examples", -16, "'task.train_examples' must be an integer >= 1, not -16"),
    ("task.triplets", "s5", "'task.triplets' must be one of s4, pseudo, not 's5'"),
    ("trainer.device", "gpu", "'trainer.device' must be one of auto, cuda, cpu, not 'gpu'"),
    ("task.fresh_every_epoch", "yes", "'task.fresh_every_epoch' must be true or false, not 'yes'"),
])
def test_a_bad_value_in_a_file_is_named_without_a_traceback(tmp_path, capsys, key, value, message):
    section, name = key.split(".")
    path = recipe_config(tmp_path, "triplet", lambda raw: raw.setdefault(section, {}).update({name: value}))
    status, err = train_cli(capsys, path)
    assert status == 2 and f"{path}: {message}" in err, err
    assert "Traceback" not in err


def test_a_bad_override_value_is_named_too(tmp_path, capsys):
    path = recipe_config(tmp_path, "mss")
    status, err = train_cli(capsys, path, "task.batch_size=-8")
    assert status == 2 and "override 'task.batch_size=-8': 'task.batch_size' must be an integer >= 1" in err


def test_options_not_given_take_their_defaults_and_can_be_overridden(tmp_path):
    path = recipe_config(tmp_path, "mss", lambda raw: raw["task"].pop("batch_size"))
    assert load_config(path)["task"]["batch_size"] == 64
    config = load_config(path, ["task.batch_size=8", "task.segment_seconds=2"])  # no '+' needed
    assert config["task"]["batch_size"] == 8 and config["task"]["segment_seconds"] == 2.0


def test_a_required_option_must_be_given(tmp_path):
    path = recipe_config(tmp_path, "mss", lambda raw: raw["task"].pop("train_examples"))
    with pytest.raises(ConfigError, match="'task.train_examples' is required for task 'mss'"):
        load_config(path)
    paft = recipe_config(tmp_path, "paft")
    with pytest.raises(ConfigError, match=r"'task.init' must be set to a string \(it is null\)"):
        load_config(paft)  # null in the file: the recipe's stage sets it
    assert load_config(paft, RECIPE_CONFIGS["paft"][1])["task"]["init"] == "exp/cascade"


def test_a_checkpoint_written_before_defaults_were_filled_in_still_matches(tmp_path):
    path = recipe_config(tmp_path, "mss")
    old = yaml.safe_load(path.read_text())  # as an older version saved it: only the keys of the file
    new = load_config(path)
    assert changed_keys(old, new) == {}
    assert changed_keys(old, load_config(path, ["task.batch_size=8"])) == {"task.batch_size": (16, 8)}


# -------------------------------------------------------------------------------------- inheritance
def test_a_config_inherits_its_base_chain_and_overrides_it(tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "root.yaml").write_text(yaml.safe_dump({
        "task": {"name": "mss", "train_dump": "d/train", "valid_dump": "d/valid", "train_examples": 8,
                 "valid_examples": 4},
        "model": {"type": "separator", "target_sources": ["drums"], "unet": {"channels": [2, 4]}},
        "optim": {"lr": 1e-3}, "trainer": {"max_epochs": 5}}))
    (tmp_path / "middle.yaml").write_text("base: shared/root.yaml\ntask: {batch_size: 4}\n"
                                          "model: {unet: {channels: [4, 8]}}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "leaf.yaml").write_text("base: ../middle.yaml\noptim: {lr: 5.0e-4}\n")
    config = load_config(tmp_path / "sub" / "leaf.yaml", ["trainer.patience=2"])
    assert config["task"]["batch_size"] == 4 and config["task"]["train_examples"] == 8
    assert config["model"] == {"type": "separator", "target_sources": ["drums"], "unet": {"channels": [4, 8]}}
    assert config["optim"]["lr"] == 5e-4 and config["trainer"]["max_epochs"] == 5
    assert config["trainer"]["patience"] == 2 and "base" not in config


def test_an_inheritance_cycle_is_an_error_naming_the_files(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\ntask: {name: mss}\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match=r"in a cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: base 'missing.yaml' does not exist"):
        load_config(tmp_path / "c.yaml")


def test_an_error_in_an_inherited_key_names_the_chain(tmp_path):
    path = recipe_config(tmp_path, "mss", lambda raw: raw["task"].update(batch_sise=8))
    (tmp_path / "child.yaml").write_text(f"base: {path.name}\n")
    with pytest.raises(ConfigError, match=r"child\.yaml \(inheriting .*mss\.yaml\): unknown key 'task"):
        load_config(tmp_path / "child.yaml")


def test_print_config_prints_the_merged_configuration_and_exits(tmp_path, capsys):
    path = recipe_config(tmp_path, "mss")
    (tmp_path / "child.yaml").write_text(f"base: {path.name}\noptim: {{lr: 0.02}}\n")
    child = tmp_path / "child.yaml"
    assert main(["train", "--config", str(child), "--print-config", "task.batch_size=4"]) == 0
    out = capsys.readouterr().out
    printed = yaml.safe_load(out)
    assert printed == load_config(child, ["task.batch_size=4"])
    assert printed["optim"]["lr"] == 0.02 and printed["task"]["batch_size"] == 4       # file, override
    assert printed["trainer"]["log_interval"] == 50  # a default
    assert printed["model"]["type"] == "separator"  # from the base
    assert "channels: [4, 8, 16, 32, 64, 128]" in out
    assert not (tmp_path / "exp").exists()


def test_print_config_shows_a_config_whose_stage_sets_required_keys(tmp_path, capsys):
    path = recipe_config(tmp_path, "paft")
    assert main(["train", "--config", str(path), "--print-config"]) == 0
    captured = capsys.readouterr()
    assert yaml.safe_load(captured.out)["task"]["init"] is None
    assert "note: not enough to train with" in captured.err and "'task.init' must be set" in captured.err


# ------------------------------------------------------------------------------------- description
EXPERIMENT = {"family": "regression", "label": "Tiny regression"}


def test_the_experiment_section_is_checked_and_completed():
    base = {"task": {"name": "tiny-regression"}}
    config = resolve_config({**base, "experiment": EXPERIMENT})
    assert config["experiment"] == {**EXPERIMENT, "base_model": None, "paft_data": None, "separates": False,
                                    "scored": True}
    with pytest.raises(ConfigError, match="'experiment.familly'.*did you mean 'experiment.family'"):
        resolve_config({**base, "experiment": {"familly": "x", "label": "X"}})
    with pytest.raises(ConfigError, match="'experiment.paft_data' must be one of pseudo, normal or null"):
        resolve_config({**base, "experiment": {**EXPERIMENT, "paft_data": "noisy"}})
    with pytest.raises(ConfigError, match="'experiment.label' is required"):
        resolve_config({**base, "experiment": {"family": "x"}})


def test_a_finished_run_takes_a_new_description_without_training_again(tmp_path):
    path = write_config(tmp_path / "tiny.yaml", trainer={"max_epochs": 1})
    exp = tmp_path / "exp"
    assert train(load_config(path), exp).status == "finished"  # trained before it described itself
    assert read_description(exp) is None
    final = (exp / "final.pt").stat().st_mtime_ns
    described = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({"experiment": {**EXPERIMENT, "paft_data": "normal"}, **described}))
    assert train(load_config(path), exp).status == "already_done"
    description = read_description(exp)
    assert (description.name, description.paft_data) == ("exp", "normal")
    assert description.run_label == "Tiny regression (seed 3)"
    assert (exp / "final.pt").stat().st_mtime_ns == final
    assert "resuming" not in (exp / "train.log").read_text()
