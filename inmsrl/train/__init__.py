"""The generic trainer every training stage runs through (see :mod:`inmsrl.train.trainer`).

A stage is a :class:`~inmsrl.train.task.Task` registered with :func:`~inmsrl.train.task.register_task`;
:func:`~inmsrl.train.trainer.train` runs it from a YAML configuration (:mod:`inmsrl.train.config`) in an
experiment directory (:mod:`inmsrl.train.experiment`). Import the submodules directly: this package
module stays light so that ``inmsrl --help`` does not import torch.
"""
