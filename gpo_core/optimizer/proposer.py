"""The model work of one GPO step, up to (not including) the decision.

A step (Tang et al. 2024, Sec. 3 and Algorithm 1): retrieve the update direction from the
trajectory (:mod:`gpo_core.optimizer.direction`), build the meta-prompt with the edit budget
from the schedule (:mod:`gpo_core.optimizer.metaprompt`), sample N candidates from the
optimizer model, extract each reply's instruction (:mod:`gpo_core.optimizer.extraction`),
measure its word edit distance, dedupe against everything already fully scored, and score
the new ones on dev with the task model (:class:`~gpo_core.optimizer.scorer.Scorer`). The
result is a pending :class:`~gpo_core.runs.records.StepRecord`; which candidate becomes
the next prompt is for :mod:`gpo_core.optimizer.policies` or the user.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from gpo_core.errors import EndpointDownError
from gpo_core.models.base import ChatModel, ChatRequest, Completion, TokenUsage
from gpo_core.models.embeddings import Embedder
from gpo_core.optimizer import templates as T
from gpo_core.optimizer.direction import select_update_direction
from gpo_core.optimizer.edits import word_edit_distance
from gpo_core.optimizer.extraction import extract_for_layout
from gpo_core.optimizer.metaprompt import build_meta_prompt, pick_exemplars
from gpo_core.optimizer.policies import norm_text, rejected_texts
from gpo_core.optimizer.schedule import edit_budget
from gpo_core.optimizer.scorer import Progress, Scorer
from gpo_core.runs.records import CandidateRecord, OptimizerCall, RunState, StepRecord
from gpo_core.scoring.evaluation import EvalResult
from gpo_core.settings import RunSettings
from gpo_core.stats import mcnemar_exact, paired_counts
from gpo_core.tasks.task import Example, TaskSplits

__all__ = ["MAX_REJECTED_SHOWN", "Proposer", "apply_dev", "apply_paired", "budget_for", "configured_models",
           "current_key", "note_reported", "score_one"]

#: At most this many rejected candidates (the most recent) are listed in a meta-prompt:
#: every word of it is paid N times a step.
MAX_REJECTED_SHOWN = 5


def budget_for(settings: RunSettings, t: int) -> int:
    """Edit budget in words at step ``t`` (1-based) from the run's schedule."""
    c = settings.optimizer
    return edit_budget(t, kind=c.schedule, initial=c.budget_initial, final=c.budget_final,
                       total_steps=c.steps, warmup=c.warmup)


def configured_models(settings: RunSettings) -> dict[str, str]:
    """Per role, the configured model as one line ("gpt-4o-mini (OpenAI)")."""
    return {"task": settings.task_model.describe(), "optimizer": settings.optimizer_model.describe()}


def note_reported(step: StepRecord, role: str, asked: str, reported: Iterable[str]) -> None:
    """Record in ``step`` the model names the server reported for ``role`` when they differ
    from ``asked`` (the configured model name): ``step.models["<role>_reported"]`` lists them,
    and each gets a warning "<role> model: asked for X, server answered as Y" -- except a
    dated snapshot of the name asked for ("gpt-4o-mini" answered as
    "gpt-4o-mini-2024-07-18"), which is how OpenAI resolves its aliases."""
    other = sorted({n for n in reported if n and n != asked})
    if not other:
        return
    key = f"{role}_reported"
    known = [n for n in step.models.get(key, "").split(", ") if n]
    step.models[key] = ", ".join(sorted(set(known) | set(other)))
    for name in other:
        warning = f"{role} model: asked for {asked}, server answered as {name}"
        if not name.startswith(asked + "-") and warning not in step.warnings:
            step.warnings.append(warning)


def apply_dev(cd: CandidateRecord, res: EvalResult) -> None:
    """Copy a dev score into the candidate: accuracy over the answered examples, the failed
    calls, usage; status "failed" when nothing was answered, "incomplete" when some calls
    still failed after the retry pass, else "scored"."""
    cd.dev_accuracy, cd.dev_n, cd.dev_errors, cd.usage = res.accuracy, res.n, res.n_errors, res.usage
    cd.dev_correct = res.n_correct
    cd.status = "failed" if res.n and res.n_errors == res.n else ("incomplete" if res.n_errors else "scored")


def current_key(state: RunState, step: StepRecord) -> str:
    """The records key of ``step``'s current prompt (trajectory entry ``current_entry_id``):
    its candidate id, or "initial" for the starting prompt."""
    entry = next((e for e in state.trajectory if e.id == step.current_entry_id), None)
    return (entry.candidate_id if entry is not None else None) or "initial"


def apply_paired(cd: CandidateRecord, base_records: list[dict], records: list[dict]) -> None:
    """Compare the candidate's dev records with the current prompt's, example by example
    (:func:`gpo_core.stats.paired_counts`): set ``fixed``, ``broken`` and the exact McNemar
    ``p_value``. Left None when either side has no records (nothing to compare)."""
    if not base_records or not records:
        cd.fixed = cd.broken = cd.p_value = None
        return
    fixed, broken, _ = paired_counts(base_records, records)
    cd.fixed, cd.broken, cd.p_value = fixed, broken, mcnemar_exact(fixed, broken)


def score_one(scorer: Scorer, step: StepRecord, cand: CandidateRecord, split: str,
              keep_records: Callable[[str, EvalResult], None], on_progress: Progress | None = None,
              should_stop: Callable[[], bool] | None = None,
              base_records: list[dict] | None = None) -> EvalResult:
    """Score one candidate of ``step`` on ``split`` ("dev": :func:`apply_dev`, and with
    ``base_records`` (the current prompt's dev records) :func:`apply_paired`; "test": its
    test accuracy and failed calls), keep its records, add the tokens to the step's usage
    and note the model the server reported. Errors as :meth:`Scorer.score`."""
    res = scorer.score([cand.text], split, on_progress, should_stop)[0]
    if split == "dev":
        apply_dev(cand, res)
        if base_records is not None:
            apply_paired(cand, base_records, [r.to_dict() for r in res.records])
        step.usage_dev = step.usage_dev.merge(res.usage)
    else:
        cand.test_accuracy, cand.test_errors = res.accuracy, res.n_errors
        step.usage_test = step.usage_test.merge(res.usage)
    keep_records(cand.id, res)
    note_reported(step, "task", scorer.state.settings.task_model.model, res.models)
    return res


def layout_sentences(layout: str, position: str) -> list[str]:
    """The fixed sentences of a meta-prompt layout, as sent (for the echo filter)."""
    lay = T.LAYOUTS[layout]
    where = T.POSITION_WORDS.get(position, "")
    return [lay.header.format(placeholder=T.PLACEHOLDER), lay.trajectory_header,
            lay.exemplars_header.format(placeholder=T.PLACEHOLDER, where=where),
            lay.request.format(placeholder=T.PLACEHOLDER, where=where), lay.budget, lay.answer_format]


def _ex_dicts(examples: list[Example]) -> list[dict]:
    return [{"input": e.input, "target": e.target} for e in examples]


class Proposer:
    """Proposes the next step of a run (see the module docstring).

    state: the run (read; only ``next_serial`` advances). splits: its examples. optimizer /
    embedder: the optimizer model and the update direction's embedder. scorer: scores on dev.
    keep_records(candidate id, result): stores a candidate's per-example records.
    load_records(key, split): the kept records of a scored prompt ("initial" or a candidate
    id; [] when none), to compare each candidate with the current prompt; None: no comparison.
    """

    def __init__(self, state: RunState, splits: TaskSplits, optimizer: ChatModel, embedder: Embedder | None,
                 scorer: Scorer, keep_records: Callable[[str, EvalResult], None],
                 load_records: Callable[[str, str], list[dict]] | None = None):
        self.state = state
        self.splits = splits
        self.optimizer = optimizer
        self.embedder = embedder
        self.scorer = scorer
        self.keep_records = keep_records
        self.load_records = load_records

    def _sample(self, meta: str, first_index: int, n: int) -> list[Completion]:
        om = self.state.settings.optimizer_model
        reqs = [ChatRequest.user(meta, temperature=om.temperature, max_tokens=om.max_tokens,
                                 sample_index=first_index + i) for i in range(n)]
        workers = max(1, min(n, self.scorer.concurrency, self.optimizer.max_concurrency))
        if workers == 1:
            return [self.optimizer.complete(r) for r in reqs]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(self.optimizer.complete, reqs))

    def _known_scores(self) -> dict[str, tuple[str, float]]:
        """Normalized text -> (candidate id, dev accuracy) of every prompt FULLY scored so far
        (a score with failed calls is no score to reuse: its text gets scored again)."""
        known: dict[str, tuple[str, float]] = {}
        for e in self.state.trajectory:
            known.setdefault(norm_text(e.prompt), (e.candidate_id or f"entry{e.id}", e.dev_accuracy))
        for s in self.state.steps:
            for c in s.candidates:
                if c.dev_accuracy is not None and c.status in ("scored", "duplicate") and not c.dev_errors:
                    known.setdefault(norm_text(c.text), (c.id, c.dev_accuracy))
        return known

    def exemplars(self, t: int, attempt: int) -> list[Example]:
        """The exemplars of step ``t`` (attempt ``attempt``): drawn once per run from the
        format split (else train) when ``exemplar_draw`` is "once" (the reference draws its
        ``format_index`` once per task), else redrawn per step and attempt."""
        c = self.state.settings.optimizer
        seed = self.state.settings.splits.seed
        key = f"{seed}:exemplars" if c.exemplar_draw == "once" else f"{seed}:{t}:{attempt}"
        return pick_exemplars(self.splits.exemplars or self.splits.train, c.n_exemplars, random.Random(key))

    def _rejected_for_meta(self) -> list[str]:
        if not self.state.settings.optimizer.show_rejections:
            return []
        chosen = {norm_text(e.prompt) for e in self.state.trajectory if e.chosen}
        return [t for t in rejected_texts(self.state) if norm_text(t) not in chosen][-MAX_REJECTED_SHOWN:]

    def propose(self, t: int, on_progress: Progress | None = None,
                should_stop: Callable[[], bool] | None = None) -> StepRecord:
        """The model work of step ``t``; returns the new pending StepRecord (not yet added to
        the run). Raises EndpointDownError when every optimizer call or every dev call
        failed, EvaluationCancelled on should_stop."""
        t0 = time.perf_counter()
        st = self.state
        c = st.settings.optimizer
        attempt = 1 + sum(1 for s in st.steps if s.step == t)
        budget = budget_for(st.settings, t)
        current = st.current_prompt
        retrieved = select_update_direction(st.trajectory, current, k=c.k, strategy=c.selection,
                                            embedder=self.embedder, newest_id=st.current_entry_id,
                                            pool=c.direction_pool, order=c.direction_order)
        exemplars = self.exemplars(t, attempt)
        meta = build_meta_prompt(retrieved=retrieved, current_prompt=current, exemplars=exemplars,
                                 position=st.task.instruction_position, budget=budget if c.use_budget else None,
                                 rejected=self._rejected_for_meta(), layout=c.layout)
        scaffolding = layout_sentences(c.layout, st.task.instruction_position)
        shown = [text for e in exemplars for text in (e.input, e.target)]
        if on_progress:
            on_progress("optimizer", 0, c.candidates)
        completions = self._sample(meta, (attempt - 1) * c.candidates, c.candidates)
        if on_progress:
            on_progress("optimizer", c.candidates, c.candidates)
        if all(comp.error for comp in completions):
            raise EndpointDownError(f"every optimizer call failed; the optimizer endpoint looks down "
                                    f"({completions[0].error})")

        usage_opt = TokenUsage()
        calls: list[OptimizerCall] = []
        candidates: list[CandidateRecord] = []
        known = self._known_scores()
        seen_here: dict[str, str] = {}
        for i, comp in enumerate(completions):
            usage_opt.add(comp)
            ext = (extract_for_layout(comp.text, c.layout, scaffolding=scaffolding, exemplars=shown)
                   if not comp.error else None)
            call = OptimizerCall(sample_index=(attempt - 1) * c.candidates + i, reply=comp.text,
                                 extraction=ext.method if ext else "none",
                                 reason=(ext.reason if ext else f"call failed: {comp.error}"), candidate_ids=[],
                                 prompt_tokens=comp.prompt_tokens, completion_tokens=comp.completion_tokens,
                                 attempts=comp.attempts, cached=comp.cached, error=comp.error)
            for text in (ext.candidates if ext else []):
                cid = f"s{t}c{st.new_serial()}"
                dist = word_edit_distance(current, text)
                cand = CandidateRecord(id=cid, text=text, sample_index=call.sample_index, extraction=call.extraction,
                                       edit_distance=dist, within_budget=dist <= budget)
                key = norm_text(text)
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

        step = StepRecord(step=t, attempt=attempt, budget=budget, budget_in_prompt=c.use_budget,
                          current_prompt=current, current_entry_id=st.current_entry_id,
                          retrieved=retrieved, exemplars=_ex_dicts(exemplars), meta_prompt=meta,
                          optimizer_calls=calls, candidates=candidates, usage_optimizer=usage_opt,
                          models=configured_models(st.settings))
        note_reported(step, "optimizer", st.settings.optimizer_model.model, (x.model for x in completions if x.model))
        self._score(step, on_progress, should_stop)
        step.seconds = time.perf_counter() - t0
        return step

    def _score(self, step: StepRecord, on_progress: Progress | None,
               should_stop: Callable[[], bool] | None) -> None:
        """Score the step's new candidates on dev (one pool, failed calls retried at the end)
        and compare each with the current prompt (:func:`apply_paired`); duplicates within
        the step share their twin's score, failed-call count and comparison, duplicates of an
        earlier prompt are compared from that prompt's kept records."""
        base = self.load_records(current_key(self.state, step), "dev") if self.load_records else []
        to_score = [cd for cd in step.candidates if cd.status == "scored"]
        if to_score:
            results = self.scorer.score([cd.text for cd in to_score], "dev", on_progress, should_stop)
            for cd, res in zip(to_score, results):
                apply_dev(cd, res)
                apply_paired(cd, base, [r.to_dict() for r in res.records])
                self.keep_records(cd.id, res)
                step.usage_dev = step.usage_dev.merge(res.usage)
            note_reported(step, "task", self.state.settings.task_model.model, (m for r in results for m in r.models))
        by_id = {cd.id: cd for cd in step.candidates}
        for cd in step.candidates:
            twin = by_id.get(cd.duplicate_of or "")
            if cd.status == "duplicate" and cd.dev_accuracy is None and twin is not None:
                cd.dev_accuracy, cd.dev_errors, cd.dev_n = twin.dev_accuracy, twin.dev_errors, twin.dev_n
                cd.dev_correct, cd.fixed = twin.dev_correct, twin.fixed
                cd.broken, cd.p_value = twin.broken, twin.p_value
            elif cd.status == "duplicate" and twin is None and cd.duplicate_of and self.load_records:
                self._compare_earlier(cd, base)

    def _compare_earlier(self, cd: CandidateRecord, base: list[dict]) -> None:
        """A duplicate of a prompt scored in an earlier step: its answered count, correct
        count and comparison with the current prompt, from that prompt's kept dev records."""
        assert self.load_records is not None
        key = "initial" if cd.duplicate_of == "entry0" else cd.duplicate_of or ""
        records = self.load_records(key, "dev")
        if not records:
            return
        answered = [r for r in records if not r.get("error")]
        cd.dev_n, cd.dev_errors = len(records), len(records) - len(answered)
        cd.dev_correct = sum(1 for r in answered if r.get("correct"))
        apply_paired(cd, base, records)
