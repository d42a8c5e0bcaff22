"""Shared helpers for the benchmarks (issue 4). Not part of gpo_core.

- :class:`ServerProcess`: the loopback :class:`~gpo_testkit.fake_openai_server.FakeOpenAIServer`
  run in its OWN process, so the server's Python threads do not compete for the client's
  GIL (on 2 cores the client and the server each get one). Counters and recorded request
  bodies are read over a pipe.
- :func:`emit`: print a figure as JSON on the last line of stdout (run_all.py reads it).
- :func:`bbh_task`: a BBH task from ``../shared/data/bbh/<task>`` (relative to the repo root).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

#: BBH data, relative to the repo root (never copied into the repo).
BBH_DIR = Path("..") / "shared" / "data" / "bbh"
PEER_VENV = BENCH_DIR / ".venv-peer"


def bbh_task(name: str):
    """Load ``../shared/data/bbh/<name>`` with gpo_core's loader (paths relative to the repo)."""
    from gpo_core.tasks.io import load_task

    path = (REPO / BBH_DIR / name)
    if not path.is_dir():
        raise SystemExit(f"BBH task folder not found: {BBH_DIR / name} (relative to {REPO})")
    return load_task(path)


def emit(figure: dict) -> None:
    """Print the figure as one JSON line; it must be the LAST line of the script's stdout."""
    figure = dict(figure)
    figure.setdefault("loadavg_1m_at_end", round(os.getloadavg()[0], 2))
    sys.stdout.flush()
    print(json.dumps(figure, sort_keys=False), flush=True)


def median(xs):
    return statistics.median(xs) if xs else None


def r(x, nd=3):
    return None if x is None else round(float(x), nd)


# ----------------------------------------------------------------------------- server process


def dspy_aware_responder(body: dict) -> str:
    """The fake server's default reply, except for DSPy ChatAdapter requests (their prompt
    holds ``[[ ## field ## ]]`` markers), which get a reply in DSPy's own format so that
    DSPy parses it on the first call (no JSON-adapter fallback call): a fair peer."""
    from gpo_testkit.fake_openai_server import _prompt_text, default_responder

    text = _prompt_text(body)
    if "[[ ## " in text:
        import re

        last_user = ""
        for m in body.get("messages") or ():
            if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
                last_user = m["content"]
        options = sorted(set(re.findall(r"\(([A-R])\)", last_user)))
        answer = f"({options[len(last_user) % len(options)]})" if options else "Yes"
        return f"[[ ## answer ## ]]\n{answer}\n\n[[ ## completed ## ]]"
    return default_responder(body)


def serve_main() -> None:
    """Child-process entry: ``python benchlib.py serve LATENCY_S RESPONDER``. Prints the base
    URL, then answers one JSON command per stdin line with one JSON line on stdout."""
    from gpo_testkit.fake_openai_server import FakeOpenAIServer

    latency_s, responder = float(sys.argv[2]), sys.argv[3]
    resp = dspy_aware_responder if responder == "dspy" else None
    server = FakeOpenAIServer(latency_s=latency_s, responder=resp, keep_bodies=20_000).start()
    out = sys.stdout
    out.write(json.dumps(server.base_url) + "\n")
    out.flush()
    try:
        for line in sys.stdin:
            cmd, arg = json.loads(line)
            if cmd == "stats":
                reply = {"chat_requests": server.chat_requests, "requests_served": server.requests_served}
            elif cmd == "reset":
                server.reset_counters()
                reply = True
            elif cmd == "bodies":
                reply = list(server.received)
            elif cmd == "latency":
                server.latency_s = float(arg)
                reply = True
            else:
                break
            out.write(json.dumps(reply) + "\n")
            out.flush()
    finally:
        server.stop()


class ServerProcess:
    """The fake OpenAI server in a child process (loopback only), driven over a pipe.

    ``base_url``, ``stats()`` -> {"chat_requests", "requests_served"}, ``reset()``,
    ``bodies()`` -> request JSON bodies received since the last reset, in arrival order.
    """

    def __init__(self, latency_s: float = 0.1, responder: str = "default"):
        self.latency_s = latency_s
        self._responder = responder
        self._proc: subprocess.Popen | None = None
        self.base_url = ""

    def __enter__(self) -> ServerProcess:
        self._proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "serve", str(self.latency_s),
                                       self._responder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                      cwd=str(REPO))
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the fake server process did not start")
        self.base_url = json.loads(line)
        return self

    def _ask(self, cmd: str, arg=None):
        self._proc.stdin.write(json.dumps([cmd, arg]) + "\n")
        self._proc.stdin.flush()
        return json.loads(self._proc.stdout.readline())

    def stats(self) -> dict:
        return self._ask("stats")

    def reset(self) -> None:
        self._ask("reset")

    def bodies(self) -> list[dict]:
        return self._ask("bodies")

    def set_latency(self, seconds: float) -> None:
        self._ask("latency", seconds)

    def __exit__(self, *exc) -> None:
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.terminate()
            self._proc.wait(timeout=5)


# ----------------------------------------------------------------------------- engine helpers


def openai_model(base_url: str, concurrency: int, name: str = "fake-model"):
    """The engine's real OpenAI path: OpenAIChatModel against the loopback server."""
    from gpo_core.models.openai_chat import OpenAIChatModel

    return OpenAIChatModel(name, api_key="bench-not-a-key", base_url=base_url, max_concurrency=concurrency,
                           timeout_s=30.0)


def bench_settings(concurrency: int = 8, base_url: str | None = None, **flat):
    """RunSettings from flat names: the optimizer's and the split's fields (steps=,
    candidates=, k=, dev_size=, seed=, ...) and ``<role>_<model field>`` (task_max_tokens=,
    optimizer_temperature=, ...). Both models run ``concurrency`` calls at once: on the
    loopback server at ``base_url`` ("fake-model"), else on the scripted demo backend."""
    from gpo_testkit.flat_settings import flat_run_settings

    where = {"backend": "compatible", "base_url": base_url} if base_url else {"backend": "demo"}
    models: dict[str, dict[str, Any]] = {
        role: dict(where, model="fake-model" if base_url else f"scripted-{role}", concurrency=concurrency,
                   temperature=0.0 if role == "task" else 1.0, max_tokens=256 if role == "task" else 200)
        for role in ("task", "optimizer")}
    return flat_run_settings(models, **flat).validate()


def timer():
    return time.perf_counter()


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "serve":
    serve_main()
