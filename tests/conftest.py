"""Shared pytest fixtures and markers for the GPO Studio test suite."""

from __future__ import annotations

import pytest

from gpo_testkit.fake_openai_server import FakeOpenAIServer


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "real_model: needs the embedded SmolLM2 model or the real sentence embedder")
    config.addinivalue_line("markers", "browser: drives the Streamlit app in a headless browser (playwright)")


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
