"""A loopback OpenAI-compatible chat server for tests and benchmarks (no network, no key).

Serves ``POST /v1/chat/completions`` and ``GET /v1/models`` on ``127.0.0.1`` with the JSON
shape of the OpenAI API (``choices[0].message.content`` and ``usage``), a fixed latency per
request, deterministic replies and injectable faults (429 with and without ``Retry-After``,
500, 503, connection reset, hang, malformed JSON, empty content, content without the
``<INS>`` tags, a reply 100x longer than ``max_tokens``) and hostile replies (content that
is null, a list or blank; usage fields that are not numbers; a reply with 100 tagged
spans), a server that dies after a number of requests (``die_after``) and keys accepted
one by one (``accepted_keys``: others get HTTP 401).

Over 300 lines: one test double with its HTTP handler, fault plan and command line, kept in
one file so a test or benchmark starts it with one import; never imported by gpo_core.

Built on the standard library's :class:`http.server.ThreadingHTTPServer` (one daemon thread
per keep-alive connection), which sustains concurrency 32 at 100 ms latency on loopback.

The ``Authorization`` header is only recorded as a boolean ("had a key"); its value is never
stored or logged.

Command line::

    python -m gpo_testkit.fake_openai_server --port 8011 --latency-ms 100 --fault-rate 0.3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FAULT_KINDS", "FaultPlan", "FakeOpenAIServer", "default_responder", "main"]

#: Every fault the server can inject.
#: ``429_retry_after``: HTTP 429 with a ``Retry-After`` header (``FaultPlan.retry_after_s``).
#: ``429``: HTTP 429 without it. ``500`` / ``503``: server errors. ``reset``: the socket is
#: closed abruptly (TCP RST) after the request is read. ``hang``: no reply for
#: ``FaultPlan.hang_s`` seconds, then the connection is closed. ``malformed``: HTTP 200 with
#: a body that is not JSON. ``empty``: a well-formed reply whose content is "". ``null_content``:
#: content is JSON null. ``empty_choices``: ``choices`` is []. ``no_tags``: the reply lacks
#: ``<INS>`` tags. ``long``: a reply 100x longer (in words) than ``max_tokens``.
#: ``list_content``: content is a list of content parts. ``blank``: content is whitespace.
#: ``bad_usage``: the normal reply, with usage fields that are not numbers. ``many_tags``: the
#: reply holds ``FaultPlan.many_tags`` tagged spans (<INS>...</INS> and <START>...<END>), each
#: a different instruction (different for each ``seed``, i.e. each sample).
FAULT_KINDS: tuple[str, ...] = (
    "429_retry_after",
    "429",
    "500",
    "503",
    "reset",
    "hang",
    "malformed",
    "empty",
    "null_content",
    "empty_choices",
    "no_tags",
    "long",
    "list_content",
    "blank",
    "bad_usage",
    "many_tags",
)

#: Faults that a client should recover from by retrying.
TRANSIENT_FAULTS: tuple[str, ...] = ("429_retry_after", "429", "500", "503", "reset", "hang")


@dataclass
class FaultPlan:
    """Which chat requests get a fault.

    rate: probability in [0, 1] that a chat request gets a fault, drawn with a
    :class:`random.Random` seeded by the server's ``seed``; the kind is drawn uniformly from
    ``kinds``. schedule: ``{request_number: kind}`` with request numbers counted from 1 over
    ``POST /v1/chat/completions`` requests; a scheduled entry wins over the rate.
    retry_after_s: the ``Retry-After`` value sent with ``429_retry_after`` (seconds, may be
    fractional). hang_s: how long a ``hang`` holds the connection before closing it (seconds).
    many_tags: how many tagged spans a ``many_tags`` reply holds.
    by_prompt: ``{substring: kind}``; a chat request whose prompt text (all message contents
    joined) contains the substring gets that fault on every attempt, so one chosen example's
    calls always fail. Checked first (insertion order); wins over ``schedule`` and ``rate``.
    With ``by_prompt`` set, ``schedule`` numbers count only the requests it does not match, so
    scheduled faults land on other calls whatever the arrival order.

    Raises ValueError for a rate outside [0, 1] or an unknown kind.
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = TRANSIENT_FAULTS
    schedule: dict[int, str] = field(default_factory=dict)
    retry_after_s: float = 0.2
    hang_s: float = 2.0
    by_prompt: dict[str, str] = field(default_factory=dict)
    many_tags: int = 100

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be in [0, 1], got {self.rate}")
        self.kinds = tuple(self.kinds)
        for kind in (*self.kinds, *self.schedule.values(), *self.by_prompt.values()):
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if self.rate > 0 and not self.kinds:
            raise ValueError("fault rate > 0 needs at least one fault kind")


# --------------------------------------------------------------------------- replies

_META_MARKERS = re.compile(r"<prompt>|\binstructions?\b", re.IGNORECASE)
_OPTION = re.compile(r"\(([A-R])\)")
_INSTRUCTION_PARTS = (
    ("Let's think step by step.", "Think carefully before answering.", "Read the question twice.",
     "Work through the problem one step at a time.", "Consider every option in turn."),
    ("Check each clue against the options.", "Eliminate the options that cannot be right.",
     "Write down the key facts first.", "Keep track of every object and its position.",
     "Pay attention to the exact wording."),
    ("Then give the final answer.", "End with the answer in the requested format.",
     "State the answer clearly at the end.", "Finish with a single, definite answer.", ""),
)


def _digest(request_json: Mapping[str, Any]) -> int:
    """A stable 64-bit integer from the request's messages, seed, temperature and n."""
    payload = json.dumps(
        [request_json.get("messages"), request_json.get("seed"), request_json.get("temperature"),
         request_json.get("n"), request_json.get("model")],
        sort_keys=True, ensure_ascii=False, default=str,
    )
    return int.from_bytes(hashlib.sha256(payload.encode("utf-8")).digest()[:8], "big")


def _prompt_text(request_json: Mapping[str, Any]) -> str:
    parts = []
    for m in request_json.get("messages") or ():
        content = m.get("content") if isinstance(m, Mapping) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):  # content parts
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return "\n".join(parts)


def default_responder(request_json: Mapping[str, Any]) -> str:
    """The default deterministic reply to a chat request.

    A meta-prompt (text contains ``<Prompt>`` or the word "instruction") gets a candidate
    instruction between ``<INS>`` and ``</INS>``, chosen from a fixed phrase list by a hash
    of (messages, seed, temperature, n, model), so requests with different ``seed`` values give
    different candidates and the same request always gives the same one. Any other prompt
    gets an answer: ``"The answer is (X)."`` with X among the options ``(A)``... found in the
    prompt, else ``"Yes"`` or ``"No"``.
    """
    text = _prompt_text(request_json)
    rng = random.Random(_digest(request_json))
    if _META_MARKERS.search(text):
        words = [rng.choice(part) for part in _INSTRUCTION_PARTS]
        candidate = " ".join(w for w in words if w)
        return f"Here is an improved instruction.\n<INS>{candidate}</INS>"
    options = sorted(set(_OPTION.findall(text)))
    if options:
        return f"The answer is ({rng.choice(options)})."
    return rng.choice(("Yes", "No"))


def _words(text: str) -> int:
    return len(text.split())


# --------------------------------------------------------------------------- server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the stdlib default (5) drops connects at concurrency 32
    allow_reuse_address = True
    owner: FakeOpenAIServer

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def close_open_connections(self) -> None:
        """Shut down every accepted connection, idle keep-alive ones included, so a stopped
        server answers nothing more (clients must reconnect, and are refused)."""
        with self.connections_lock:
            conns = list(self.open_connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API
    # One buffered write per response and no Nagle: headers and body written separately
    # would otherwise meet the client's delayed ACK and add ~40 ms per request.
    wbufsize = 256 * 1024
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # quiet; never log headers

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.open_connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.open_connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    # -- helpers
    def _send(self, status: int, body: bytes, headers: Mapping[str, str] | None = None,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode("utf-8"), headers)

    def _error(self, status: int, message: str, type_: str, code: str | None = None,
               headers: Mapping[str, str] | None = None) -> None:
        self._send_json(status, {"error": {"message": message, "type": type_, "param": None, "code": code}}, headers)

    def _reset(self) -> None:
        """Close the socket with a TCP RST (SO_LINGER 0) without replying."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True

    # -- routes
    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        owner = self.server.owner
        path = self.path.split("?", 1)[0].rstrip("/")
        owner._count(path, self.headers.get("Authorization"))
        if path == "/v1/models":
            names = sorted(owner.known_models) if owner.known_models else ["fake-model"]
            self._send_json(200, {"object": "list", "data": [
                {"id": n, "object": "model", "created": 0, "owned_by": "fake"} for n in names]})
        else:
            self._error(404, f"no route GET {path}", "invalid_request_error")

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        owner = self.server.owner
        path = self.path.split("?", 1)[0].rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        auth = self.headers.get("Authorization")
        number = owner._count(path, auth)
        if path != "/v1/chat/completions":
            self._error(404, f"no route POST {path}", "invalid_request_error")
            return
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body is not an object")
        except ValueError as exc:
            self._error(400, f"could not parse the JSON body: {exc}", "invalid_request_error")
            return
        owner._record(body)
        if owner.dead(number):  # died mid-run: every later request is cut off
            owner._count_fault("dead")
            self._reset()
            return
        if not owner.key_accepted(auth):
            owner._count_refused()
            self._error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
            return
        model = body.get("model")
        if owner.known_models is not None and model not in owner.known_models:
            self._error(404, f"The model `{model}` does not exist or you do not have access to it.",
                        "invalid_request_error", "model_not_found")
            return
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            self._error(400, "'messages' must be a non-empty array", "invalid_request_error")
            return

        fault = owner._fault_for(number, body)
        if owner.latency_s > 0:
            time.sleep(owner.latency_s)
        if fault is not None:
            owner._count_fault(fault)
            if self._apply_transport_fault(fault, owner):
                return
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or 256
        try:
            max_tokens = max(1, int(max_tokens))
        except (TypeError, ValueError):
            max_tokens = 256
        text: Any = owner.responder(body)
        finish = "stop"
        if fault == "empty":
            text = ""
        elif fault == "null_content":
            text = None
        elif fault == "list_content":
            text = [{"type": "text", "text": text or ""}]
        elif fault == "blank":
            text = "  \n "
        elif fault == "many_tags":
            tag = body.get("seed", 0)  # each sample its own spans
            text = "\n".join(f"<INS>Answer the question with care, way {tag}-{i}.</INS> <START>Think it through, "
                              f"route {tag}-{i}.<END>" for i in range(owner.faults.many_tags))
        elif fault == "no_tags":
            text = re.sub(r"</?INS>", "", text or "") or "I would rephrase it."
        elif fault == "long":
            text = " ".join(["word"] * (100 * max_tokens))
        else:
            words = (text or "").split()
            if len(words) > max_tokens:
                text, finish = " ".join(words[:max_tokens]), "length"
        prompt_tokens: Any = _words(_prompt_text(body))
        completion_tokens: Any = _words(text if isinstance(text, str) else "")
        if fault == "bad_usage":
            prompt_tokens, completion_tokens = "lots", {"n": 3}
        choices = [] if fault == "empty_choices" else [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "logprobs": None,
            "finish_reason": finish,
        }]
        self._send_json(200, {
            "id": f"chatcmpl-fake-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": owner.reported_models.get(str(model), model) or "fake-model",
            "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": (prompt_tokens + completion_tokens) if fault != "bad_usage" else None},
        })

    def _apply_transport_fault(self, fault: str, owner: FakeOpenAIServer) -> bool:
        """Send the fault's reply; True when the request is finished (no normal reply)."""
        plan = owner.faults
        if fault == "429_retry_after":
            self._error(429, "Rate limit reached (fake).", "requests", "rate_limit_exceeded",
                        headers={"Retry-After": f"{plan.retry_after_s:g}"})
        elif fault == "429":
            self._error(429, "Rate limit reached (fake).", "requests", "rate_limit_exceeded")
        elif fault == "500":
            self._error(500, "The server had an error (fake).", "server_error")
        elif fault == "503":
            self._error(503, "The server is overloaded (fake).", "server_error")
        elif fault == "reset":
            self._reset()
        elif fault == "hang":
            owner._stopping.wait(plan.hang_s)
            self._reset()
        elif fault == "malformed":
            self._send(200, b'{"id": "chatcmpl-broken", "choices": [{"message": ', content_type="application/json")
        else:
            return False
        return True


class FakeOpenAIServer:
    """An OpenAI-compatible chat server on ``127.0.0.1`` (stdlib only), for tests and benchmarks.

    latency_s: fixed delay added to every chat request (seconds). responder: function of the
    request JSON (a dict) returning the reply text; default :func:`default_responder`.
    faults: a :class:`FaultPlan` (default: none). seed: seeds the fault draws.
    known_models: if given, other model names get HTTP 404 ``model_not_found``.
    reported_models: ``{requested name: name to report}``: replies to a request for a listed
    model carry the other name in their ``model`` field (as a server that serves another
    model than the one asked for, or resolves an alias); other requests echo their model.
    required_key: if given, requests whose bearer token differs get HTTP 401.
    accepted_keys: if given, only these bearer tokens are served (others get HTTP 401,
    counted in :attr:`refused`); combines with ``required_key`` (either is accepted).
    die_after: if given, the server answers that many chat requests, then cuts every later
    one off (TCP reset, counted as fault "dead"), like an endpoint that died mid-step;
    :meth:`revive` brings it back. port: 0 picks a free port. keep_bodies: how many recent
    request JSON bodies to keep in :attr:`received` (headers are never kept).

    Use as a context manager, or call :meth:`start` / :meth:`stop`. :attr:`base_url` is
    ``"http://127.0.0.1:PORT/v1"``.
    """

    def __init__(self, latency_s: float = 0.0, responder: Callable[[dict], str] | None = None,
                 faults: FaultPlan | None = None, seed: int = 0, *,
                 known_models: set[str] | frozenset[str] | None = None, required_key: str | None = None,
                 port: int = 0, keep_bodies: int = 10_000, reported_models: Mapping[str, str] | None = None,
                 accepted_keys: set[str] | frozenset[str] | None = None, die_after: int | None = None):
        self.latency_s = float(latency_s)
        self.responder = responder or default_responder
        self.faults = faults or FaultPlan()
        self.known_models = set(known_models) if known_models is not None else None
        self.reported_models: dict[str, str] = dict(reported_models or {})
        self.required_key = required_key
        self.accepted_keys = set(accepted_keys) if accepted_keys is not None else None
        self.die_after = die_after
        self._port = port
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.received: deque[dict] = deque(maxlen=keep_bodies)
        self.reset_counters()

    # -- lifecycle
    def start(self) -> FakeOpenAIServer:
        """Bind and serve in a background daemon thread; returns self. Idempotent."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _Server(("127.0.0.1", self._port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: close the listening socket and every open connection (idle
        keep-alive ones too; hanging requests are released), like a server that went down."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        httpd.close_open_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` (pass as the OpenAI client's ``base_url``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- counters
    def reset_counters(self) -> None:
        """Zero every counter and forget recorded bodies (the fault schedule restarts at 1)."""
        with self._lock:
            self.requests_served = 0
            self.chat_requests = 0
            self.requests_by_path: Counter[str] = Counter()
            self.faults_injected: Counter[str] = Counter()
            self.requests_with_key = 0
            self.requests_without_key = 0
            self._unmatched_requests = 0
            self.refused = 0
            self.received.clear()

    def key_accepted(self, authorization: str | None) -> bool:
        """Whether a request with this ``Authorization`` header is served."""
        if self.required_key is None and self.accepted_keys is None:
            return True
        token = (authorization or "").removeprefix("Bearer ").strip()
        return token == self.required_key or token in (self.accepted_keys or ())

    def dead(self, number: int) -> bool:
        """Whether chat request ``number`` comes after the server died (``die_after``)."""
        return self.die_after is not None and number > self.die_after

    def revive(self) -> None:
        """The dead server answers again (``die_after`` cleared)."""
        self.die_after = None

    def _count_refused(self) -> None:
        with self._lock:
            self.refused += 1

    def _count(self, path: str, authorization: str | None) -> int:
        """Count one request; return its chat request number (from 1) or 0 for other paths."""
        had_key = bool(authorization and authorization.removeprefix("Bearer").strip())
        with self._lock:
            self.requests_served += 1
            self.requests_by_path[path] += 1
            if had_key:
                self.requests_with_key += 1
            else:
                self.requests_without_key += 1
            if path == "/v1/chat/completions":
                self.chat_requests += 1
                return self.chat_requests
            return 0

    def _record(self, body: dict) -> None:
        self.received.append(body)  # deque.append is atomic

    def _fault_for(self, number: int, body: Mapping[str, Any] | None = None) -> str | None:
        plan = self.faults
        if plan.by_prompt and body is not None:
            text = _prompt_text(body)
            for needle, kind in plan.by_prompt.items():
                if needle in text:
                    return kind
            with self._lock:
                self._unmatched_requests += 1
                number = self._unmatched_requests
        kind = plan.schedule.get(number)
        if kind is not None:
            return kind
        if plan.rate > 0:
            with self._lock:
                if self._rng.random() < plan.rate:
                    return self._rng.choice(plan.kinds)
        return None

    def _count_fault(self, kind: str) -> None:
        with self._lock:
            self.faults_injected[kind] += 1

    def __repr__(self) -> str:
        where = self.base_url if self._httpd is not None else "stopped"
        return f"FakeOpenAIServer({where}, latency_s={self.latency_s}, fault_rate={self.faults.rate})"


def main(argv: list[str] | None = None) -> None:
    """Command line: serve until interrupted, printing the base URL."""
    p = argparse.ArgumentParser(prog="python -m gpo_testkit.fake_openai_server",
                                description="Loopback OpenAI-compatible chat server for tests and benchmarks.")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: pick a free one)")
    p.add_argument("--latency-ms", type=float, default=0.0, help="fixed latency per chat request, ms")
    p.add_argument("--fault-rate", type=float, default=0.0, help="probability of a fault per chat request")
    p.add_argument("--fault-kinds", default=",".join(TRANSIENT_FAULTS),
                   help=f"comma-separated kinds among: {', '.join(FAULT_KINDS)}")
    p.add_argument("--retry-after-s", type=float, default=0.2)
    p.add_argument("--hang-s", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    plan = FaultPlan(rate=a.fault_rate, kinds=tuple(k for k in a.fault_kinds.split(",") if k),
                     retry_after_s=a.retry_after_s, hang_s=a.hang_s)
    server = FakeOpenAIServer(latency_s=a.latency_ms / 1000.0, faults=plan, seed=a.seed, port=a.port)
    with server:
        print(f"fake OpenAI server on {server.base_url} (latency {a.latency_ms:g} ms, fault rate {a.fault_rate:g})",
              flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            print(f"served {server.requests_served} requests; faults {dict(server.faults_injected)}", flush=True)


if __name__ == "__main__":
    main()
