"""The GPO optimization loop, as a session a human (or the auto loop) drives.

One module because the session is one object with a method per user action; its work is delegated (issue 9).

The session orchestrates: :class:`~gpo_core.optimizer.proposer.Proposer` does a step's model
work (update direction, meta-prompt, N samples, extraction, dedupe, dev scores), the run's
decision policy (:mod:`gpo_core.optimizer.policies`) picks the next prompt for every
automatic path (``decide_auto``, ``accept_best``, ``run_auto``), and
:class:`~gpo_core.runs.repository.RunRepository` saves the run after every change. The user
may also ``accept`` a candidate or hand-edited text, ``reject`` candidates, ``reject_all``
(resample the same step) or ``undo`` the last step. The chosen prompt is scored on test for
the curves (Tang et al. 2024, Sec. 3 and Algorithm 1).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gpo_core.costs.prices import PriceTable, load_prices
from gpo_core.costs.spend import Spend, SpendCapReached, SpendMeter, cap_reason, check_cap_prices, spend_snapshot
from gpo_core.errors import ConfigError
from gpo_core.metrics import build_metric
from gpo_core.models.base import ChatModel, TokenUsage
from gpo_core.models.embeddings import Embedder
from gpo_core.optimizer import transitions
from gpo_core.optimizer.direction import TrajectoryEntry
from gpo_core.optimizer.overfit import reveal
from gpo_core.optimizer.policies import early_stop_reason, explain_keep, get_policy, ineligible_reason
from gpo_core.optimizer.proposer import Proposer, budget_for, configured_models, current_key, score_one
from gpo_core.optimizer.scorer import Progress, Scorer, resolved_protocol
from gpo_core.optimizer.transitions import now as _now
from gpo_core.runs.final import FinalComparison, compare_final_with_start, final_entry
from gpo_core.runs.records import CandidateRecord, Decision, RunState, StepRecord
from gpo_core.runs.repository import RunRepository
from gpo_core.scoring.evaluation import EvalResult, EvaluationCancelled
from gpo_core.settings import OptimizerSettings, RunSettings
from gpo_core.tasks.splits import default_split_sizes, split_task
from gpo_core.tasks.task import Example, Task, TaskSplits

__all__ = ["GPOSession", "Models", "Progress"]

StopFlag = Callable[[], bool]


def _ex_list(dicts: list[dict]) -> list[Example]:
    return [Example(d["input"], d["target"]) for d in dicts]


@dataclass
class Models:
    """The model seams of a session: task model (scorer), optimizer model, embedder, and the
    judge model of the ``llm_judge`` metric (None: the task model judges, at the judge
    settings' temperature). Their settings (names, temperatures, ...) live in the run's
    RunSettings, not here."""

    task: ChatModel
    optimizer: ChatModel
    embedder: Embedder | None
    judge: ChatModel | None = None


def _capped(method: Callable) -> Callable:
    """A session method whose model calls count against the run's spend cap: a stop the cap
    caused (``state.stop_reason`` set by :meth:`GPOSession._guard`) saves the run (its spend
    included) and raises :class:`~gpo_core.costs.spend.SpendCapReached` (an
    EvaluationCancelled) instead of a plain cancellation."""
    @functools.wraps(method)
    def wrapper(self: GPOSession, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except SpendCapReached:
            raise
        except EvaluationCancelled:
            if self.state.stop_reason is None:
                raise
            self._save()
            raise SpendCapReached(self.state.stop_reason) from None
    return wrapper


def plan_run(task: Task, settings: RunSettings, splits: TaskSplits | None = None) -> tuple[RunSettings, TaskSplits]:
    """The settings and splits a new run on ``task`` gets (what :meth:`GPOSession.create`
    and the cost estimate use): the splits drawn by seed (unless given), T from the data
    when ``epochs`` is set, the "auto" protocol resolved. ConfigError for bad settings or an
    empty dev split."""
    settings.validate()
    sp = settings.splits
    if splits is None:
        dev_size, test_size = default_split_sizes(task, sp.dev_size, sp.test_size)
        splits = split_task(task, dev_size=dev_size, test_size=test_size, train_size=sp.train_size, seed=sp.seed)
    # T from the data when the user picked epochs (reference: epochs x steps per epoch)
    opt = settings.optimizer.for_train_size(len(splits.train))
    # "auto" scoring protocol: the reference's for a task folder with its own splits
    opt = opt.replace(protocol=resolved_protocol(opt.protocol, bool(task.explicit_splits)))
    settings = settings.replace(optimizer=opt).validate()
    if not splits.dev:
        raise ConfigError("dev_size", "the dev split is empty")
    # the metric's settings against every target it will score: refused before any model call
    try:
        build_metric(opt.metric, opt.metric_options, task.answer_type).check([*splits.dev, *splits.test])
    except ConfigError as e:  # "metric_options.keys" -> the settings field, so the CLI / app name it
        head, _, key = e.setting.partition(".")
        if head == "metric_options" and key:
            raise ConfigError("metric_options", f"{key}: {e.reason}") from None
        raise
    return settings, splits


class GPOSession:
    """One run of GPO. Create with :meth:`create` (new) or :meth:`open` (resume a saved run).

    The session owns the :class:`RunState` (``self.state``) and saves it to ``run_dir``
    (when given) after every change. Not thread-safe: drive it from one thread.
    """

    def __init__(self, state: RunState, models: Models, run_dir: Path | None = None, owner: str | None = None):
        self.state = state
        self.owner = owner or f"session-{uuid.uuid4().hex}"
        self.models = models
        self.run_dir = Path(run_dir) if run_dir else None
        self.repo = RunRepository(self.run_dir, self.owner)
        s = state.splits
        self.splits = TaskSplits(_ex_list(s["train"]), _ex_list(s["dev"]), _ex_list(s["test"]),
                                 _ex_list(s.get("exemplars", s["train"])))
        self._meter = SpendMeter(state.spend)  # counts every call of this session into state.spend
        self._prices: PriceTable | None = None

    @classmethod
    def create(cls, task: Task, settings: RunSettings, models: Models, *, run_dir: Path | None = None,
               run_id: str | None = None, splits: TaskSplits | None = None,
               owner: str | None = None) -> GPOSession:
        """New run on ``task`` with ``settings``. Validates the settings and the split sizes
        before any model call (raises ConfigError naming the setting)."""
        settings, splits = plan_run(task, settings, splits)
        return cls(transitions.new_run_state(task, settings, splits, run_id), models, run_dir, owner)

    @classmethod
    def open(cls, run_dir: Path, models: Models, *, owner: str | None = None,
             take_over: bool = False) -> GPOSession:
        """Reopen a saved run to inspect or resume it. Takes the run's lease for ``owner``:
        raises RunInUseError when another live session holds it (unless ``take_over``),
        RunFileError if the run is unreadable."""
        reader = RunRepository(run_dir, "reader")
        state = reader.load()
        session = cls(state, models, run_dir, owner)
        session.repo.inherit(reader)  # what is on disk (for "Steps 1-3 are saved"), data.json's reference
        session.repo.claim(force=take_over)
        return session

    # Properties -------------------------------------------------------------------------
    @property
    def settings(self) -> RunSettings:
        """The run's settings (typed; the one place they live)."""
        return self.state.settings

    @property
    def config(self) -> OptimizerSettings:
        """The optimizer's settings (steps, candidates, k, schedule, policy...)."""
        return self.state.settings.optimizer

    @property
    def concurrency(self) -> int:
        """Calls in flight at once: the larger of the two models' concurrency settings."""
        return max(self.settings.task_model.concurrency, self.settings.optimizer_model.concurrency)

    @property
    def task_name(self) -> str:
        return self.state.task.name

    @property
    def started(self) -> bool:
        return self.state.initial is not None

    @property
    def next_step_number(self) -> int:
        """t of the next (or pending) step, 1-based."""
        return len(self.state.decided_steps) + 1

    @property
    def finished(self) -> bool:
        return len(self.state.decided_steps) >= self.config.steps and self.state.pending_step is None

    def budget_for(self, t: int) -> int:
        """Edit budget in words at step t from the configured schedule."""
        return budget_for(self.settings, t)

    def budgets(self) -> list[int]:
        """The whole schedule, steps 1..T (words)."""
        return [self.budget_for(t) for t in range(1, self.config.steps + 1)]

    # Scoring ----------------------------------------------------------------------------
    def _scorer(self) -> Scorer:
        settings = self.state.settings
        metric = None
        if settings.uses_judge:  # the judge's calls are metered as their own role
            judge = self._meter.wrap(self.models.judge or self.models.task, "judge")
            opt = settings.optimizer
            metric = build_metric(opt.metric, opt.metric_options, self.state.task.answer_type, judge_model=judge,
                                  judge_settings=settings.judge())
        return Scorer(self.state, self.splits, self._meter.wrap(self.models.task, "task"), self.concurrency,
                      metric=metric)

    # Spend ------------------------------------------------------------------------------
    @property
    def prices(self) -> PriceTable:
        """The price table in force (:func:`gpo_core.costs.prices.load_prices`: the dated
        default, then $GPO_HOME/prices.toml); :meth:`use_prices` sets another."""
        if self._prices is None:
            self._prices = load_prices()
        return self._prices

    def use_prices(self, prices: PriceTable) -> None:
        """Price this session's spend (and its dollar cap) with ``prices`` (e.g. ``--prices FILE``)."""
        self._prices = prices

    def spend(self) -> Spend:
        """What the run has spent so far, live while calls run (tokens per role, cache hits
        free, dollars at :attr:`prices`, the caps and why work stopped on one)."""
        return spend_snapshot(self.state.spend, self.settings, self.prices, self.state.stop_reason)

    def _guard(self, should_stop: StopFlag | None) -> StopFlag:
        """``should_stop`` plus the run's spend cap, checked before the work and after every
        call (the call boundary). Raises SpendCapReached at once when the cap is already
        reached, ConfigError (``max_cost``) when a dollar cap meets a model without a price."""
        check_cap_prices(self.settings, self.prices)
        reason = cap_reason(self.state.spend, self.settings, self.prices)
        if reason is not None:
            self.state.stop_reason = reason
            self._save()
            raise SpendCapReached(reason)
        self.state.stop_reason = None

        def stop() -> bool:
            if should_stop is not None and should_stop():
                return True
            hit = cap_reason(self.state.spend, self.settings, self.prices)
            if hit is not None:
                self.state.stop_reason = hit
                return True
            return False

        return stop

    def _keep_records(self, key: str, result: EvalResult) -> None:
        self.repo.save_records(key, result.split, [r.to_dict() for r in result.records])

    def records(self, key: str, split: str = "dev") -> list[dict]:
        """Per-example records of a scored prompt: key is a candidate id or "initial".
        Each dict: input, target, rendered_prompt, raw_output, parsed_answer, correct,
        prompt_tokens, completion_tokens, error, attempts, cached. [] when none are kept."""
        return self.repo.load_records(key, split)

    @_capped
    def start(self, on_progress: Progress | None = None, should_stop: StopFlag | None = None) -> dict:
        """Score the starting prompt on dev and test (step 0 of the trajectory), accuracy
        over the answered examples (failed calls in ``dev_errors`` / ``test_errors``).
        Idempotent, except that before step 1 is proposed the calls of the start that failed
        are sent again (a resumed run: the start is then scored on the whole split, as every
        later candidate is compared with it). EndpointDownError when every call failed."""
        if self.state.initial is not None:
            init = self.state.initial
            if self.state.steps or not (init.get("dev_errors") or init.get("test_errors")):
                return init
            return self._complete_start(on_progress, should_stop)
        should_stop = self._guard(should_stop)
        self.repo.before_model_calls(self.state)  # lease and disk first: no call spent on a run that cannot save
        prompt, scorer = self.state.current_prompt, self._scorer()
        dev = scorer.score([prompt], "dev", on_progress, should_stop)[0]
        test = scorer.score([prompt], "test", on_progress, should_stop)[0] if self.splits.test else None
        self._keep_records("initial", dev)
        if test:
            self._keep_records("initial", test)
        initial = transitions.start_run(self.state, dev, test)
        self._save()
        return initial

    def _complete_start(self, on_progress: Progress | None, should_stop: StopFlag | None) -> dict:
        """Send again only the starting prompt's failed calls (dev and test; answered ones
        kept from the records, :meth:`Scorer.complete`), rescore it over the split and add
        the new calls to its usage. EvaluationCancelled on should_stop (nothing changes)."""
        old = dict(self.state.initial or {})
        should_stop = self._guard(should_stop)
        self.repo.before_model_calls(self.state)
        prompt, scorer = old["prompt"], self._scorer()
        dev = scorer.complete(prompt, "dev", self.records("initial", "dev"), on_progress, should_stop)
        test = (scorer.complete(prompt, "test", self.records("initial", "test"), on_progress, should_stop)
                if self.splits.test else None)
        self._keep_records("initial", dev)
        if test is not None:
            self._keep_records("initial", test)
        before = TokenUsage(**{k: v for k, v in (old.get("usage") or {}).items()
                               if k in TokenUsage.__dataclass_fields__})
        initial = transitions.start_run(self.state, dev, test)
        initial["usage"] = before.merge(dev.usage.merge(test.usage) if test else dev.usage).__dict__.copy()
        self._save()
        return initial

    # A step -----------------------------------------------------------------------------
    @_capped
    def propose(self, on_progress: Progress | None = None, should_stop: StopFlag | None = None) -> StepRecord:
        """Run the model work of the next step and return it pending a decision.

        Returns the existing pending step if there is one, completed first when some of its
        dev calls were not answered (:meth:`complete_step`). Raises ConfigError when the run
        is finished or not started, EndpointDownError when every call failed (nothing is
        saved for the step; the run stays resumable), CallCeilingError past the step's call
        ceiling (nothing saved), EvaluationCancelled on should_stop.
        """
        if self.state.initial is None:
            raise ConfigError("run", "score the starting prompt first (start)")
        if self.state.pending_step is not None:
            if self.state.pending_step.unanswered:
                self.complete_step(on_progress, should_stop)
            return self.state.pending_step
        t = self.next_step_number
        if t > self.config.steps:
            raise ConfigError("steps", f"all {self.config.steps} steps are done")
        should_stop = self._guard(should_stop)
        self.repo.before_model_calls(self.state)  # lease and disk first: no call spent on a run that cannot save
        proposer = Proposer(self.state, self.splits, self._meter.wrap(self.models.optimizer, "optimizer"),
                            self.models.embedder, self._scorer(), self._keep_records, self.records)
        step = proposer.propose(t, on_progress, should_stop)
        self.state.steps.append(step)
        self.state.stopped_early = None  # the run goes on: an earlier early stop no longer holds
        self._save()
        return step

    # Decisions --------------------------------------------------------------------------
    def best_candidate(self, step: StepRecord | None = None) -> CandidateRecord | None:
        """The candidate the run's decision policy would choose in the (pending) step, or
        None when no candidate is eligible (see :func:`gpo_core.optimizer.policies.eligible`)."""
        step = step or self.state.pending_step
        return None if step is None else get_policy(self.config.policy).choose(step, self.state)

    @_capped
    def accept(self, candidate_id: str | None = None, text: str | None = None,
               on_progress: Progress | None = None, kind: str | None = None, *,
               should_stop: StopFlag | None = None) -> StepRecord:
        """Make a candidate (or hand-edited ``text``) the next prompt; the user's choice
        overrides an earlier rejection of that candidate.

        With ``text`` that differs from the candidate's, the text is scored on dev first and
        recorded as an "edited" candidate. The chosen prompt is then scored on test.
        Raises ConfigError with no pending step, an unknown id, empty text, or a candidate
        whose dev calls failed ("incomplete": its score covers only part of dev);
        EvaluationCancelled when ``should_stop()`` turns true while scoring (nothing decided).
        """
        step = transitions.pending(self.state)
        cand, edited = transitions.to_accept(self.state, step, candidate_id, text)
        should_stop = self._guard(should_stop)
        self.repo.before_model_calls(self.state)  # lease and disk first: no call spent on a run that cannot save
        if cand.dev_accuracy is None or cand.status in ("over_budget", "flagged", "raced_out"):
            score_one(self._scorer(), step, cand, "dev", self._keep_records, on_progress, should_stop,
                      base_records=self.records(current_key(self.state, step)))
        if edited:
            step.candidates.append(cand)
        try:
            transitions.require_choosable(cand)
        except ConfigError:
            self._save()  # keep the scored edit and its records
            raise
        if self.splits.test:
            score_one(self._scorer(), step, cand, "test", self._keep_records, on_progress, should_stop)
        kind = "accept_edited" if edited else kind or "accept"
        transitions.choose(self.state, step, cand, Decision(kind, cand.id, cand.text, _now()))
        self._save()
        return step

    @_capped
    def complete_step(self, on_progress: Progress | None = None, should_stop: StopFlag | None = None) -> StepRecord:
        """Send again the dev calls of the pending step that were not answered (only those:
        the answered ones are kept from the records) and save. Returns the step; its
        :attr:`~gpo_core.runs.records.StepRecord.unanswered` says what is still missing.
        ConfigError with no pending step; EvaluationCancelled on should_stop (nothing lost:
        the records of what was answered are kept as they come)."""
        step = transitions.pending(self.state)
        if not step.unanswered:
            return step
        should_stop = self._guard(should_stop)
        self.repo.before_model_calls(self.state)  # lease and disk first: no call spent on a run that cannot save
        proposer = Proposer(self.state, self.splits, self._meter.wrap(self.models.optimizer, "optimizer"),
                            self.models.embedder, self._scorer(), self._keep_records, self.records)
        proposer.complete(step, on_progress, should_stop)
        self._save()
        return step

    def decide_auto(self, on_progress: Progress | None = None, *, should_stop: StopFlag | None = None) -> StepRecord:
        """The run's policy decides (paper: the best not-yet-chosen candidate becomes the
        next prompt, even if it scores below the current one). With no eligible candidate
        the prompt stays and the step is recorded as "no_candidate" with the reason.
        IncompleteStepError (nothing decided) while dev calls of the step are unanswered
        (:func:`gpo_core.optimizer.transitions.require_answered`)."""
        step = transitions.pending(self.state)
        transitions.require_answered(step)
        best = self.best_candidate(step)
        if best is None:
            note = explain_keep(get_policy(self.config.policy), step, self.state)
            transitions.no_choice(self.state, step, Decision("no_candidate", None, None, _now(), note))
            self._save()
            return step
        return self.accept(best.id, on_progress=on_progress, kind="auto", should_stop=should_stop)

    def accept_best(self, on_progress: Progress | None = None, *, should_stop: StopFlag | None = None) -> StepRecord:
        """By hand, the policy's choice (as :meth:`decide_auto`, recorded as "accept").
        ConfigError, saying why, when no candidate is eligible; IncompleteStepError while
        dev calls of the step are unanswered."""
        step = transitions.pending(self.state)
        transitions.require_answered(step)
        best = self.best_candidate(step)
        if best is None:
            note = explain_keep(get_policy(self.config.policy), step, self.state)
            raise ConfigError("candidate", note.replace("; prompt unchanged", ""))
        return self.accept(best.id, on_progress=on_progress, should_stop=should_stop)

    def reject(self, candidate_id: str, rejected: bool = True) -> CandidateRecord:
        """Mark a candidate of the pending step rejected by the user (or, with
        ``rejected=False``, restore it). Saved at once; no decision path chooses a rejected
        candidate (nor its text), and later meta-prompts list it when the settings'
        ``show_rejections`` is on. ConfigError with no pending step or an unknown id."""
        cand = transitions.find_candidate(transitions.pending(self.state), candidate_id)
        cand.rejected = bool(rejected)
        self._save()
        return cand

    def reject_all(self) -> StepRecord:
        """Reject every candidate of the pending step (each is marked rejected). The step
        stays in the record (its fully scored candidates join the trajectory); the next
        :meth:`propose` resamples step t with fresh sample indices."""
        step = transitions.pending(self.state)
        transitions.reject_all(self.state, step, Decision("reject_all", None, None, _now()))
        self._save()
        return step

    def undo(self) -> StepRecord:
        """Undo the last STEP: remove every attempt of it (pending, rejected or decided) with
        their trajectory entries and per-example records (files and memory), and restore the
        prompt from before it. Candidate ids are never reused. Returns the first removed
        attempt. ConfigError when there is nothing to undo."""
        first, candidate_ids = transitions.undo_step(self.state)
        self.state.stopped_early = None
        self._save()
        self.repo.delete_records(candidate_ids)
        return first

    def run_auto(self, n_steps: int | None = None, *, on_step: Callable[[StepRecord], None] | None = None,
                 on_progress: Progress | None = None, should_stop: StopFlag | None = None) -> list[StepRecord]:
        """Run up to ``n_steps`` steps (default: to the end), each decided by the run's
        policy (:meth:`decide_auto`); a pending step is decided first and counts as one.
        Stops early, keeping every finished step, when should_stop() turns true, or (with
        ``patience`` set) when the last ``patience`` steps brought no significant gain: then
        ``state.stopped_early`` records why (saved; :attr:`stop_note` is its line)."""
        done: list[StepRecord] = []
        if not self.started:
            self.start(on_progress, should_stop)
        done_before = len(self.state.decided_steps)
        target = self.config.steps if n_steps is None else min(self.config.steps, done_before + n_steps)
        while len(self.state.decided_steps) < target:
            if should_stop and should_stop():
                break
            reason = early_stop_reason(self.state) if self.state.pending_step is None else None
            if reason is not None:
                self.state.stopped_early = {"after_step": len(self.state.decided_steps), "reason": reason,
                                            "at": _now()}
                self._save()
                break
            self.propose(on_progress, should_stop)
            step = self.decide_auto(on_progress, should_stop=should_stop)
            done.append(step)
            if on_step:
                on_step(step)
        return done

    # Results ----------------------------------------------------------------------------
    def chosen_entries(self) -> list[TrajectoryEntry]:
        """The trajectory entries that became the current prompt, in order (start first)."""
        return [e for e in self.state.trajectory if e.chosen]

    def best_prompt(self) -> TrajectoryEntry:
        """The run's final prompt: the highest dev accuracy among the starting prompt and
        the prompts chosen at each step, ties going to the EARLIER prompt (so the start wins
        any tie); see :func:`gpo_core.runs.final.final_entry`."""
        return final_entry(self.state)

    def final_comparison(self) -> FinalComparison:
        """How the final prompt compares with the starting prompt on the dev (and, when
        scored, test) examples both answered: paired counts, exact McNemar p and the Wilson
        interval of each accuracy (:func:`gpo_core.runs.final.compare_final_with_start`)."""
        return compare_final_with_start(self.state, self.records)

    @property
    def stop_note(self) -> str | None:
        """Why the last automatic run stopped early ("stopped early: 3 steps without a
        significant gain (p < 0.05) ..."), or None."""
        return (self.state.stopped_early or {}).get("reason")

    def reveal_test(self, by: str = "user") -> None:
        """Show a blind test's scores from now on (``by``: "user", "cli" or "export");
        recorded in ``state.test_revealed`` and saved. Nothing happens when the test is not
        blind or already revealed (see :mod:`gpo_core.optimizer.overfit`)."""
        if reveal(self.state, by):
            self._save()

    def use_models(self, models: Models, settings: RunSettings | None = None) -> None:
        """Continue this run with other models (e.g. after the user changed the Models page).
        ``settings``: the run's new settings (their model parts apply to every request from
        now on and are saved); None keeps the settings."""
        if settings is not None:
            self.state.settings = settings.validate()
        self.models = models
        self._save()

    def model_names(self) -> dict[str, str]:
        """Per role, the configured model as one line (recorded in each step)."""
        return configured_models(self.settings)

    def ineligible_reason(self, candidate_id: str, step: StepRecord | None = None) -> str | None:
        """Why no policy may choose this candidate of ``step`` (default: the pending or last
        step): "rejected by the user", "1 of 8 dev calls failed", ... or None when eligible."""
        step = step or self.state.pending_step or (self.state.steps[-1] if self.state.steps else None)
        if step is None:
            raise ConfigError("step", "there is no step yet")
        return ineligible_reason(transitions.find_candidate(step, candidate_id), self.state)

    def _save(self) -> None:
        """Save run.json (atomically) after refreshing this session's lease; raises
        RunInUseError, writing nothing, if another session took the run over."""
        self.state.updated_at = _now()
        self.repo.save(self.state)
