"""Wiring for headless runs: build models from settings, create or resume a session, run it.

Used by the CLI (``python -m gpo_core run``) and by the benchmarks, so both exercise the
same code path a user runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from gpo_core.errors import ConfigError
from gpo_core.models.cache import CACHE_FILE_NAME, default_cache_dir
from gpo_core.models.provider import ModelProvider
from gpo_core.optimizer.session import GPOSession
from gpo_core.runs.records import StepRecord
from gpo_core.runs.repository import RUN_FILE, load_run
from gpo_core.settings import RunSettings, default_run_settings
from gpo_core.tasks.io import load_task


@dataclass
class RunRequest:
    """Everything ``python -m gpo_core run`` is asked to do (see ``--help``).

    settings: the run's settings as the flags gave them (validated on the "cli" surface).
    api_key: from the environment only, never stored. cache_dir: response cache folder.
    """

    task_path: Path
    out_dir: Path
    settings: RunSettings = field(default_factory=default_run_settings)
    resume: bool = False
    api_key: str | None = None
    cache_dir: Path | None = None
    use_cache: bool = True
    instruction: str | None = None
    position: str | None = None
    answer_type: str | None = None
    input_column: str | None = None
    target_column: str | None = None


def provider_for(cache_dir: Path | None, use_cache: bool = True) -> ModelProvider:
    """The model provider of headless runs (CLI, benchmarks): a dict memo and the response
    cache in ``cache_dir`` (default: ``$GPO_HOME/cache``)."""
    path = (Path(cache_dir) if cache_dir else default_cache_dir()) / CACHE_FILE_NAME
    return ModelProvider(cache_path=path, use_cache=use_cache)


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
    req.settings.validate("cli")
    out = Path(req.out_dir)
    task = None
    if not (req.resume and (out / RUN_FILE).exists()):
        if (out / RUN_FILE).exists():
            raise ConfigError("out", f"{out} already holds a run; pass --resume to continue it or choose another --out")
        task = load_task(req.task_path, input_column=req.input_column, target_column=req.target_column,
                         answer_type=req.answer_type, instruction_position=req.position,
                         initial_instruction=req.instruction)
    provider = provider_for(req.cache_dir, req.use_cache)
    if task is None:
        saved = load_run(out).settings
        models = provider.models(saved, req.api_key, need_embedder=saved.optimizer.selection == "relevance")
        session = GPOSession.open(out, models, take_over=True)
        printer(f"resuming run {session.state.run_id}: {len(session.state.decided_steps)} of {session.config.steps} steps done")
    else:
        models = provider.models(req.settings, req.api_key,
                                 need_embedder=req.settings.optimizer.selection == "relevance")
        session = GPOSession.create(task, req.settings, models, run_dir=out)
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
