"""Shared pytest fixtures and markers for the GPO Studio test suite."""

from __future__ import annotations

import pytest

from gpo_testkit.fake_openai_server import FakeOpenAIServer


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "real_model: needs the embedded models (SmolLM2, Qwen2.5-Coder-1.5B) "
                                       "or the real sentence embedder")
    config.addinivalue_line("markers", "browser: drives the Streamlit app in a headless browser (playwright)")


@pytest.fixture(scope="session", autouse=True)
def shared_models_dir():
    """One models folder for the whole run (tests point GPO_HOME at temporary folders; the
    1.1 GB embedded model is joined once, not once per test home). Subprocesses inherit it."""
    import os

    from gpo_core.models.weights import models_dir

    if "GPO_MODELS_DIR" not in os.environ:
        os.environ["GPO_MODELS_DIR"] = str(models_dir())
    yield


@pytest.fixture
def fake_server():
    """A started loopback OpenAI-compatible server (no latency, no faults); stopped after the test."""
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def make_fake_server():
    """Factory: ``make_fake_server(latency_s=..., faults=FaultPlan(...), ...)`` -> started server,
    stopped after the test."""
    servers: list[FakeOpenAIServer] = []

    def make(**kwargs) -> FakeOpenAIServer:
        server = FakeOpenAIServer(**kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
