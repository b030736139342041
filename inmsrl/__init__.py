"""inmsrl: music similarity representation learning focused on individual instruments.

Layers, lowest first; a module imports only from layers above it in this list:
``audio`` → ``data`` → ``models`` → ``tasks``/``train`` → ``eval`` → ``bin``.
"""

from inmsrl.version import __version__

__all__ = ["__version__"]
