"""Shared pytest fixtures: where the repository and the shared reference data are."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout under test."""
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout (read-only reference data); skips where it is absent."""
    path = REPO.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"reference data not found at {path}")
    return path


@pytest.fixture(scope="session")
def search_corpus(tmp_path_factory) -> tuple[Path, Path]:
    """(dump, experiment) of the tiny band-separated corpus and the Cascade trained on it (seconds),
    shared by the tests of the search layer (see tests/search_fixtures.py)."""
    from search_fixtures import make_dump, train_cascade

    root = tmp_path_factory.mktemp("search_corpus")
    dump = make_dump(root)
    return dump, train_cascade(dump, root / "exp" / "cascade")
