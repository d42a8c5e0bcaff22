"""The GPO optimization loop, as a session a human (or the auto loop) drives.

A step (Tang et al. 2024, Sec. 3 and Algorithm 1): select the update direction from the
trajectory, build the meta-prompt with the edit budget from the schedule, sample N
candidates from the optimizer model, measure each candidate's word edit distance, dedupe
against everything already scored, score the new ones on dev with the task model, then
decide: ``decide_auto`` (the best not-yet-chosen candidate, as the paper), ``accept``
(a candidate or hand-edited text), ``reject_all`` (resample the same step) or ``undo``.
The chosen prompt is scored on test for the curves. The run is saved after every change.
"""

from __future__ import annotations

import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from gpo_core.optimizer.edits import word_edit_distance
from gpo_core.models.embeddings import Embedder
from gpo_core.errors import ConfigError, EndpointDownError
from gpo_core.scoring.evaluation import EvalResult, evaluate_many
from gpo_core.optimizer.extraction import clean_candidate, extract_candidates
from gpo_core.optimizer.metaprompt import build_meta_prompt, pick_exemplars
from gpo_core.models.base import ChatModel, ChatRequest, TokenUsage
from gpo_core.optimizer.policies import get_policy, norm_text
from gpo_core.runs.records import CandidateRecord, Decision, OptimizerCall, RunState, RunTask, StepRecord
from gpo_core.settings import OptimizerSettings, RunSettings
from gpo_core.optimizer.schedule import edit_budget
from gpo_core.tasks.splits import default_split_sizes, split_task
from gpo_core.runs.repository import claim_run, load_records, load_run, save_records, save_run
from gpo_core.tasks.task import Example, Task, TaskSplits
from gpo_core.optimizer.direction import TrajectoryEntry, select_update_direction

#: Progress callback: (phase, done, total). Phases: "dev", "test", "optimizer".
Progress = Callable[[str, int, int], None]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


_norm = norm_text


def _ex_dicts(examples: list[Example]) -> list[dict]:
    return [{"input": e.input, "target": e.target} for e in examples]


def _ex_list(dicts: list[dict]) -> list[Example]:
    return [Example(d["input"], d["target"]) for d in dicts]


@dataclass
class Models:
    """The three model seams of a session: task model (scorer), optimizer model, embedder.
    Their settings (names, temperatures, ...) live in the run's RunSettings, not here."""

    task: ChatModel
    optimizer: ChatModel
    embedder: Embedder | None


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
        s = state.splits
        self.splits = TaskSplits(_ex_list(s["train"]), _ex_list(s["dev"]), _ex_list(s["test"]),
                                 _ex_list(s.get("exemplars", s["train"])))
        self._records: dict[tuple[str, str], list[dict]] = {}

    # Construction -----------------------------------------------------------------------
    @classmethod
    def create(cls, task: Task, settings: RunSettings, models: Models, *, run_dir: Path | None = None,
               run_id: str | None = None, splits: TaskSplits | None = None,
               owner: str | None = None) -> "GPOSession":
        """New run on ``task`` with ``settings``. Validates the settings and the split sizes
        before any model call (raises ConfigError naming the setting)."""
        settings.validate()
        sp = settings.splits
        if splits is None:
            dev_size, test_size = default_split_sizes(task, sp.dev_size, sp.test_size)
            splits = split_task(task, dev_size=dev_size, test_size=test_size, train_size=sp.train_size, seed=sp.seed)
        if not splits.dev:
            raise ConfigError("dev_size", "the dev split is empty")
        run_id = run_id or datetime.now().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        state = RunState(
            run_id=run_id, created_at=_now(),
            task=RunTask(task.name, task.answer_type, task.instruction_position, task.description, task.source,
                         task.initial_instruction),
            splits={"train": _ex_dicts(splits.train), "dev": _ex_dicts(splits.dev), "test": _ex_dicts(splits.test),
                    "exemplars": _ex_dicts(splits.exemplars or splits.train)},
            settings=settings,
            current_prompt=task.initial_instruction,
        )
        return cls(state, models, run_dir, owner)

    @classmethod
    def open(cls, run_dir: Path, models: Models, *, owner: str | None = None,
             take_over: bool = False) -> "GPOSession":
        """Reopen a saved run to inspect or resume it. Takes the run's lease for ``owner``:
        raises RunInUseError when another live session holds it (unless ``take_over``),
        RunFileError if the run is unreadable."""
        state = load_run(run_dir)
        session = cls(state, models, run_dir, owner)
        claim_run(run_dir, session.owner, force=take_over)
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
        c = self.config
        return edit_budget(t, kind=c.schedule, initial=c.budget_initial, final=c.budget_final,
                           total_steps=c.steps, warmup=c.warmup)

    def budgets(self) -> list[int]:
        """The whole schedule, steps 1..T (words)."""
        return [self.budget_for(t) for t in range(1, self.config.steps + 1)]

    # Scoring ----------------------------------------------------------------------------
    def _evaluate(self, prompts: list[str], split: str, on_progress: Progress | None,
                  should_stop: Callable[[], bool] | None) -> list[EvalResult]:
        examples = self.splits.dev if split == "dev" else self.splits.test
        cb = (lambda d, n: on_progress(split, d, n)) if on_progress else None
        tm = self.settings.task_model
        return evaluate_many(prompts, examples, self.models.task, answer_type=self.state.task.answer_type,
                             position=self.state.task.instruction_position, max_tokens=tm.max_tokens,
                             temperature=tm.temperature,
                             concurrency=self.concurrency, split=split, on_progress=cb, should_stop=should_stop)

    def _keep_records(self, key: str, result: EvalResult) -> None:
        recs = [r.to_dict() for r in result.records]
        self._records[(key, result.split)] = recs
        if self.run_dir:
            save_records(self.run_dir, key, result.split, recs)

    def records(self, key: str, split: str = "dev") -> list[dict]:
        """Per-example records of a scored prompt: key is a candidate id or "initial".
        Each dict: input, target, rendered_prompt, raw_output, parsed_answer, correct, tokens, error."""
        if (key, split) not in self._records and self.run_dir:
            loaded = load_records(self.run_dir, key, split)
            if loaded is not None:
                self._records[(key, split)] = loaded
        return self._records.get((key, split), [])

    @staticmethod
    def _check_endpoint(results: list[EvalResult], what: str) -> None:
        total = sum(r.n for r in results)
        if total and sum(r.n_errors for r in results) == total:
            err = next((rec.error for r in results for rec in r.records if rec.error), "unknown error")
            raise EndpointDownError(f"every {what} call failed; the task model endpoint looks down ({err})")

    def start(self, on_progress: Progress | None = None, should_stop: Callable[[], bool] | None = None) -> dict:
        """Score the starting prompt on dev and test (step 0 of the trajectory). Idempotent."""
        if self.state.initial is not None:
            return self.state.initial
        prompt = self.state.current_prompt
        dev = self._evaluate([prompt], "dev", on_progress, should_stop)[0]
        self._check_endpoint([dev], "dev")
        test = self._evaluate([prompt], "test", on_progress, should_stop)[0] if self.splits.test else None
        self._keep_records("initial", dev)
        if test:
            self._keep_records("initial", test)
        usage = dev.usage.merge(test.usage) if test else dev.usage
        self.state.initial = {"prompt": prompt, "dev_accuracy": dev.accuracy,
                              "test_accuracy": test.accuracy if test else None, "usage": usage.__dict__.copy()}
        self.state.trajectory = [TrajectoryEntry(0, prompt, dev.accuracy, 0, None, True, "initial")]
        self.state.current_entry_id = 0
        self._save()
        return self.state.initial

    # A step -----------------------------------------------------------------------------
    def _sample_optimizer(self, meta: str, first_index: int, n: int) -> list:
        om = self.settings.optimizer_model
        reqs = [ChatRequest.user(meta, temperature=om.temperature, max_tokens=om.max_tokens,
                                 sample_index=first_index + i)
                for i in range(n)]
        workers = max(1, min(n, self.concurrency, self.models.optimizer.max_concurrency))
        if workers == 1:
            return [self.models.optimizer.complete(r) for r in reqs]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(self.models.optimizer.complete, reqs))

    def _known_scores(self) -> dict[str, tuple[str, float]]:
        """Normalized text -> (candidate id, dev accuracy) of every prompt scored so far."""
        known: dict[str, tuple[str, float]] = {}
        for e in self.state.trajectory:
            known.setdefault(_norm(e.prompt), (e.candidate_id or f"entry{e.id}", e.dev_accuracy))
        for s in self.state.steps:
            for c in s.candidates:
                if c.dev_accuracy is not None:
                    known.setdefault(_norm(c.text), (c.id, c.dev_accuracy))
        return known

    def propose(self, on_progress: Progress | None = None,
                should_stop: Callable[[], bool] | None = None) -> StepRecord:
        """Run the model work of the next step and return it pending a decision.

        Returns the existing pending step if there is one. Raises ConfigError when the run
        is finished or not started, EndpointDownError when every call failed (nothing is
        saved for the step; the run stays resumable), EvaluationCancelled on should_stop.
        """
        if self.state.initial is None:
            raise ConfigError("run", "score the starting prompt first (start)")
        if self.state.pending_step is not None:
            return self.state.pending_step
        t = self.next_step_number
        if t > self.config.steps:
            raise ConfigError("steps", f"all {self.config.steps} steps are done")
        t0 = time.perf_counter()
        c = self.config
        attempt = 1 + sum(1 for s in self.state.steps if s.step == t)
        rng = random.Random(f"{self.settings.splits.seed}:{t}:{attempt}")
        budget = self.budget_for(t)
        current = self.state.current_prompt
        retrieved = select_update_direction(self.state.trajectory, current, k=c.k, strategy=c.selection,
                                            embedder=self.models.embedder, newest_id=self.state.current_entry_id)
        exemplars = pick_exemplars(self.splits.exemplars or self.splits.train, c.n_exemplars, rng)
        meta = build_meta_prompt(retrieved=retrieved, current_prompt=current, exemplars=exemplars,
                                 position=self.state.task.instruction_position,
                                 budget=budget if c.use_budget else None)
        if on_progress:
            on_progress("optimizer", 0, c.candidates)
        completions = self._sample_optimizer(meta, (attempt - 1) * c.candidates, c.candidates)
        if on_progress:
            on_progress("optimizer", c.candidates, c.candidates)
        if all(comp.error for comp in completions):
            raise EndpointDownError(f"every optimizer call failed; the optimizer endpoint looks down ({completions[0].error})")

        usage_opt = TokenUsage()
        calls: list[OptimizerCall] = []
        candidates: list[CandidateRecord] = []
        known = self._known_scores()
        seen_here: dict[str, str] = {}
        for i, comp in enumerate(completions):
            usage_opt.add(comp)
            ext = extract_candidates(comp.text) if not comp.error else None
            call = OptimizerCall(sample_index=(attempt - 1) * c.candidates + i, reply=comp.text,
                                 extraction=ext.method if ext else "none",
                                 reason=(ext.reason if ext else f"call failed: {comp.error}"), candidate_ids=[],
                                 prompt_tokens=comp.prompt_tokens, completion_tokens=comp.completion_tokens,
                                 attempts=comp.attempts, cached=comp.cached, error=comp.error)
            for text in (ext.candidates if ext else []):
                cid = f"s{t}c{self.state.new_serial()}"
                dist = word_edit_distance(current, text)
                cand = CandidateRecord(id=cid, text=text, sample_index=call.sample_index, extraction=ext.method,
                                       edit_distance=dist, within_budget=dist <= budget)
                key = _norm(text)
                if key in seen_here:
                    cand.status, cand.duplicate_of = "duplicate", seen_here[key]
                elif key in known:
                    cand.status, cand.duplicate_of = "duplicate", known[key][0]
                    cand.dev_accuracy = known[key][1]
                elif c.enforce_budget and not cand.within_budget:
                    cand.status = "over_budget"
                else:
                    seen_here[key] = cid
                call.candidate_ids.append(cid)
                candidates.append(cand)
            calls.append(call)

        to_score = [cd for cd in candidates if cd.status == "scored"]
        usage_dev = TokenUsage()
        if to_score:
            results = self._evaluate([cd.text for cd in to_score], "dev", on_progress, should_stop)
            self._check_endpoint(results, "dev")
            for cd, res in zip(to_score, results):
                self._apply_dev(cd, res)
                usage_dev = usage_dev.merge(res.usage)
        by_id = {cd.id: cd for cd in candidates}
        for cd in candidates:  # duplicates within this step share their twin's score
            if cd.status == "duplicate" and cd.dev_accuracy is None and cd.duplicate_of in by_id:
                cd.dev_accuracy = by_id[cd.duplicate_of].dev_accuracy

        step = StepRecord(step=t, attempt=attempt, budget=budget, budget_in_prompt=c.use_budget,
                          current_prompt=current, current_entry_id=self.state.current_entry_id,
                          retrieved=retrieved, exemplars=_ex_dicts(exemplars), meta_prompt=meta,
                          optimizer_calls=calls, candidates=candidates, usage_optimizer=usage_opt,
                          usage_dev=usage_dev, seconds=time.perf_counter() - t0, models=self.model_names())
        self.state.steps.append(step)
        self._save()
        return step

    def _apply_dev(self, cd: CandidateRecord, res: EvalResult) -> None:
        cd.dev_accuracy, cd.dev_n, cd.dev_errors, cd.usage = res.accuracy, res.n, res.n_errors, res.usage
        cd.status = "failed" if res.n and res.n_errors == res.n else "scored"
        self._keep_records(cd.id, res)

    # Decisions --------------------------------------------------------------------------
    def best_candidate(self, step: StepRecord | None = None) -> CandidateRecord | None:
        """The candidate the run's decision policy would choose in the (pending) step, or
        None when no candidate is eligible (see :func:`gpo_core.optimizer.policies.eligible`)."""
        step = step or self.state.pending_step
        if step is None:
            return None
        return get_policy(self.config.policy).choose(step, self.state)

    def _add_step_entries(self, step: StepRecord) -> None:
        traj = self.state.trajectory
        for cd in step.candidates:
            if cd.status == "scored" and cd.dev_accuracy is not None:
                traj.append(TrajectoryEntry(len(traj), cd.text, cd.dev_accuracy, step.step,
                                            step.current_entry_id, False, cd.id))
                step.added_entry_ids.append(traj[-1].id)

    def _require_pending(self) -> StepRecord:
        step = self.state.pending_step
        if step is None:
            raise ConfigError("step", "there is no pending step to decide; run the next step first")
        return step

    def accept(self, candidate_id: str | None = None, text: str | None = None,
               on_progress: Progress | None = None, kind: str | None = None) -> StepRecord:
        """Make a candidate (or hand-edited ``text``) the next prompt.

        With ``text`` that differs from the candidate's, the text is scored on dev first and
        recorded as an "edited" candidate. The chosen prompt is then scored on test.
        Raises ConfigError with no pending step, an unknown id, or empty text.
        """
        step = self._require_pending()
        cand = None
        if candidate_id is not None:
            try:
                cand = step.candidate(candidate_id)
            except KeyError:
                raise ConfigError("candidate", f"no candidate {candidate_id!r} in step {step.step}") from None
        if text is not None:
            text = clean_candidate(text) if text.strip() else ""
            if not text:
                raise ConfigError("candidate", "the edited instruction is empty")
        if cand is None and text is None:
            raise ConfigError("candidate", "name a candidate or give the instruction text")
        if text is not None and (cand is None or text != cand.text):
            dist = word_edit_distance(step.current_prompt, text)
            cand = CandidateRecord(id=f"s{step.step}e{self.state.new_serial()}", text=text, origin="edited",
                                   extraction="hand", edit_distance=dist, within_budget=dist <= step.budget)
            step.candidates.append(cand)
            decision_kind = "accept_edited"
        else:
            decision_kind = kind or "accept"
        if cand.dev_accuracy is None or (cand.status == "over_budget"):
            res = self._evaluate([cand.text], "dev", on_progress, None)[0]
            self._apply_dev(cand, res)
            step.usage_dev = step.usage_dev.merge(res.usage)
        return self._finish(step, cand, Decision(decision_kind, cand.id, cand.text, _now()), on_progress)

    def _finish(self, step: StepRecord, cand: CandidateRecord, decision: Decision,
                on_progress: Progress | None) -> StepRecord:
        if self.splits.test:
            res = self._evaluate([cand.text], "test", on_progress, None)[0]
            cand.test_accuracy = res.accuracy
            step.usage_test = res.usage
            self._keep_records(cand.id, res)
        self._add_step_entries(step)
        entry = next((self.state.trajectory[i] for i in step.added_entry_ids
                      if self.state.trajectory[i].candidate_id == cand.id), None)
        if entry is None:  # a duplicate (or failed) candidate: add it as its own entry
            traj = self.state.trajectory
            traj.append(TrajectoryEntry(len(traj), cand.text, cand.dev_accuracy or 0.0, step.step,
                                        step.current_entry_id, False, cand.id))
            step.added_entry_ids.append(traj[-1].id)
            entry = traj[-1]
        entry.chosen = True
        step.decision = decision
        step.chosen_entry_id = entry.id
        step.chosen_test_accuracy = cand.test_accuracy
        self.state.current_prompt = cand.text
        self.state.current_entry_id = entry.id
        self._save()
        return step

    def decide_auto(self, on_progress: Progress | None = None) -> StepRecord:
        """Paper's rule: the best not-yet-chosen candidate becomes the next prompt, even if
        it scores below the current one. With no usable candidate the prompt stays and
        the step is recorded as "no_candidate"."""
        step = self._require_pending()
        best = self.best_candidate(step)
        if best is None:
            self._add_step_entries(step)
            step.decision = Decision("no_candidate", None, None, _now(), "no scored candidate; prompt unchanged")
            self._save()
            return step
        return self.accept(best.id, on_progress=on_progress, kind="auto")

    def accept_best(self, on_progress: Progress | None = None) -> StepRecord:
        """By hand, the same choice as :meth:`decide_auto` (recorded as "accept")."""
        step = self._require_pending()
        best = self.best_candidate(step)
        if best is None:
            raise ConfigError("candidate", "no candidate of this step has a dev score")
        return self.accept(best.id, on_progress=on_progress)

    def reject(self, candidate_id: str, rejected: bool = True) -> CandidateRecord:
        """Mark a candidate of the pending step rejected by the user (or, with
        ``rejected=False``, restore it). Saved at once; no decision path can choose a
        rejected candidate. ConfigError with no pending step or an unknown id."""
        step = self._require_pending()
        try:
            cand = step.candidate(candidate_id)
        except KeyError:
            raise ConfigError("candidate", f"no candidate {candidate_id!r} in step {step.step}") from None
        cand.rejected = rejected
        self._save()
        return cand

    def reject_all(self) -> StepRecord:
        """Reject every candidate of the pending step. The step stays in the record (its
        scored candidates join the trajectory); the next :meth:`propose` resamples step t
        with fresh sample indices."""
        step = self._require_pending()
        self._add_step_entries(step)
        step.decision = Decision("reject_all", None, None, _now())
        self._save()
        return step

    def undo(self) -> StepRecord:
        """Remove the last step record (pending, rejected or decided) and restore the prompt
        and trajectory from before it. Raises ConfigError when there is nothing to undo."""
        if not self.state.steps:
            raise ConfigError("undo", "there is no step to undo")
        step = self.state.steps.pop()
        removed = set(step.added_entry_ids)
        self.state.trajectory = [e for e in self.state.trajectory if e.id not in removed]
        self.state.current_prompt = step.current_prompt
        self.state.current_entry_id = step.current_entry_id
        self._save()
        return step

    def run_auto(self, n_steps: int | None = None, *, on_step: Callable[[StepRecord], None] | None = None,
                 on_progress: Progress | None = None, should_stop: Callable[[], bool] | None = None) -> list[StepRecord]:
        """Run up to ``n_steps`` steps (default: to the end) with :meth:`decide_auto`.
        Stops early, keeping every finished step, when should_stop() turns true."""
        done: list[StepRecord] = []
        if not self.started:
            self.start(on_progress, should_stop)
        target = self.config.steps if n_steps is None else min(self.config.steps, len(self.state.decided_steps) + n_steps)
        while len(self.state.decided_steps) < target:
            if should_stop and should_stop():
                break
            self.propose(on_progress, should_stop)
            step = self.decide_auto(on_progress)
            done.append(step)
            if on_step:
                on_step(step)
        return done

    # Results ----------------------------------------------------------------------------
    def chosen_entries(self) -> list[TrajectoryEntry]:
        return [e for e in self.state.trajectory if e.chosen]

    def best_prompt(self) -> TrajectoryEntry:
        """The chosen prompt with the highest dev accuracy (ties: the latest): the run's
        final prompt, as the paper reports the best prompt on dev."""
        chosen = self.chosen_entries()
        if not chosen:
            return TrajectoryEntry(0, self.state.current_prompt, 0.0, 0)
        return max(chosen, key=lambda e: (e.dev_accuracy, e.id))

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
        s = self.settings
        return {"task": s.task_model.describe(), "optimizer": s.optimizer_model.describe()}

    def _save(self) -> None:
        """Save run.json (atomically) after refreshing this session's lease; raises
        RunInUseError, writing nothing, if another session took the run over."""
        self.state.updated_at = _now()
        if self.run_dir:
            claim_run(self.run_dir, self.owner)
            save_run(self.state, self.run_dir)
