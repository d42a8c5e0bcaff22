"""The model work of one GPO step, up to (not including) the decision.

A step (Tang et al. 2024, Sec. 3 and Algorithm 1): retrieve the update direction from the
trajectory (:mod:`gpo_core.optimizer.direction`), build the meta-prompt with the edit budget
from the schedule (:mod:`gpo_core.optimizer.metaprompt`), sample N candidates from the
optimizer model, extract each reply's instruction (:mod:`gpo_core.optimizer.extraction`),
measure its word edit distance, dedupe against everything already fully scored, and score
the new ones on dev with the task model (:class:`~gpo_core.optimizer.scorer.Scorer`); each
candidate is checked for leaks (:mod:`gpo_core.optimizer.leaks`) and, with ``drop_flagged``,
a flagged one is kept unscored (status "flagged"). The
result is a pending :class:`~gpo_core.runs.records.StepRecord`; which candidate becomes
the next prompt is for :mod:`gpo_core.optimizer.policies` or the user.

Bounds (issue 15): a step keeps at most N (``--candidates``) candidates, one per reply
first, then further ones in reply order; extra tagged spans are dropped and recorded
(:attr:`OptimizerCall.dropped`, the call's reason, a step warning). Every call of the step
is counted against :func:`gpo_core.optimizer.ceiling.step_call_ceiling`. A step whose dev
calls were not all answered is completed by :meth:`Proposer.complete` (only the failed
calls sent again).
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from gpo_core.errors import EndpointDownError
from gpo_core.models.base import ChatModel, ChatRequest, Completion, TokenUsage, avoid_key, summarize_warnings
from gpo_core.models.embeddings import Embedder
from gpo_core.optimizer import templates as T
from gpo_core.optimizer.ceiling import CallMeter, MeteredChatModel, step_call_ceiling
from gpo_core.optimizer.direction import select_update_direction
from gpo_core.optimizer.edits import word_edit_distance
from gpo_core.optimizer.extraction import extract_for_layout
from gpo_core.optimizer.failure_feedback import Failure, failure_rng, pick_failures
from gpo_core.optimizer.leaks import LeakChecker
from gpo_core.optimizer.metaprompt import build_meta_prompt, pick_exemplars
from gpo_core.optimizer.policies import norm_text, rejected_texts
from gpo_core.optimizer.racing import RaceOutcome, calls_per_example
from gpo_core.optimizer.schedule import edit_budget
from gpo_core.optimizer.scorer import Progress, Scorer
from gpo_core.runs.records import CandidateRecord, OptimizerCall, RunState, StepRecord
from gpo_core.scoring.evaluation import EvalResult, failed_calls_note
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
    """Copy a dev score into the candidate: accuracy over the answered examples (None when
    nothing was answered: no number), the failed calls, usage; status "failed" when nothing
    was answered, "incomplete" when some calls still failed after the retry pass, else
    "scored"."""
    cd.dev_accuracy, cd.dev_n, cd.dev_errors, cd.usage = res.measured_accuracy, res.n, res.n_errors, res.usage
    cd.dev_correct = res.n_correct if res.binary else res.total_score  # partial credit: the score sum
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
    and note the model the server reported. A test score with failed calls is over the
    answered examples, with the failed count kept (``test_errors``) and a step warning; with
    none answered its accuracy is None ("not measured"), never 0. Errors as
    :meth:`Scorer.score`."""
    res = scorer.score([cand.text], split, on_progress, should_stop)[0]
    if split == "dev":
        apply_dev(cand, res)
        if cand.raced_out_after is not None:  # scored on all of dev now (accepted by hand): no longer raced out
            cand.race_note = f"{cand.race_note}; then scored on all {res.n} dev examples when accepted by hand"
            cand.raced_out_after = None
        if base_records is not None:
            apply_paired(cand, base_records, [r.to_dict() for r in res.records])
        step.usage_dev = step.usage_dev.merge(res.usage)
    else:
        cand.test_accuracy, cand.test_errors = res.measured_accuracy, res.n_errors
        step.usage_test = step.usage_test.merge(res.usage)
        if res.n_errors:
            add_warning(step, failed_calls_note("test", res))
    for w in res.warnings:
        add_warning(step, w)
    keep_records(cand.id, res)
    note_reported(step, "task", scorer.state.settings.task_model.model, res.models)
    return res


def add_warning(step: StepRecord, warning: str) -> None:
    """Add ``warning`` to ``step.warnings`` once."""
    if warning not in step.warnings:
        step.warnings.append(warning)


def cap_candidates(found: list[list[str]], limit: int) -> list[list[str]]:
    """At most ``limit`` candidates over all replies: each reply's first candidate first (in
    reply order), then further ones in reply order. ``found``: per reply, its candidates.
    Returns per reply the kept ones (a prefix of its list)."""
    kept = [0] * len(found)
    left = limit
    for i, texts in enumerate(found):
        if left and texts:
            kept[i], left = 1, left - 1
    for i, texts in enumerate(found):
        take = min(left, len(texts) - kept[i])
        kept[i] += take
        left -= take
    return [texts[:k] for texts, k in zip(found, kept)]


def draw_exemplars(settings: RunSettings, splits: TaskSplits, t: int, attempt: int = 1) -> list[Example]:
    """The meta-prompt exemplars of step ``t`` (attempt ``attempt``) of a run with
    ``settings`` on ``splits`` (see :meth:`Proposer.exemplars`; the cost estimate draws the same)."""
    c = settings.optimizer
    seed = settings.splits.seed
    key = f"{seed}:exemplars" if c.exemplar_draw == "once" else f"{seed}:{t}:{attempt}"
    return pick_exemplars(splits.exemplars or splits.train, c.n_exemplars, random.Random(key))


def apply_race(cd: CandidateRecord, outcome: RaceOutcome) -> None:
    """Mark a candidate racing dropped (:mod:`gpo_core.optimizer.racing`): status
    "raced_out", the dev examples it was scored on and the note saying why."""
    if outcome.raced_out_after is not None:
        cd.status, cd.raced_out_after, cd.race_note = "raced_out", outcome.raced_out_after, outcome.note


def layout_sentences(layout: str, position: str) -> list[str]:
    """The fixed sentences of a meta-prompt layout, as sent (for the echo filter)."""
    lay = T.LAYOUTS[layout]
    where = T.POSITION_WORDS.get(position, "")
    return [lay.header.format(placeholder=T.PLACEHOLDER), lay.trajectory_header,
            lay.exemplars_header.format(placeholder=T.PLACEHOLDER, where=where),
            lay.request.format(placeholder=T.PLACEHOLDER, where=where), lay.budget, lay.answer_format]


def embedded_optimizer_system(settings: RunSettings) -> str | None:
    """The system message an embedded optimizer model gets before the meta-prompt
    (:data:`gpo_core.optimizer.templates.EMBEDDED_OPTIMIZER_SYSTEM`); None for remote models."""
    return T.EMBEDDED_OPTIMIZER_SYSTEM if settings.optimizer_model.backend == "local" else None


def grammar_max_words(current: str) -> int:
    """The most words an embedded optimizer's reply grammar admits when the prompt in use is
    ``current``: :data:`~gpo_core.optimizer.templates.GRAMMAR_MAX_WORDS` (40), or the current
    prompt's words plus ``GRAMMAR_GROWTH_WORDS`` (10, the schedule's final edit budget) when
    that is more, at most ``GRAMMAR_CEILING_WORDS``. Ours (issue 14): a fixed 40 held a 40-word
    prompt at 40 words; short prompts keep the 40 the usable-reply share was measured with."""
    return max(T.GRAMMAR_MAX_WORDS, min(T.GRAMMAR_CEILING_WORDS, len(current.split()) + T.GRAMMAR_GROWTH_WORDS))


def optimizer_request(settings: RunSettings, meta: str, sample_index: int, tried: Iterable[str] = (),
                      max_words: int | None = None) -> ChatRequest:
    """The optimizer call for meta-prompt ``meta``, sample ``sample_index``. Remote models get
    the meta-prompt alone. Embedded ones (issue 14) also get :func:`embedded_optimizer_system`
    and reply under the layout's grammar (:meth:`~gpo_core.optimizer.templates.Layout.reply_grammar`:
    exactly one tagged, single-paragraph instruction) and may not end their instruction on
    one of the prompts ``tried`` (``ChatRequest.avoid``): measured on Qwen2.5-Coder-1.5B, from
    step 2 on every reply copied the current prompt and the steps scored nothing new.
    max_words: the grammar's word limit (:func:`grammar_max_words`; None: the default 40)."""
    om = settings.optimizer_model
    system = embedded_optimizer_system(settings)
    if system is None:
        return ChatRequest.user(meta, temperature=om.temperature, max_tokens=om.max_tokens, sample_index=sample_index)
    return ChatRequest(messages=(("system", system), ("user", meta)), temperature=om.temperature,
                       max_tokens=om.max_tokens, sample_index=sample_index,
                       grammar=T.LAYOUTS[settings.optimizer.layout].reply_grammar(max_words),
                       avoid=tuple(sorted({avoid_key(t) for t in tried})))


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

    def _tried(self) -> list[str]:
        """Every prompt of the trajectory and every candidate of earlier steps (any status)."""
        return [e.prompt for e in self.state.trajectory] + [c.text for s in self.state.steps for c in s.candidates]

    def _sample(self, meta: str, first_index: int, n: int, max_words: int | None = None) -> list[Completion]:
        tried = self._tried()
        reqs = [optimizer_request(self.state.settings, meta, first_index + i, tried, max_words) for i in range(n)]
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
                if (c.dev_accuracy is not None and c.status in ("scored", "duplicate") and not c.dev_errors
                        and c.raced_out_after is None):
                    known.setdefault(norm_text(c.text), (c.id, c.dev_accuracy))
        return known

    def exemplars(self, t: int, attempt: int) -> list[Example]:
        """The exemplars of step ``t`` (attempt ``attempt``): drawn once per run from the
        format split (else train) when ``exemplar_draw`` is "once" (the reference draws its
        ``format_index`` once per task), else redrawn per step and attempt."""
        return draw_exemplars(self.state.settings, self.splits, t, attempt)

    def failures(self, t: int, attempt: int) -> list[Failure]:
        """Failure feedback of step ``t`` (attempt ``attempt``): up to
        ``OptimizerSettings.failure_feedback`` wrong dev records of the current prompt, drawn by
        :func:`gpo_core.optimizer.failure_feedback.failure_rng` (run seed, step, attempt); []
        when off or without ``load_records`` (see :mod:`gpo_core.optimizer.failure_feedback`)."""
        st = self.state
        n = st.settings.optimizer.failure_feedback
        if n <= 0 or self.load_records is None:
            return []
        entry = next((e for e in st.trajectory if e.id == st.current_entry_id), None)
        key = (entry.candidate_id if entry is not None else None) or "initial"
        return pick_failures(self.load_records(key, "dev"), n, failure_rng(st.settings.splits.seed, t, attempt))

    def _rejected_for_meta(self) -> list[str]:
        if not self.state.settings.optimizer.show_rejections:
            return []
        chosen = {norm_text(e.prompt) for e in self.state.trajectory if e.chosen}
        return [t for t in rejected_texts(self.state) if norm_text(t) not in chosen][-MAX_REJECTED_SHOWN:]

    def propose(self, t: int, on_progress: Progress | None = None,
                should_stop: Callable[[], bool] | None = None) -> StepRecord:
        """The model work of step ``t``; returns the new pending StepRecord (not yet added to
        the run). Raises EndpointDownError when every optimizer call or every dev call
        failed, CallCeilingError past the step's call ceiling, EvaluationCancelled on
        should_stop."""
        t0 = time.perf_counter()
        optimizer, scorer = self.optimizer, self.scorer
        meter = self._meter(f"step {t}")
        self.optimizer = MeteredChatModel(optimizer, meter)
        self.scorer = copy.copy(scorer)
        self.scorer.task_model = MeteredChatModel(scorer.task_model, meter)
        try:
            return self._propose(t, t0, on_progress, should_stop)
        finally:
            self.optimizer, self.scorer = optimizer, scorer

    def _meter(self, what: str) -> CallMeter:
        return CallMeter(step_call_ceiling(self.state.settings, len(self.splits.dev), len(self.splits.test)), what)

    def _propose(self, t: int, t0: float, on_progress: Progress | None,
                 should_stop: Callable[[], bool] | None) -> StepRecord:
        st = self.state
        c = st.settings.optimizer
        attempt = 1 + sum(1 for s in st.steps if s.step == t)
        budget = budget_for(st.settings, t)
        current = st.current_prompt
        retrieved = select_update_direction(st.trajectory, current, k=c.k, strategy=c.selection,
                                            embedder=self.embedder, newest_id=st.current_entry_id,
                                            pool=c.direction_pool, order=c.direction_order)
        exemplars = self.exemplars(t, attempt)
        failures = self.failures(t, attempt)
        meta = build_meta_prompt(retrieved=retrieved, current_prompt=current, exemplars=exemplars,
                                 position=st.task.instruction_position, budget=budget if c.use_budget else None,
                                 rejected=self._rejected_for_meta(), layout=c.layout, failures=failures)
        system = embedded_optimizer_system(st.settings)
        scaffolding = layout_sentences(c.layout, st.task.instruction_position) + ([system] if system else [])
        scaffolding += [T.FAILURES_HEADER] if failures else []
        shown = [text for e in exemplars for text in (e.input, e.target)]
        shown += [text for f in failures for text in (f.input, f.target)]
        if on_progress:
            on_progress("optimizer", 0, c.candidates)
        completions = self._sample(meta, (attempt - 1) * c.candidates, c.candidates,
                                   grammar_max_words(current))
        if on_progress:
            on_progress("optimizer", c.candidates, c.candidates)
        if all(comp.error for comp in completions):
            err = completions[0].error or "unknown error"
            looks = "" if any(f"HTTP {code}" in err for code in (401, 403, 404)) else \
                "; the optimizer endpoint looks down"
            raise EndpointDownError(f"every optimizer call failed{looks} ({err})")

        usage_opt = TokenUsage()
        calls: list[OptimizerCall] = []
        candidates: list[CandidateRecord] = []
        known = self._known_scores()
        seen_here: dict[str, str] = {}
        leaks = LeakChecker.for_run(st.splits, st.task.initial_instruction)
        exts = [extract_for_layout(comp.text, c.layout, scaffolding=scaffolding, exemplars=shown,
                                   limit=c.candidates) if not comp.error else None for comp in completions]
        kept = cap_candidates([ext.candidates if ext else [] for ext in exts], c.candidates)
        warnings: list[str] = []
        for i, (comp, ext, texts) in enumerate(zip(completions, exts, kept)):
            usage_opt.add(comp)
            dropped = (ext.dropped + len(ext.candidates) - len(texts)) if ext else 0
            reason = ext.reason if ext else f"call failed: {comp.error}"
            if ext and len(texts) < len(ext.candidates):
                note = f"{len(ext.candidates) - len(texts)} candidate(s) dropped: at most {c.candidates} a step"
                reason = f"{reason}; {note}" if reason else note
            if dropped:
                warnings.append(f"optimizer reply {i + 1}: {dropped} candidate(s) beyond the {c.candidates} a step "
                                "allows were dropped")
            call = OptimizerCall(sample_index=(attempt - 1) * c.candidates + i, reply=comp.text,
                                 extraction=ext.method if ext else "none",
                                 reason=reason, candidate_ids=[],
                                 prompt_tokens=comp.prompt_tokens, completion_tokens=comp.completion_tokens,
                                 attempts=comp.attempts, cached=comp.cached, error=comp.error, dropped=dropped)
            for text in texts:
                cid = f"s{t}c{st.new_serial()}"
                dist = word_edit_distance(current, text)
                cand = CandidateRecord(id=cid, text=text, sample_index=call.sample_index, extraction=call.extraction,
                                       edit_distance=dist, within_budget=dist <= budget)
                cand.flags, cand.flag_notes = leaks.check(text)
                key = norm_text(text)
                if c.drop_flagged and cand.flags:
                    cand.status = "flagged"  # dropped unscored; the step keeps it with its flag_notes
                elif key in seen_here:
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
                          optimizer_system=system, failures=[f.to_dict() for f in failures],
                          optimizer_calls=calls, candidates=candidates, usage_optimizer=usage_opt,
                          models=configured_models(st.settings))
        note_reported(step, "optimizer", st.settings.optimizer_model.model, (x.model for x in completions if x.model))
        failed = [x for x in completions if x.error]
        if failed:
            warnings.append(f"{len(failed)} of {len(completions)} optimizer calls failed ({failed[0].error}): "
                            f"the step has candidates from {len(completions) - len(failed)} replies")
        for w in [*warnings, *summarize_warnings(completions)]:
            add_warning(step, w)
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
        opt = self.state.settings.optimizer
        if to_score and opt.racing and len(to_score) > 1 and len(self.splits.dev) > opt.racing_batch:
            outcomes = self.scorer.race([cd.text for cd in to_score], on_progress, should_stop)
            per_example = calls_per_example(opt.protocol)
            for cd, out in zip(to_score, outcomes):
                apply_dev(cd, out.result)
                apply_race(cd, out)
                apply_paired(cd, base, [r.to_dict() for r in out.result.records])
                self.keep_records(cd.id, out.result)
                step.usage_dev = step.usage_dev.merge(out.result.usage)
                step.calls_saved += (len(self.splits.dev) - out.result.n) * per_example
                for w in out.result.warnings:
                    add_warning(step, w)
            note_reported(step, "task", self.state.settings.task_model.model,
                          (m for o in outcomes for m in o.result.models))
            to_score = []
        if to_score:
            results = self.scorer.score([cd.text for cd in to_score], "dev", on_progress, should_stop)
            for cd, res in zip(to_score, results):
                apply_dev(cd, res)
                apply_paired(cd, base, [r.to_dict() for r in res.records])
                self.keep_records(cd.id, res)
                step.usage_dev = step.usage_dev.merge(res.usage)
                for w in res.warnings:
                    add_warning(step, w)
            note_reported(step, "task", self.state.settings.task_model.model, (m for r in results for m in r.models))
        self._share_twins(step, base)

    def complete(self, step: StepRecord, on_progress: Progress | None = None,
                 should_stop: Callable[[], bool] | None = None) -> int:
        """Complete a step whose dev calls were not all answered (``step.unanswered``): for
        each "incomplete" or "failed" candidate not rejected, send again only its failed
        dev calls (its answered records are kept, :meth:`Scorer.complete`), then recount its
        score, its comparison with the current prompt and its twins'. The step's usage grows
        by the new calls; a warning says what was re-sent. Counted against the step's call
        ceiling. Returns the calls still unanswered. EvaluationCancelled on should_stop."""
        todo = [cd for cd in step.candidates if cd.status in ("incomplete", "failed") and not cd.rejected]
        if not todo:
            return step.unanswered
        before = step.unanswered
        meter = self._meter(f"step {step.step} (completing)")
        scorer = copy.copy(self.scorer)
        scorer.task_model = MeteredChatModel(self.scorer.task_model, meter)
        base = self.load_records(current_key(self.state, step), "dev") if self.load_records else []
        for cd in todo:
            old = self.load_records(cd.id, "dev") if self.load_records else []
            res = scorer.complete(cd.text, "dev", old, on_progress, should_stop)
            apply_dev(cd, res)
            apply_paired(cd, base, [r.to_dict() for r in res.records])
            self.keep_records(cd.id, res)
            step.usage_dev = step.usage_dev.merge(res.usage)
            for w in res.warnings:
                add_warning(step, w)
            note_reported(step, "task", self.state.settings.task_model.model, res.models)
        self._share_twins(step, base, refresh=True)
        after = step.unanswered
        add_warning(step, f"completed later: {before} unanswered dev call(s) sent again, "
                          f"{before - after} answered, {after} still unanswered")
        return after

    def _share_twins(self, step: StepRecord, base: list[dict], refresh: bool = False) -> None:
        """Duplicates within the step take their twin's score, failed-call count and
        comparison (``refresh``: again, after the twin was completed); duplicates of an
        earlier prompt are compared from that prompt's kept records."""
        by_id = {cd.id: cd for cd in step.candidates}
        for cd in step.candidates:
            twin = by_id.get(cd.duplicate_of or "")
            if cd.status == "duplicate" and (cd.dev_accuracy is None or refresh) and twin is not None:
                cd.dev_accuracy, cd.dev_errors, cd.dev_n = twin.dev_accuracy, twin.dev_errors, twin.dev_n
                cd.dev_correct, cd.fixed = twin.dev_correct, twin.fixed
                cd.broken, cd.p_value = twin.broken, twin.p_value
                cd.raced_out_after, cd.race_note = twin.raced_out_after, twin.race_note
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
