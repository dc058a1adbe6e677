"""Shared test fixtures. The tests mirror the package (tests/timeline for bridge/timeline, ...);
what they share besides fixtures is in tests/helpers. Sample data beside the checkout
(../shared) is optional."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SCOREBRIDGE_SHARED", ROOT.parent / "shared"))


def pytest_collection_modifyitems(config, items):
    """`gpu` tests run where CUDA is present and are skipped, with the reason, elsewhere."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device here: `gpu` tests run where one is present")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Each test session gets its own analysis cache and config folder."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("SCOREBRIDGE_CACHE", str(base / "cache"))
    monkeypatch.setenv("SCOREBRIDGE_CONFIG", str(base / "config"))


@pytest.fixture
def one_thread():
    """One intra-op thread for the test: the models it uses are tiny, and threads fight over
    shared cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def shared_data():
    """../shared/data, or skip: a user's clone has no such folder."""
    data = SHARED / "data"
    if not data.is_dir():
        pytest.skip(f"sample data not present at {data} (only the project's own checkout has it)")
    return data
