"""A run's state transitions: pure functions on :class:`~gpo_core.runs.records.RunState`,
no model call, no I/O.

The session (:mod:`gpo_core.optimizer.session`) scores and saves; these functions move the
run: a new run's state, the scored starting prompt as step 0, a step's fully scored
candidates joining the trajectory, a chosen candidate becoming the current prompt, "reject
all" marking every candidate rejected, and undo removing a whole step (every attempt of
it). Which candidate to choose is for :mod:`gpo_core.optimizer.policies`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from gpo_core.errors import ConfigError, IncompleteStepError
from gpo_core.optimizer.direction import TrajectoryEntry
from gpo_core.optimizer.edits import word_edit_distance
from gpo_core.optimizer.extraction import clean_candidate
from gpo_core.optimizer.leaks import LeakChecker
from gpo_core.runs.records import CandidateRecord, Decision, RunState, RunTask, StepRecord
from gpo_core.scoring.evaluation import EvalResult, failed_calls_note
from gpo_core.settings import RunSettings
from gpo_core.tasks.task import Example, Task, TaskSplits

__all__ = ["add_step_entries", "choose", "find_candidate", "new_run_state", "no_choice", "now", "pending",
           "reject_all", "require_answered", "require_choosable", "start_run", "to_accept", "undo_step"]


def now() -> str:
    """The current UTC time, ISO 8601 to the second (the records' timestamps)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _ex_dicts(examples: list[Example]) -> list[dict]:
    return [{"input": e.input, "target": e.target} for e in examples]


def new_run_state(task: Task, settings: RunSettings, splits: TaskSplits, run_id: str | None = None) -> RunState:
    """The state of a new, unscored run of ``task`` on ``splits``; ``run_id`` defaults to
    the local time plus a random suffix ("20260101-120000-a1b2c3")."""
    return RunState(
        run_id=run_id or datetime.now().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6], created_at=now(),
        task=RunTask(task.name, task.answer_type, task.instruction_position, task.description, task.source,
                     task.initial_instruction),
        splits={"train": _ex_dicts(splits.train), "dev": _ex_dicts(splits.dev), "test": _ex_dicts(splits.test),
                "exemplars": _ex_dicts(splits.exemplars or splits.train)},
        settings=settings, current_prompt=task.initial_instruction)


def start_run(state: RunState, dev: EvalResult, test: EvalResult | None) -> dict:
    """Record the starting prompt's scores as step 0: ``state.initial`` = {"prompt",
    "dev_accuracy", "test_accuracy", "dev_errors", "test_errors", "usage", "dev_n", "test_n"} (accuracy over
    the answered examples; a test with no call answered is None, "not measured", never 0)
    and the trajectory's entry 0, chosen. The calls' warnings (and a line on failed test
    calls) go to ``state.initial["warnings"]``. Returns ``state.initial``."""
    usage = dev.usage.merge(test.usage) if test else dev.usage
    state.initial = {"prompt": dev.instruction, "dev_accuracy": dev.accuracy,
                     "test_accuracy": test.measured_accuracy if test else None, "dev_errors": dev.n_errors,
                     "test_errors": test.n_errors if test else 0, "usage": usage.__dict__.copy(),
                     "dev_n": dev.n, "test_n": test.n if test else 0,
                     "warnings": _score_warnings(dev, test)}
    state.trajectory = [TrajectoryEntry(0, dev.instruction, dev.accuracy, 0, None, True, "initial")]
    state.current_entry_id = 0
    return state.initial


def _score_warnings(dev: EvalResult, test: EvalResult | None) -> list[str]:
    out = list(dev.warnings) + (list(test.warnings) if test else [])
    if test is not None and test.n_errors:
        out.append(failed_calls_note("test", test))
    return list(dict.fromkeys(out))


def require_answered(step: StepRecord) -> None:
    """IncompleteStepError when ``step`` has dev calls still unanswered
    (:attr:`StepRecord.unanswered`): no policy may decide it until they are answered (the
    session completes it on resume) or the user rejects the incomplete candidates."""
    n = step.unanswered
    if not n:
        return
    todo = [c for c in step.candidates if c.status in ("incomplete", "failed") and not c.rejected]
    names = ", ".join(c.id for c in todo[:4]) + (f" and {len(todo) - 4} more" if len(todo) > 4 else "")
    raise IncompleteStepError(f"step {step.step} is not decided: {n} dev call(s) of {names} were not answered even "
                              "after a retry; the step is saved and its failed calls are sent again when the run "
                              "resumes (or reject those candidates, or choose a fully scored one by hand)")


def pending(state: RunState) -> StepRecord:
    """The step awaiting a decision; ConfigError when there is none."""
    step = state.pending_step
    if step is None:
        raise ConfigError("step", "there is no pending step to decide; run the next step first")
    return step


def find_candidate(step: StepRecord, candidate_id: str) -> CandidateRecord:
    """The candidate ``candidate_id`` of ``step``; ConfigError naming it when absent."""
    try:
        return step.candidate(candidate_id)
    except KeyError:
        raise ConfigError("candidate", f"no candidate {candidate_id!r} in step {step.step}") from None


def to_accept(state: RunState, step: StepRecord, candidate_id: str | None,
              text: str | None) -> tuple[CandidateRecord, bool]:
    """The candidate the user accepts: ``candidate_id`` of ``step``, or, when ``text``
    (cleaned as a reply would be) differs from its text, a new "edited" candidate (id
    "s<t>e<serial>", not yet added to the step, checked for leaks like any candidate but never
    dropped: the user chose it). Returns (candidate, edited). ConfigError
    for an unknown id, an empty text, or neither an id nor a text."""
    cand = find_candidate(step, candidate_id) if candidate_id is not None else None
    if text is not None:
        text = clean_candidate(text) if text.strip() else ""
        if not text:
            raise ConfigError("candidate", "the edited instruction is empty")
        if cand is None or text != cand.text:
            dist = word_edit_distance(step.current_prompt, text)
            flags, notes = LeakChecker.for_run(state.splits, state.task.initial_instruction).check(text)
            return CandidateRecord(id=f"s{step.step}e{state.new_serial()}", text=text, origin="edited",
                                   extraction="hand", edit_distance=dist, within_budget=dist <= step.budget,
                                   flags=flags, flag_notes=notes), True
    if cand is None:
        raise ConfigError("candidate", "name a candidate or give the instruction text")
    return cand, False


def add_step_entries(state: RunState, step: StepRecord) -> None:
    """Add the step's fully scored candidates (status "scored") to the trajectory, once
    each; their entry ids go to ``step.added_entry_ids``."""
    traj = state.trajectory
    added = {traj[i].candidate_id for i in step.added_entry_ids}
    for cd in step.candidates:
        if cd.status == "scored" and cd.dev_accuracy is not None and cd.id not in added:
            traj.append(TrajectoryEntry(len(traj), cd.text, cd.dev_accuracy, step.step, step.current_entry_id,
                                        False, cd.id))
            step.added_entry_ids.append(traj[-1].id)


def require_choosable(cand: CandidateRecord) -> None:
    """ConfigError when ``cand`` must not become the prompt even by hand: some of its dev
    calls failed after the retry pass, so its score covers only part of dev."""
    if cand.status in ("incomplete", "failed") or cand.dev_errors:
        raise ConfigError("candidate", f"{cand.id} cannot be chosen: {cand.dev_errors} of {cand.dev_n} dev calls "
                                       "failed even after a retry, so its score is incomplete; reject it or "
                                       "resample the step once the task model answers again")


def choose(state: RunState, step: StepRecord, cand: CandidateRecord, decision: Decision) -> TrajectoryEntry:
    """Decide ``step`` with ``cand``: the step's candidates join the trajectory, the
    candidate's entry (a new one for a duplicate) is marked chosen and becomes the current
    prompt. The candidate's test score, if any, must be set already. Returns its entry."""
    add_step_entries(state, step)
    traj = state.trajectory
    entry = next((traj[i] for i in step.added_entry_ids if traj[i].candidate_id == cand.id), None)
    if entry is None:  # a duplicate candidate: add it as its own entry
        traj.append(TrajectoryEntry(len(traj), cand.text, cand.dev_accuracy or 0.0, step.step,
                                    step.current_entry_id, False, cand.id))
        step.added_entry_ids.append(traj[-1].id)
        entry = traj[-1]
    entry.chosen = True
    cand.rejected = False  # the user's (or policy's) choice overrides an earlier rejection
    step.decision, step.chosen_entry_id, step.chosen_test_accuracy = decision, entry.id, cand.test_accuracy
    state.current_prompt, state.current_entry_id = cand.text, entry.id
    return entry


def no_choice(state: RunState, step: StepRecord, decision: Decision) -> None:
    """Decide ``step`` without changing the prompt ("no_candidate" or "reject_all"); its
    fully scored candidates still join the trajectory."""
    add_step_entries(state, step)
    step.decision = decision


def reject_all(state: RunState, step: StepRecord, decision: Decision) -> None:
    """Mark every candidate of ``step`` rejected by the user and close it with ``decision``
    ("reject_all"); the same step number is sampled again next."""
    for cd in step.candidates:
        cd.rejected = True
    no_choice(state, step, decision)


def undo_step(state: RunState) -> tuple[StepRecord, set[str]]:
    """Remove the last step, i.e. every trailing attempt with its step number (pending,
    rejected or decided), with the trajectory entries they added, and restore the prompt
    from before the step. Returns (its first attempt, the ids of every removed candidate).
    ConfigError when the run has no step."""
    if not state.steps:
        raise ConfigError("undo", "there is no step to undo")
    t = state.steps[-1].step
    removed: list[StepRecord] = []
    while state.steps and state.steps[-1].step == t:
        removed.insert(0, state.steps.pop())
    entry_ids = {i for s in removed for i in s.added_entry_ids}
    state.trajectory = [e for e in state.trajectory if e.id not in entry_ids]
    first = removed[0]
    state.current_prompt, state.current_entry_id = first.current_prompt, first.current_entry_id
    return first, {c.id for s in removed for c in s.candidates}
