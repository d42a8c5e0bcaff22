"""Wiring for headless runs: build models from settings, create or resume a session, run it.

Used by the CLI (``python -m gpo_core run``) and by the benchmarks, so both exercise the
same code path a user runs.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpo_core.costs.estimate import estimate_run, recent_runs
from gpo_core.costs.prices import load_prices
from gpo_core.costs.spend import SpendCapReached
from gpo_core.errors import ConfigError
from gpo_core.metrics import metric_label, with_task_metric
from gpo_core.models.cache import CACHE_FILE_NAME, default_cache_dir
from gpo_core.models.provider import ModelProvider
from gpo_core.optimizer.overfit import is_test_hidden
from gpo_core.optimizer.session import GPOSession
from gpo_core.runs.export_files import write_exports
from gpo_core.runs.records import RunState, StepRecord
from gpo_core.runs.repository import RUN_FILE, RunInUseError, age_text, describe_owner, lease_holder, load_run
from gpo_core.runs.storage import atomic_write_text, preflight
from gpo_core.settings import RunSettings, default_run_settings
from gpo_core.tasks.io import load_task
from gpo_core.tasks.task import Task

#: How a resumed run's saved settings change: ``(saved state) -> (settings, notes)``; each
#: note is printed (e.g. "--steps: 2 -> 4"). Raises ConfigError to refuse the resume.
ResumeSettings = Callable[[RunState], "tuple[RunSettings, list[str]]"]


@dataclass
class RunRequest:
    """Everything ``gpo-studio run`` is asked to do (see ``--help``).

    task_path: the task file or folder of a new run (a resumed run uses its saved examples).
    settings: a new run's settings (validated on the "cli" surface; None: the defaults).
    resume: continue the run saved in ``out_dir`` if there is one. resume_settings: how
    its saved settings change (None: they apply unchanged). take_over: resume even when
    another live session (an app tab, another command) holds the run's lease; without it
    such a resume is refused, naming the holder. api_key: from the environment only, never
    stored. cache_dir: response cache folder. prices_path: a price table over the default
    (``--prices``). estimate_only: print the cost estimate and run nothing. start_from: a
    warm start (:class:`gpo_core.runs.warm_start.WarmStart`; its prompt is ``instruction``).
    """

    task_path: Path | None
    out_dir: Path
    settings: RunSettings | None = None
    resume: bool = False
    resume_settings: ResumeSettings | None = None
    take_over: bool = False
    api_key: str | None = None
    cache_dir: Path | None = None
    use_cache: bool = True
    instruction: str | None = None
    position: str | None = None
    answer_type: str | None = None
    input_column: str | None = None
    target_column: str | None = None
    prices_path: Path | None = None
    estimate_only: bool = False
    start_from: Any = None


def cli_owner() -> str:
    """The lease token of one command-line run ("cli-<pid>-<random>"; not a secret): the app
    then says a command-line run holds the run."""
    return f"cli-{os.getpid()}-{uuid.uuid4().hex[:12]}"


#: What to do about an unwritable response cache folder, on the command line.
CACHE_FIX = "Make it writable, choose another --cache-dir, or run with --no-cache."


def check_storage(req: RunRequest, need_bytes: int = 0) -> None:
    """Before any model call: the output folder and (unless --no-cache) the response cache
    folder can be written and have room (StorageError naming the folder otherwise)."""
    preflight(Path(req.out_dir), need_bytes, what="the run", fix="Make it writable, or choose another --out.")
    if req.use_cache:
        preflight(Path(req.cache_dir) if req.cache_dir else default_cache_dir(), what="the response cache",
                  fix=CACHE_FIX)


def _task_bytes(task: Task) -> int:
    """About how many bytes the task's examples take (characters of inputs and targets)."""
    groups = [task.examples, task.format_examples, *task.explicit_splits.values()]
    return sum(len(e.input) + len(e.target) for g in groups for e in g)


def provider_for(cache_dir: Path | None, use_cache: bool = True) -> ModelProvider:
    """The model provider of headless runs (CLI, benchmarks): a dict memo and the response
    cache in ``cache_dir`` (default: ``$GPO_HOME/cache``)."""
    path = (Path(cache_dir) if cache_dir else default_cache_dir()) / CACHE_FILE_NAME
    return ModelProvider(cache_path=path, use_cache=use_cache)


def _describe(step: StepRecord, hide_test: bool = False) -> str:
    scored = [c for c in step.candidates if c.dev_accuracy is not None and c.raced_out_after is None]
    best = max(scored, key=lambda c: c.dev_accuracy or 0.0, default=None)
    chosen = next((c for c in step.candidates if step.decision and c.id == step.decision.candidate_id), None)
    u = step.usage
    parts = [f"step {step.step}: budget {step.budget} words", f"{len(step.candidates)} candidates"]
    if best is not None:
        parts.append(f"best dev {best.dev_accuracy:.3f} ({best.edit_distance} words edited)")
    if chosen is not None:
        test = ("" if step.chosen_test_accuracy is None else ", test hidden (blind test)" if hide_test
                else f", test {step.chosen_test_accuracy:.3f}")
        parts.append(f"chosen dev {chosen.dev_accuracy:.3f}{test}")
        if chosen.flags:
            parts.append("flagged: " + ", ".join(chosen.flags))
    else:
        parts.append(step.decision.note if step.decision else "pending")
    dropped = sum(1 for c in step.candidates if c.status == "flagged")
    if dropped:
        parts.append(f"{dropped} dropped as flagged (copies data / names a label)")
    raced = sum(1 for c in step.candidates if c.raced_out_after is not None)
    if step.calls_saved:
        parts.append(f"racing saved {step.calls_saved} calls ({raced} raced out)")
    parts.append(f"{u.total_tokens} tokens, {u.calls} calls ({u.cached_calls} cached, {u.retries} retries)")
    parts.append(f"{step.seconds:.1f}s")
    # what the step did other than asked (dropped candidates, failed calls, cache faults), one line each
    return "; ".join(parts) + "".join(f"\n  warning: {w}" for w in step.warnings)


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
    owner = cli_owner()
    holder = lease_holder(out, owner)
    if holder is not None and not req.take_over:
        raise RunInUseError(f"{out} is open in another session: {describe_owner(holder[0])}, which last saved it "
                            f"{age_text(holder[1])} ago; pass --take-over to take it over (that session then stops "
                            "saving it)", *holder)
    check_storage(req)
    models = provider.models(settings, req.api_key, need_embedder=settings.optimizer.selection == "relevance")
    session = GPOSession.open(out, models, owner=owner, take_over=req.take_over)
    if holder is not None:
        printer(f"--take-over: took run {session.state.run_id} over from {describe_owner(holder[0])}, which last "
                f"saved it {age_text(holder[1])} ago; that session can no longer save it")
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
    if req.estimate_only:
        return estimate_cli(req, printer)
    return run_request(req, printer)[1]


def estimate_cli(req: RunRequest, printer: Callable[[str], None] = print) -> str:
    """Print the cost estimate of the run ``req`` asks for (a new run, or the rest of the
    saved one with ``resume``) and run nothing. Returns the one-line summary."""
    out = Path(req.out_dir)
    prices = load_prices(req.prices_path)
    if (out / RUN_FILE).exists():
        state = load_run(out)
        if req.resume_settings:
            state.settings = req.resume_settings(state)[0]
        est = estimate_run(state=state, prices=prices, history=_history(out, state.run_id))
    else:
        if req.task_path is None:
            raise ConfigError("task", "a new run needs a task file or folder")
        settings = (req.settings or default_run_settings()).validate("cli")
        task = load_task(Path(req.task_path).absolute(), input_column=req.input_column,
                         target_column=req.target_column, answer_type=req.answer_type,
                         instruction_position=req.position, initial_instruction=req.instruction)
        settings = with_task_metric(settings, task).validate("cli")
        est = estimate_run(settings, task, prices=prices, history=_history(out))
    for line in est.lines():
        printer(line)
    return f"estimate only: nothing was run ({est.calls:,} calls, {est.tokens:,} tokens estimated)"


def run_request(req: RunRequest, printer: Callable[[str], None] = print) -> tuple[GPOSession, str]:
    """:func:`run_cli`, returning the finished session too (``--seeds`` reads each seed's)."""
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
        settings = with_task_metric(settings, task).validate("cli")  # task.json's metric unless --metric
        check_storage(req, 2 * _task_bytes(task))
        models = provider.models(settings, req.api_key, need_embedder=settings.optimizer.selection == "relevance")
        session = GPOSession.create(task, settings, models, run_dir=out, owner=cli_owner())
        if req.start_from is not None:  # a warm start: recorded in the run and said aloud
            from gpo_core.runs.warm_start import warm_start_text

            session.state.task.start_from = req.start_from.record(settings.task_model, task.name)
            printer(warm_start_text(session.state.task.start_from))
        printer(f"task {task.name}: {len(session.splits.train)} train / {len(session.splits.dev)} dev / "
                f"{len(session.splits.test)} test; answer type {task.answer_type}; "
                f"position {task.instruction_position}; metric "
                f"{metric_label(session.settings.optimizer.metric, task.answer_type)}")
    printer(describe_models(session.settings))
    session.use_prices(load_prices(req.prices_path))
    for line in estimate_run(state=session.state, prices=session.prices,
                             history=_history(out, session.state.run_id)).lines():
        printer(line)
    t0 = time.perf_counter()
    try:
        try:
            if not session.started:
                init = session.start()
                test = ("" if init["test_accuracy"] is None else ", test hidden (blind test)"
                        if is_test_hidden(session.state) else f", test {init['test_accuracy']:.3f}")
                printer(f"step 0: starting prompt {init['prompt']!r}: dev {init['dev_accuracy']:.3f}{test}"
                        + "".join(f"\n  warning: {w}" for w in init.get("warnings") or []))
            session.run_auto(on_step=lambda st: printer(_describe(st, is_test_hidden(session.state))))
        except SpendCapReached as exc:  # stopped at a call boundary: every finished step is saved
            if session.started:
                printer(_finish(session, out, time.perf_counter() - t0))
            printer(f"spent: {session.spend().text()}")
            raise SpendCapReached(f"{exc}; {len(session.state.decided_steps)} of {session.config.steps} steps kept "
                                  f"in {out}; to continue, rerun with --resume and a higher --max-cost or "
                                  "--max-tokens") from None
        if session.stop_note:
            printer(session.stop_note)
        printer(f"spent: {session.spend().text()}" + _racing_total(session))
        return session, _finish(session, out, time.perf_counter() - t0)
    finally:
        session.repo.release()  # the command ends: the next session (app or --resume) needs no take-over


def _history(out: Path, run_id: str | None = None) -> list[RunState]:
    """Past runs an estimate measures from: the app's recent runs and the runs beside ``out``
    (other --out folders of the same parent), without the run ``run_id`` itself."""
    seen: set[str] = set() if run_id is None else {run_id}
    runs = []
    for st in recent_runs() + recent_runs(Path(out).absolute().parent):
        if st.run_id not in seen:
            seen.add(st.run_id)
            runs.append(st)
    return runs


def _racing_total(session: GPOSession) -> str:
    saved = sum(s.calls_saved for s in session.state.steps)
    return f"; racing saved {saved:,} task-model calls" if saved else ""


def _finish(session: GPOSession, out: Path, seconds: float) -> str:
    """Write final_prompt.txt (the bare prompt) and the exports (``exports/``:
    :func:`gpo_core.runs.export_files.write_exports`), and return the run's summary line: steps
    done (and why it stopped early), the final prompt against the start with intervals and
    paired counts. A blind test is revealed here, at the end of the run, and says so."""
    blind = is_test_hidden(session.state)
    if blind:
        session.reveal_test("cli")
    comparison = session.final_comparison()
    atomic_write_text(out / "final_prompt.txt", comparison.prompt + "\n", base=out)
    exports = write_exports(session, out)  # report (.md, .html), messages, openai snippet, promptfoo config
    stopped = " (stopped early)" if session.stop_note else ""
    revealed = " (blind test: test revealed at the end of the run)" if blind else ""
    return (f"done: {len(session.state.decided_steps)} of {session.config.steps} steps{stopped} in {seconds:.1f}s; "
            f"{comparison.summary()}{revealed}; final prompt written to {out / 'final_prompt.txt'}, exports "
            f"(report .md/.html, messages .json, openai snippet, promptfoo config) to {exports}")
