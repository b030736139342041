"""Shared pytest fixtures: where the repository is, and where the public reference data are.

Tests that need public data take its location from an environment variable and skip, saying which,
where it is unset; CI (``.ci/run``) sets them, so there they run:

* ``INST_SIM_ABX`` — the Inst-Sim-ABX release: the folder with ``inst_sim_abx_answers.csv`` and its
  ``dict_triplet_*.json`` (the paper's Table 1 tests);
* ``SLAKH_REDUX_JSON`` — slakh-utils' ``splits/redux.json`` (the redux release's track counts).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout under test."""
    return REPO


def _reference(variable: str, what: str, required: str = "") -> Path:
    """``$variable`` as a path; skips where it is unset, fails where the file ``required`` under it (or,
    with ``""``, the path itself) is not there."""
    value = os.environ.get(variable, "")
    if not value:
        pytest.skip(f"{variable} is not set: point it at {what} to run this test")
    path = Path(value)
    if not (path / required).is_file():
        pytest.fail(f"{variable}={value}: {path / required} not found; point it at {what}")
    return path


@pytest.fixture(scope="session")
def search_corpus(tmp_path_factory) -> tuple[Path, Path]:
    """(dump, experiment) of the tiny band-separated corpus and the Cascade trained on it (seconds),
    shared by the tests of the search layer (see tests/search_fixtures.py)."""
    from search_fixtures import make_dump, train_cascade

    root = tmp_path_factory.mktemp("search_corpus")
    dump = make_dump(root)
    return dump, train_cascade(dump, root / "exp" / "cascade")


@pytest.fixture(scope="session")
def inst_sim_abx() -> Path:
    """The public Inst-Sim-ABX data (read-only), from ``$INST_SIM_ABX``."""
    return _reference("INST_SIM_ABX", "the Inst-Sim-ABX folder with inst_sim_abx_answers.csv",
                      "inst_sim_abx_answers.csv")


@pytest.fixture(scope="session")
def slakh_redux_json() -> Path:
    """slakh-utils' ``splits/redux.json`` (read-only), from ``$SLAKH_REDUX_JSON``."""
    return _reference("SLAKH_REDUX_JSON", "slakh-utils' splits/redux.json")
