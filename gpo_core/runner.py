"""Wiring for headless runs: build models from settings, create or resume a session, run it.

Used by the CLI (``python -m gpo_core run``) and by the benchmarks, so both exercise the
same code path a user runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .config import RunConfig
from .embeddings import CachedEmbedder, SentenceTransformerEmbedder
from .errors import ConfigError
from .models.cache import ResponseCache, default_cache_dir
from .models.factory import LOCAL_DEFAULT_MODEL, ModelSpec, build_chat_model
from .optimizer import GPOSession, Models
from .records import StepRecord
from .store import RUN_FILE, load_run
from .task_io import load_task


@dataclass
class RunRequest:
    """Everything ``python -m gpo_core run`` is asked to do (see ``--help``)."""

    task_path: Path
    out_dir: Path
    config: RunConfig = field(default_factory=RunConfig)
    resume: bool = False
    backend: str = "local"
    task_model: str | None = None
    optimizer_model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    concurrency: int = 8
    timeout_s: float = 60.0
    cache_dir: Path | None = None
    use_cache: bool = True
    instruction: str | None = None
    position: str | None = None
    answer_type: str | None = None
    input_column: str | None = None
    target_column: str | None = None


def model_specs(backend: str, task_model: str | None, optimizer_model: str | None, *, base_url: str | None,
                concurrency: int, timeout_s: float, config: RunConfig) -> tuple[ModelSpec, ModelSpec]:
    """Task-model and optimizer-model specs for a backend ("local" or "openai"); validated."""
    if backend == "local":
        t = ModelSpec(backend="local", model=task_model or LOCAL_DEFAULT_MODEL, temperature=config.task_temperature,
                      max_tokens=config.task_max_tokens, concurrency=1, timeout_s=timeout_s)
        o = ModelSpec(backend="local", model=optimizer_model or LOCAL_DEFAULT_MODEL, temperature=config.optimizer_temperature,
                      max_tokens=config.optimizer_max_tokens, concurrency=1, timeout_s=timeout_s)
    elif backend == "openai":
        if not (task_model and optimizer_model):
            raise ConfigError("model", "the openai backend needs --model (or --task-model and --optimizer-model)")
        kind = "compatible" if base_url else "openai"
        t = ModelSpec(backend=kind, model=task_model, base_url=base_url, temperature=config.task_temperature,
                      max_tokens=config.task_max_tokens, concurrency=concurrency, timeout_s=timeout_s)
        o = ModelSpec(backend=kind, model=optimizer_model, base_url=base_url, temperature=config.optimizer_temperature,
                      max_tokens=config.optimizer_max_tokens, concurrency=concurrency, timeout_s=timeout_s)
    else:
        raise ConfigError("backend", f"unknown backend {backend!r}; choose local or openai")
    t.validate()
    o.validate()
    return t, o


def build_models(task_spec: ModelSpec, optimizer_spec: ModelSpec, *, api_key: str | None = None,
                 cache: ResponseCache | None = None, need_embedder: bool = True) -> Models:
    """Chat models (sharing one embedded model when both are local) and the default
    embedder (all-MiniLM-L6-v2, loaded lazily on first use)."""
    task = build_chat_model(task_spec, api_key=api_key, cache=cache)
    same = task_spec.backend == optimizer_spec.backend == "local" and task_spec.model == optimizer_spec.model
    optimizer = task if same else build_chat_model(optimizer_spec, api_key=api_key, cache=cache)
    embedder = CachedEmbedder(SentenceTransformerEmbedder()) if need_embedder else None
    return Models(task, optimizer, embedder, task_spec.to_dict(), optimizer_spec.to_dict())


def _describe(step: StepRecord) -> str:
    best = max((c for c in step.candidates if c.dev_accuracy is not None), key=lambda c: c.dev_accuracy, default=None)
    chosen = next((c for c in step.candidates if step.decision and c.id == step.decision.candidate_id), None)
    u = step.usage
    parts = [f"step {step.step}: budget {step.budget} words", f"{len(step.candidates)} candidates"]
    if best is not None:
        parts.append(f"best dev {best.dev_accuracy:.3f} ({best.edit_distance} words edited)")
    if chosen is not None:
        parts.append(f"chosen dev {chosen.dev_accuracy:.3f}" + (f", test {step.chosen_test_accuracy:.3f}"
                                                                 if step.chosen_test_accuracy is not None else ""))
    else:
        parts.append(step.decision.note if step.decision else "pending")
    parts.append(f"{u.total_tokens} tokens, {u.calls} calls ({u.cached_calls} cached, {u.retries} retries)")
    parts.append(f"{step.seconds:.1f}s")
    return "; ".join(parts)


def run_cli(req: RunRequest, printer: Callable[[str], None] = print) -> str:
    """Create (or with ``resume`` reopen) the run in ``req.out_dir`` and run it to the
    configured number of steps with the paper's automatic decision. Writes run.json after
    every step and final_prompt.txt at the end. Returns a one-line summary.
    Raises TaskFormatError / ConfigError / ModelError (GPOError) with a one-line message."""
    req.config.validate()
    if req.concurrency < 1:
        raise ConfigError("concurrency", f"must be at least 1 (got {req.concurrency})")
    out = Path(req.out_dir)
    task = None
    if not (req.resume and (out / RUN_FILE).exists()):
        if (out / RUN_FILE).exists():
            raise ConfigError("out", f"{out} already holds a run; pass --resume to continue it or choose another --out")
        task = load_task(req.task_path, input_column=req.input_column, target_column=req.target_column,
                         answer_type=req.answer_type, instruction_position=req.position,
                         initial_instruction=req.instruction)
    cache = None
    if req.use_cache:
        cache_dir = Path(req.cache_dir) if req.cache_dir else default_cache_dir()
        cache = ResponseCache(cache_dir / "responses.sqlite")
    task_spec, opt_spec = model_specs(req.backend, req.task_model, req.optimizer_model, base_url=req.base_url,
                                      concurrency=req.concurrency, timeout_s=req.timeout_s, config=req.config)
    if task is None:
        saved = RunConfig.from_dict(load_run(out).config)
        models = build_models(task_spec, opt_spec, api_key=req.api_key, cache=cache,
                              need_embedder=saved.selection == "relevance")
        session = GPOSession.open(out, models, concurrency=req.concurrency, take_over=True)
        printer(f"resuming run {session.state.run_id}: {len(session.state.decided_steps)} of {session.config.steps} steps done")
    else:
        models = build_models(task_spec, opt_spec, api_key=req.api_key, cache=cache,
                              need_embedder=req.config.selection == "relevance")
        session = GPOSession.create(task, req.config, models, run_dir=out, concurrency=req.concurrency)
        printer(f"task {task.name}: {len(session.splits.train)} train / {len(session.splits.dev)} dev / "
                f"{len(session.splits.test)} test; answer type {task.answer_type}; position {task.instruction_position}")
    t0 = time.perf_counter()
    if not session.started:
        init = session.start()
        test = f", test {init['test_accuracy']:.3f}" if init["test_accuracy"] is not None else ""
        printer(f"step 0: starting prompt {init['prompt']!r}: dev {init['dev_accuracy']:.3f}{test}")
    session.run_auto(on_step=lambda st: printer(_describe(st)))
    best = session.best_prompt()
    out.mkdir(parents=True, exist_ok=True)
    (out / "final_prompt.txt").write_text(best.prompt + "\n", encoding="utf-8")
    return (f"done: {len(session.state.decided_steps)} steps in {time.perf_counter() - t0:.1f}s; final prompt "
            f"(dev {best.dev_accuracy:.3f}) written to {out / 'final_prompt.txt'}")
