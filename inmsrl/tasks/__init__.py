"""Training stages as tasks for the generic trainer: each turns a batch into named losses.

Modules here register their task factories with :func:`inmsrl.train.task.register_task`; a config's
``task.name`` picks one.
"""
