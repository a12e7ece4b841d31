"""Shared pytest fixtures: keep every test away from the real home directory."""

import pytest
import torch

# The browser tests' fixtures (site server, Chromium, contexts), shared by their modules.
pytest_plugins = ["site_fixtures"]


@pytest.fixture(autouse=True, scope="session")
def _isolated_lessons_env(tmp_path_factory: pytest.TempPathFactory):
    """Point the data cache at one temporary folder for the whole session and turn off
    progress tracking, so tests never write under ``~`` and the Wikipedia dump is parsed
    at most once per session."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LESSONS_DATA_DIR", str(tmp_path_factory.mktemp("lessons-data")))
        patch.setenv("LESSONS_PROGRESS", "off")
        yield


@pytest.fixture
def one_thread():
    """Train on one torch thread: small models train several times faster on one thread
    than on several that share a busy CPU, and the numbers do not depend on the core count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
