"""The generic trainer: configs and overrides, early stopping, atomic checkpoints, exact resume after a
kill, NaN handling, DDP over gloo, TensorBoard and the done marker — all on a tiny regression task."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from inmsrl.bin.main import main as inmsrl_main
from inmsrl.train import checkpoint as checkpoint_module
from inmsrl.train.checkpoint import CheckpointError, atomic_save, load_checkpoint
from inmsrl.train.config import ConfigError, apply_overrides, load_config
from inmsrl.train.experiment import ExperimentDir, exclusive_run
from inmsrl.train.task import RunContext, Task, register_task, sharded_loader
from inmsrl.train.trainer import NonFiniteLossError, train

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


class TinyRegression(Task):
    """y = x·w + noise with a dropout + linear model; training also draws from the python, numpy and
    torch generators (input jitter, dropout), so an inexact resume shows in the weights."""

    def __init__(self, config: dict, context: RunContext):
        self.opts, self.context = config["task"], context
        generator = torch.Generator().manual_seed(1234)
        weights = torch.randn(8, 1, generator=generator)
        inputs = torch.randn(self.opts["train_size"] + 64, 8, generator=generator)
        targets = inputs @ weights + 0.05 * torch.randn(len(inputs), 1, generator=generator)
        size = self.opts["train_size"]
        self.train_set = TensorDataset(inputs[:size], targets[:size])
        self.valid_set = TensorDataset(inputs[size:], targets[size:])
        self.epoch = self.step = 0

    def build_model(self) -> nn.Module:
        return nn.Sequential(nn.Dropout(self.opts["dropout"]), nn.Linear(8, 1))

    def train_loader(self, epoch: int):
        return sharded_loader(self.train_set, batch_size=self.opts["batch_size"], context=self.context,
                              epoch=epoch, shuffle=True)

    def valid_loader(self):
        return sharded_loader(self.valid_set, batch_size=32, context=self.context)

    def on_epoch_start(self, model: nn.Module, epoch: int) -> None:
        self.epoch, self.step = epoch, 0

    def losses(self, model: nn.Module, batch) -> dict[str, torch.Tensor]:
        inputs, targets = batch
        if model.training:
            self.step += 1
            time.sleep(self.opts["sleep_per_step"])
            jitter = self.opts["jitter"] * (1.0 + random.random())
            inputs = inputs + jitter * torch.from_numpy(np.random.randn(*inputs.shape).astype(np.float32))
        predictions = model(inputs)
        loss = F.mse_loss(predictions, targets)
        if model.training and [self.epoch, self.step] == self.opts["nan_at"]:
            loss = loss * float("nan")
        if not model.training and self.opts["scripted_valid"]:
            loss = torch.tensor(float(self.opts["scripted_valid"][self.epoch - 1]))
        return {"loss": loss, "mae": (predictions - targets).abs().mean()}

    def on_train_end(self, model: nn.Module) -> None:
        if self.opts["save_rank_weights"]:
            torch.save(model.state_dict(), self.context.exp_dir / f"rank{self.context.rank}.pt")


register_task("tiny-regression", TinyRegression)

TINY = {
    "seed": 3,
    "task": {"name": "tiny-regression", "train_size": 128, "batch_size": 32, "dropout": 0.2,
             "jitter": 0.01, "sleep_per_step": 0.0, "nan_at": None, "scripted_valid": None,
             "save_rank_weights": False},
    "optim": {"lr": 0.05},
    "trainer": {"max_epochs": 4, "patience": 100, "progress_bar": False, "tensorboard": False},
}


def write_config(path: Path, **sections) -> Path:
    config = {key: dict(value) if isinstance(value, dict) else value for key, value in TINY.items()}
    for section, values in sections.items():
        config[section] = {**config[section], **values}
    path.write_text(yaml.safe_dump(config))
    return path


def tiny_config(tmp_path: Path, *overrides: str, **sections) -> dict:
    path = write_config(tmp_path / "tiny.yaml", **sections)
    return apply_overrides(load_config(path), overrides, source=str(path))


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def assert_same_state(left: dict, right: dict) -> None:
    assert left.keys() == right.keys()
    for key in left:
        assert torch.equal(left[key], right[key]), key


def scalar_steps(log_dir: Path, tag: str) -> list[int]:
    """The steps of every ``tag`` scalar TensorBoard shows for ``log_dir`` (purged events excluded)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return [event.step for event in events.Scalars(tag)]


# ------------------------------------------------------------------------------------------ configs
def test_overrides_are_typed_by_the_value_they_replace(tmp_path):
    config = tiny_config(tmp_path, "optim.lr=1e-4", "trainer.max_epochs=3", "trainer.cudnn_benchmark=false",
                         "task.scripted_valid=[1, 2.5]", "task.name=other", "trainer.grad_clip=1.5",
                         "optim.betas=[0.8, 0.9]", "+model.width=16")
    assert config["optim"]["lr"] == pytest.approx(1e-4) and isinstance(config["optim"]["lr"], float)
    assert config["trainer"]["max_epochs"] == 3 and config["trainer"]["cudnn_benchmark"] is False
    assert config["task"]["scripted_valid"] == [1, 2.5] and config["task"]["name"] == "other"
    assert config["trainer"]["grad_clip"] == 1.5 and config["optim"]["betas"] == [0.8, 0.9]
    assert config["model"] == {"width": 16}
    assert config["trainer"]["patience"] == 100  # from the file, the rest from the defaults
    assert config["trainer"]["max_steps_per_epoch"] is None
    config = apply_overrides(config, ["trainer.max_steps_per_epoch=5", "trainer.bf16=true"])
    assert config["trainer"]["max_steps_per_epoch"] == 5 and config["trainer"]["bf16"] is True
    unset = apply_overrides(config, ["trainer.max_steps_per_epoch=null"])
    assert unset["trainer"]["max_steps_per_epoch"] is None


@pytest.mark.parametrize("override, message", [
    ("trainer.max_epoch=3", r"unknown key 'trainer.max_epoch'.*tiny.yaml.*did you mean 'trainer.max_epochs'"),
    ("trainer.max_epochs=3.5", "'trainer.max_epochs' must be an integer >= 1, not 3.5"),
    ("trainer.max_epochs=null", r"'trainer.max_epochs' must be set to an integer >= 1 \(it is null\)"),
    ("trainer.cudnn_benchmark=yes", "takes only true or false"),
    ("trainer.cudnn_benchmark=1", "takes only true or false"),
    ("optim.lr=fast", "'optim.lr' must be a number > 0, not 'fast'"),
    ("optim.betas=0.9", "'optim.betas' must be a list of numbers >= 0 and < 1, not 0.9"),
    ("trainer=3", "is a section"),
    ("trainer.bf16=on", "takes only true or false"),
    ("trainer.max_steps_per_epoch=few", "'trainer.max_steps_per_epoch' must be an integer >= 1 or null"),
    ("task.dropout=null", "cannot be null"),  # an undeclared key keeps its type too
    ("task.name", "expected key=value"),
    ("+task.dropout=0.5", "already exists"),
])
def test_bad_overrides_name_the_key_and_the_file(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        tiny_config(tmp_path, override)


def test_config_file_errors_name_the_file_and_key(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("task: {name: tiny-regression}\ntrainer: {patiense: 3}\n")
    with pytest.raises(ConfigError, match=r"typo.yaml: unknown key 'trainer.patiense'"):
        load_config(path)
    path.write_text("trainer: {max_epochs: 3}\n")
    with pytest.raises(ConfigError, match=r"typo.yaml: needs a 'task'"):
        load_config(path)
    path.write_text("task: {name: x}\noptim: {lr: 1e-4}\n")  # PyYAML reads 1e-4 as text
    assert load_config(path)["optim"]["lr"] == pytest.approx(1e-4)


# ------------------------------------------------------------------------------------ training runs
def test_training_lowers_the_loss_and_writes_the_experiment(tmp_path):
    config = tiny_config(tmp_path, "trainer.max_epochs=6", "trainer.tensorboard=true")
    result = train(config, tmp_path / "exp")
    exp = tmp_path / "exp"
    assert result.status == "finished" and result.epochs == 6 and result.stop_reason == "max_epochs"
    history = load_checkpoint(exp / "checkpoints" / "last.pt")["history"]
    assert history[-1]["train"]["loss"] < 0.5 * history[0]["train"]["loss"]
    assert history[-1]["valid"]["loss"] < 0.5 * history[0]["valid"]["loss"]
    assert yaml.safe_load((exp / "config.yaml").read_text()) == config
    log = (exp / "train.log").read_text()
    assert "epoch 6/6 | train loss=" in log and "valid loss=" in log and "lr 0.05" in log
    final = load_checkpoint(exp / "final.pt")
    assert final["epoch"] == result.best_epoch
    assert json.loads((exp / "done").read_text())["best_epoch"] == result.best_epoch
    assert scalar_steps(exp / "tensorboard", "valid/loss") == [1, 2, 3, 4, 5, 6]
    assert scalar_steps(exp / "tensorboard", "train/mae") == [1, 2, 3, 4, 5, 6]
    assert scalar_steps(exp / "tensorboard", "lr") == [1, 2, 3, 4, 5, 6]


def test_max_steps_per_epoch_limits_the_steps(tmp_path):
    train(tiny_config(tmp_path, "trainer.max_steps_per_epoch=2", "trainer.max_epochs=3",
                      "trainer.grad_clip=0.1"), tmp_path / "exp")
    assert load_checkpoint(tmp_path / "exp" / "checkpoints" / "last.pt")["global_step"] == 6


def test_early_stopping_stops_patience_epochs_after_the_best(tmp_path):
    sequence = [5.0, 4.0, 3.0, 3.5, 3.2, 3.0, 2.0, 1.0]  # best at epoch 3; 3.0 again is no improvement
    config = tiny_config(tmp_path, "trainer.max_epochs=8", "trainer.patience=3",
                         f"task.scripted_valid={sequence}")
    result = train(config, tmp_path / "exp")
    assert (result.stop_reason, result.epochs, result.best_epoch) == ("early_stopping", 6, 3)
    assert result.best_valid_loss == 3.0
    # final.pt holds the weights of epoch 3: those of the same run stopped after 3 epochs.
    reference = train(tiny_config(tmp_path, "trainer.max_epochs=3", f"task.scripted_valid={sequence}"),
                      tmp_path / "ref")
    assert reference.epochs == 3
    assert_same_state(weights(tmp_path / "exp" / "final.pt"),
                      weights(tmp_path / "ref" / "checkpoints" / "last.pt"))


def test_keep_last_writes_the_last_epochs_weights(tmp_path):
    """With a validation set too small to pick an epoch by, final.pt can hold the last epoch instead."""
    sequence = [5.0, 4.0, 3.0, 3.5, 3.2]  # best at epoch 3
    config = tiny_config(tmp_path, "trainer.max_epochs=5", "trainer.keep=last",
                         f"task.scripted_valid={sequence}")
    result = train(config, tmp_path / "exp")
    assert (result.epochs, result.best_epoch) == (5, 3)
    assert_same_state(weights(tmp_path / "exp" / "final.pt"),
                      weights(tmp_path / "exp" / "checkpoints" / "last.pt"))
    done = json.loads((tmp_path / "exp" / "done").read_text())
    assert (done["kept"], done["kept_epoch"]) == ("last", 5)
    with pytest.raises(ConfigError, match="trainer.keep"):
        train(tiny_config(tmp_path, "trainer.keep=first"), tmp_path / "bad")


def test_done_marker_makes_a_rerun_a_no_op(tmp_path, capsys):
    config_path = write_config(tmp_path / "tiny.yaml")
    args = ["train", "--config", str(config_path), "--exp-dir", str(tmp_path / "exp"), "trainer.max_epochs=2"]
    assert inmsrl_main(args) == 0
    last = tmp_path / "exp" / "checkpoints" / "last.pt"
    stamp = last.stat().st_mtime_ns, (tmp_path / "exp" / "train.log").read_text()
    capsys.readouterr()
    assert inmsrl_main(args) == 0
    assert "already done" in capsys.readouterr().err
    assert stamp == (last.stat().st_mtime_ns, (tmp_path / "exp" / "train.log").read_text())
    # Any change other than the stopping rule is refused rather than silently ignored.
    assert inmsrl_main([*args, "optim.lr=0.01"]) == 2
    assert "optim.lr: 0.05 -> 0.01" in capsys.readouterr().err


def test_options_may_stand_among_the_overrides(tmp_path):
    config_path = write_config(tmp_path / "tiny.yaml")
    exp = tmp_path / "exp"
    assert inmsrl_main(["train", "--config", str(config_path), "trainer.max_epochs=1", "--resume", "auto",
                        "optim.lr=0.01", "--exp-dir", str(exp), "task.batch_size=16"]) == 0
    saved = yaml.safe_load((exp / "config.yaml").read_text())
    assert saved["trainer"]["max_epochs"] == 1 and saved["optim"]["lr"] == 0.01
    assert saved["task"]["batch_size"] == 16


def test_unknown_task_is_a_clear_error(tmp_path, capsys):
    config_path = write_config(tmp_path / "tiny.yaml", task={"name": "no-such-task"})
    assert inmsrl_main(["train", "--config", str(config_path), "--exp-dir", str(tmp_path / "exp")]) == 2
    assert "unknown task 'no-such-task'" in capsys.readouterr().err


# ------------------------------------------------------------------------------ checkpoints, resume
def test_a_failed_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    atomic_save({"epoch": 1, "weights": torch.ones(3)}, path)

    def interrupted(*args, **kwargs):
        raise OSError("killed during the rename")
    monkeypatch.setattr(checkpoint_module.os, "replace", interrupted)
    with pytest.raises(OSError, match="killed"):
        atomic_save({"epoch": 2, "weights": torch.zeros(3)}, path)
    monkeypatch.undo()

    def half_written(obj, stream):
        stream.write(b"PK\x03\x04 truncated")
        raise KeyboardInterrupt
    monkeypatch.setattr(checkpoint_module.torch, "save", half_written)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"epoch": 3}, path)
    monkeypatch.undo()

    state = load_checkpoint(path)
    assert state["epoch"] == 1 and torch.equal(state["weights"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temp file left behind
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="last.pt"):
        load_checkpoint(path)


def test_resume_gives_the_weights_of_an_uninterrupted_run(tmp_path):
    train(tiny_config(tmp_path, "trainer.max_epochs=4"), tmp_path / "straight")
    logged = ("trainer.tensorboard=true", "trainer.log_interval=1")
    train(tiny_config(tmp_path, "trainer.max_epochs=2", *logged), tmp_path / "resumed")
    # Another "process": the generators are somewhere else entirely when the run resumes.
    torch.manual_seed(999), np.random.seed(999), random.seed(999)
    result = train(tiny_config(tmp_path, "trainer.max_epochs=4", *logged), tmp_path / "resumed")
    assert result.epochs == 4
    straight = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    resumed = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    assert_same_state(straight["model"], resumed["model"])
    assert_same_state(straight["optimizer"]["state"][0], resumed["optimizer"]["state"][0])
    assert straight["history"] == [{**a, "seconds": b["seconds"]}
                                   for a, b in zip(resumed["history"], straight["history"], strict=True)]
    assert_same_state(weights(tmp_path / "straight" / "final.pt"), weights(tmp_path / "resumed" / "final.pt"))
    assert "resuming from epoch 2" in (tmp_path / "resumed" / "train.log").read_text()
    assert scalar_steps(tmp_path / "resumed" / "tensorboard", "valid/loss") == [1, 2, 3, 4]
    assert scalar_steps(tmp_path / "resumed" / "tensorboard" / "steps", "train/loss") == list(range(1, 17))


def test_resume_refuses_a_changed_config(tmp_path):
    train(tiny_config(tmp_path, "trainer.max_epochs=1"), tmp_path / "exp")
    (tmp_path / "exp" / "done").unlink()  # as if killed after the first epoch
    with pytest.raises(ConfigError, match=r"task.dropout: 0.2 -> 0.5.*--resume never"):
        train(tiny_config(tmp_path, "task.dropout=0.5"), tmp_path / "exp")
    result = train(tiny_config(tmp_path, "task.dropout=0.5"), tmp_path / "exp", resume="never")
    assert result.epochs == 4
    assert "resuming" not in (tmp_path / "exp" / "train.log").read_text()


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path):
    config_path = write_config(tmp_path / "tiny.yaml", task={"sleep_per_step": 0.05},
                               trainer={"max_epochs": 5})
    exp = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-c", "import sys, test_trainer; from inmsrl.bin.main import main; "
               "sys.exit(main(sys.argv[1:]))", "train", "--config", str(config_path), "--exp-dir", str(exp)]
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (exp / "checkpoints" / "last.pt").exists():
        assert child.poll() is None, child.stderr.read().decode()
        assert time.monotonic() < deadline, "no checkpoint within 60 s"
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL and not (exp / "done").exists()

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming from epoch" in (exp / "train.log").read_text()
    train(tiny_config(tmp_path, "trainer.max_epochs=5"), tmp_path / "straight")
    assert_same_state(weights(exp / "checkpoints" / "last.pt"),
                      weights(tmp_path / "straight" / "checkpoints" / "last.pt"))
    assert_same_state(weights(exp / "final.pt"), weights(tmp_path / "straight" / "final.pt"))


def test_a_second_run_in_the_same_directory_is_refused_naming_the_first(tmp_path, capsys):
    config_path = write_config(tmp_path / "tiny.yaml", task={"sleep_per_step": 0.05},
                               trainer={"max_epochs": 50})
    exp = tmp_path / "exp"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-c", "import sys, test_trainer; from inmsrl.bin.main import main; "
               "sys.exit(main(sys.argv[1:]))", "train", "--config", str(config_path), "--exp-dir", str(exp)]
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while "epoch 1/50" not in ((exp / "train.log").read_text() if (exp / "train.log").exists() else ""):
            assert first.poll() is None and time.monotonic() < deadline, "the first run did not start"
            time.sleep(0.05)
        log_lines = (exp / "train.log").read_text().count("training tiny-regression in")
        assert inmsrl_main(["train", "--config", str(config_path), "--exp-dir", str(exp)]) == 2
        message = capsys.readouterr().err
        assert f"{exp} is in use by another run (inmsrl train, pid {first.pid} on " in message
        assert (exp / "train.log").read_text().count("training tiny-regression in") == log_lines == 1
    finally:
        first.kill()
        first.wait(timeout=30)
    with exclusive_run(ExperimentDir(exp)):  # a killed run leaves no stale lock behind
        assert str(os.getpid()) in (exp / ".lock").read_text()


def test_a_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    config_path = write_config(tmp_path / "tiny.yaml", task={"nan_at": [3, 2]})
    exp = tmp_path / "exp"
    assert inmsrl_main(["train", "--config", str(config_path), "--exp-dir", str(exp)]) == 1
    message = capsys.readouterr().err
    assert "epoch 3, step 2" in message and "not finite" in message and "(epoch 2) is unchanged" in message
    assert "epoch 3, step 2" in (exp / "train.log").read_text()
    assert not (exp / "done").exists() and not (exp / "final.pt").exists()
    assert sorted(p.name for p in (exp / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    last = load_checkpoint(exp / "checkpoints" / "last.pt")
    assert last["epoch"] == 2
    train(tiny_config(tmp_path, "trainer.max_epochs=2", "task.nan_at=[3, 2]"), tmp_path / "clean")
    assert_same_state(last["model"], weights(tmp_path / "clean" / "checkpoints" / "last.pt"))
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, step 3: the training loss is not finite"):
        train(tiny_config(tmp_path, "task.nan_at=[1, 3]"), tmp_path / "early")
    assert not (tmp_path / "early" / "checkpoints").exists()


# --------------------------------------------------------------------------------------------- DDP
def test_a_finished_rank_exits_with_its_status_and_keeps_its_output(tmp_path):
    # DDP ranks leave with os._exit (no interpreter teardown): the exit status, the log file and
    # buffered standard output must all survive it.
    program = ("import logging, sys\n"
               "from inmsrl.train.distributed import exit_rank_process\n"
               "logging.basicConfig(filename=sys.argv[1], level=logging.INFO)\n"
               "logging.info('epoch 2/2 logged')\n"
               "print('summary printed', end='')\n"
               "exit_rank_process(3)\n"
               "print('not reached')\n")
    log = tmp_path / "rank.log"
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    done = subprocess.run([sys.executable, "-c", program, str(log)], capture_output=True, text=True,
                          timeout=120, env=environment)  # a pipe: stdout is block-buffered
    assert done.returncode == 3, done.stderr
    assert done.stdout == "summary printed"
    assert "epoch 2/2 logged" in log.read_text()


def test_ddp_on_two_cpu_processes_averages_gradients(tmp_path):
    # No dropout or jitter, so one process on the whole batch must match two on half each. A large
    # Adam eps makes the step depend on the gradient's scale: summed instead of averaged gradients
    # (or unsynchronised ones) would end elsewhere.
    overrides = ("task.dropout=0.0", "task.jitter=0.0", "optim.eps=0.1", "trainer.max_epochs=2",
                 "trainer.device=cpu", "task.save_rank_weights=true")
    result = train(tiny_config(tmp_path, *overrides), tmp_path / "ddp", ngpu=2)
    single = train(tiny_config(tmp_path, *overrides), tmp_path / "single", ngpu=0)
    assert result.status == "finished" and result.epochs == 2
    ddp = tmp_path / "ddp"
    assert sorted(p.name for p in (ddp / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    assert load_checkpoint(ddp / "checkpoints" / "last.pt")["world_size"] == 2
    assert (ddp / "train.log").read_text().count("epoch 2/2") == 1  # only rank 0 logs
    rank0, rank1 = (torch.load(ddp / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert_same_state(rank0, rank1)
    reference = weights(tmp_path / "single" / "checkpoints" / "last.pt")
    for key, value in weights(ddp / "checkpoints" / "last.pt").items():
        torch.testing.assert_close(value, reference[key], rtol=1e-5, atol=1e-6)
    assert result.best_valid_loss == pytest.approx(single.best_valid_loss, rel=1e-5)
