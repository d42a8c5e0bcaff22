"""Wiring for headless runs: build models from settings, create or resume a session, run it.

Used by the CLI (``python -m gpo_core run``) and by the benchmarks, so both exercise the
same code path a user runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gpo_core.errors import ConfigError
from gpo_core.models.cache import CACHE_FILE_NAME, default_cache_dir
from gpo_core.models.provider import ModelProvider
from gpo_core.optimizer.session import GPOSession
from gpo_core.runs.records import RunState, StepRecord
from gpo_core.runs.repository import RUN_FILE, load_run
from gpo_core.settings import RunSettings, default_run_settings
from gpo_core.tasks.io import load_task

#: How a resumed run's saved settings change: ``(saved state) -> (settings, notes)``; each
#: note is printed (e.g. "--steps: 2 -> 4"). Raises ConfigError to refuse the resume.
ResumeSettings = Callable[[RunState], "tuple[RunSettings, list[str]]"]


@dataclass
class RunRequest:
    """Everything ``gpo-studio run`` is asked to do (see ``--help``).

    task_path: the task file or folder of a new run (a resumed run uses its saved examples).
    settings: a new run's settings (validated on the "cli" surface; None: the defaults).
    resume: continue the run saved in ``out_dir`` if there is one. resume_settings: how
    its saved settings change (None: they apply unchanged). api_key: from the environment
    only, never stored. cache_dir: response cache folder.
    """

    task_path: Path | None
    out_dir: Path
    settings: RunSettings | None = None
    resume: bool = False
    resume_settings: ResumeSettings | None = None
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
    scored = [c for c in step.candidates if c.dev_accuracy is not None]
    best = max(scored, key=lambda c: c.dev_accuracy or 0.0, default=None)
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


def describe_models(settings: RunSettings) -> str:
    """One line naming the models a run uses now, e.g. "models: task gpt-4o-mini (OpenAI),
    temperature 0, 256 tokens; optimizer ..."."""
    def one(role: str) -> str:
        m = settings.model(role)
        return f"{role} {m.describe()}, temperature {m.temperature:g}, {m.max_tokens} tokens"

    return "models: " + "; ".join(one(role) for role in ("task", "optimizer"))


def _open_saved(req: RunRequest, provider: ModelProvider, printer: Callable[[str], None]) -> GPOSession:
    """Reopen the run in ``req.out_dir`` on its saved settings, changed as
    ``req.resume_settings`` says (refusals raise before anything is touched)."""
    out = Path(req.out_dir)
    state = load_run(out)
    settings, notes = req.resume_settings(state) if req.resume_settings else (state.settings, [])
    models = provider.models(settings, req.api_key, need_embedder=settings.optimizer.selection == "relevance")
    session = GPOSession.open(out, models, take_over=True)
    printer(f"resuming run {session.state.run_id}: {len(session.state.decided_steps)} of "
            f"{state.settings.optimizer.steps} steps done")
    for note in notes:
        printer(note)
    if settings != session.state.settings:
        session.use_models(models, settings)  # saved at once: run.json records the new settings
    return session


def run_cli(req: RunRequest, printer: Callable[[str], None] = print) -> str:
    """Create (or with ``resume`` reopen) the run in ``req.out_dir`` and run it to the
    configured number of steps with the paper's automatic decision. Writes run.json after
    every step and final_prompt.txt at the end. Returns a one-line summary.
    Raises TaskFormatError / ConfigError / ModelError (GPOError) with a one-line message."""
    out = Path(req.out_dir)
    saved = (out / RUN_FILE).exists()
    if saved and not req.resume:
        raise ConfigError("out", f"{out} already holds a run; pass --resume to continue it or choose another --out")
    provider = provider_for(req.cache_dir, req.use_cache)
    if saved:
        session = _open_saved(req, provider, printer)
    else:
        if req.resume:
            printer(f"no saved run in {out}: starting a new one")
        settings = (req.settings or default_run_settings()).validate("cli")
        if req.task_path is None:
            raise ConfigError("task", "a new run needs a task file or folder")
        task = load_task(Path(req.task_path).absolute(), input_column=req.input_column,
                         target_column=req.target_column, answer_type=req.answer_type,
                         instruction_position=req.position, initial_instruction=req.instruction)
        models = provider.models(settings, req.api_key, need_embedder=settings.optimizer.selection == "relevance")
        session = GPOSession.create(task, settings, models, run_dir=out)
        printer(f"task {task.name}: {len(session.splits.train)} train / {len(session.splits.dev)} dev / "
                f"{len(session.splits.test)} test; answer type {task.answer_type}; "
                f"position {task.instruction_position}")
    printer(describe_models(session.settings))
    t0 = time.perf_counter()
    if not session.started:
        init = session.start()
        test = f", test {init['test_accuracy']:.3f}" if init["test_accuracy"] is not None else ""
        printer(f"step 0: starting prompt {init['prompt']!r}: dev {init['dev_accuracy']:.3f}{test}")
    session.run_auto(on_step=lambda st: printer(_describe(st)))
    best = session.best_prompt()
    out.mkdir(parents=True, exist_ok=True)
    (out / "final_prompt.txt").write_text(best.prompt + "\n", encoding="utf-8")
    return (f"done: {len(session.state.decided_steps)} of {session.config.steps} steps in "
            f"{time.perf_counter() - t0:.1f}s; final prompt (dev {best.dev_accuracy:.3f}) written to "
            f"{out / 'final_prompt.txt'}")
