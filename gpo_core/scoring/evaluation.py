"""Score prompts on labeled examples with the task model (the GPO scorer).

Accuracy of a prompt = fraction of ANSWERED examples whose extracted answer matches the
target (:mod:`gpo_core.scoring.answers`): a call that failed (timeout, HTTP 5xx after the
client's retries) is no answer, so it is recorded with its error but counted neither right
nor wrong. With ``retry_failed`` the failed calls are sent once more after all the others.
The instruction is rendered into each question by
:mod:`gpo_core.scoring.task_prompt` (paper: GPO, Tang et al. 2024, arXiv 2402.17564, Sec. 3 / code;
the candidate prompts of one step are all scored on the dev set).

All (prompt x example) calls of one :func:`evaluate_many` call run in ONE thread pool of
``min(concurrency, model.max_concurrency)`` workers, so a step of 8 candidates x 48 dev
examples costs ``ceil(384 / workers)`` waves of calls, not 8 sequential evaluations.

The results (:class:`ExampleRecord`, :class:`EvalResult`) live in :mod:`gpo_core.scoring.results`
and are re-exported here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed

from gpo_core.errors import CallCeilingError, ConfigError, GPOError
from gpo_core.metrics import Metric, get_metric
from gpo_core.models.base import ChatModel, ChatRequest, Completion, TokenUsage, summarize_warnings
from gpo_core.scoring.reprompt import PROTOCOLS, SECOND_TURN_MAX_TOKENS, plain_prompt, second_turn
from gpo_core.scoring.results import EvalResult, ExampleRecord
from gpo_core.scoring.task_prompt import task_messages
from gpo_core.tasks.task import ANSWER_TYPES, Example

__all__ = ["EvalResult", "EvaluationCancelled", "ExampleRecord", "evaluate", "evaluate_many", "failed_calls_note",
           "fill_failed"]


class EvaluationCancelled(GPOError):
    """``should_stop()`` returned True during :func:`evaluate_many`.

    Calls not yet started were cancelled; calls already running were awaited. No partial
    result is returned: the caller discards the step's partial work.
    """


def _safe_complete(model: ChatModel, request: ChatRequest) -> Completion:
    """model.complete, turning an (off-contract) exception into a failed Completion; a
    :class:`~gpo_core.errors.CallCeilingError` (the step's call ceiling) stops the work."""
    try:
        return model.complete(request)
    except CallCeilingError:
        raise
    except Exception as exc:  # noqa: BLE001 - a failing call is recorded, it must not crash the step
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
        return Completion(text="", error=reason, attempts=1)


def evaluate_many(
    instructions: list[str],
    examples: list[Example],
    model: ChatModel,
    *,
    answer_type: str,
    position: str,
    temperature: float = 0.0,
    max_tokens: int = 256,
    concurrency: int = 8,
    split: str = "dev",
    sample_index: int = 0,
    system_prompt: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    retry_failed: bool = False,
    protocol: str = "single",
    metric: Metric | None = None,
) -> list[EvalResult]:
    """Score several prompts on the same examples; one :class:`EvalResult` per instruction.

    instructions: prompts to score (len P; duplicates are scored once and share the result
    object). examples: the split (len N >= 1). model: the task model.
    answer_type / position: see :data:`gpo_core.tasks.task.ANSWER_TYPES` / ``INSTRUCTION_POSITIONS``.
    temperature, max_tokens (tokens), sample_index: passed in each :class:`ChatRequest`.
    concurrency: requested parallel calls; the pool has ``min(concurrency,
    model.max_concurrency)`` workers. Identical requests are sent once.
    on_progress(done, total): called from the calling thread, about every 1% of calls and at
    the end (total = distinct calls; during the retry pass, done and total both grow by the
    retried calls). should_stop(): polled from the calling thread before the work starts
    and after each finished call. retry_failed: once every call is done, send the distinct
    calls that failed once more (one pass); the retry's outcome replaces the failure and
    both calls count in ``usage``. Not sent again: failures the backend marks as not
    retryable (``Completion.retryable``), and nothing at all when no call was answered
    (the endpoint looks down; the caller reports it at once). protocol: "single" (the
    labelled prompt, the reply parsed) or "reference" (the question and instruction without
    labels, then an answer re-prompt whose reply is parsed: two calls an example; see
    :mod:`gpo_core.scoring.reprompt`); each record says which produced its answer.
    metric: how each answered output is scored (:mod:`gpo_core.metrics`); None: the answer
    type's exact rule. Its ``check(examples)`` runs before any call; its ``score_many`` runs
    once over every answered output. Accuracy = mean score over the answered examples;
    ``correct`` = score 1.0.

    Returns P results in the order of ``instructions``. A call that still fails is kept in
    the records with its error and left out of the accuracy (see :class:`EvalResult`).
    Raises :class:`ConfigError` (before any call) for an unknown answer type or position,
    concurrency < 1, no examples, or a target that is not of the answer type;
    :class:`EvaluationCancelled` when ``should_stop()`` turns True.
    """
    if answer_type not in ANSWER_TYPES:
        raise ConfigError(
            "answer_type",
            f"unknown answer type {answer_type!r}; expected one of {', '.join(ANSWER_TYPES)}",
        )
    if concurrency < 1:
        raise ConfigError("concurrency", f"must be at least 1, got {concurrency}")
    if protocol not in PROTOCOLS:
        raise ConfigError("protocol", f"unknown scoring protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    if not examples:
        raise ConfigError(f"{split} set", "has no examples to evaluate")
    if metric is None:
        metric = get_metric(answer_type)
    metric.check(examples)  # bad targets or metric settings: refused before any call
    unique = list(dict.fromkeys(instructions))

    # Render every (prompt x example) request up front; identical requests share one call.
    call_of: dict[ChatRequest, int] = {}
    requests: list[ChatRequest] = []
    plan: list[list[tuple[int, str]]] = []  # per unique instruction: (call index, prompt)
    for instruction in unique:
        row = []
        for ex in examples:
            if protocol == "reference":
                messages = ((("system", system_prompt),) if system_prompt else ()) + (
                    ("user", plain_prompt(instruction, ex.input, position)),)
            else:
                messages = task_messages(instruction, ex.input, position, system_prompt)
            req = ChatRequest(messages, temperature, max_tokens, sample_index)
            idx = call_of.get(req)
            if idx is None:
                idx = call_of[req] = len(requests)
                requests.append(req)
            row.append((idx, messages[-1][1]))
        plan.append(row)

    started = time.perf_counter()
    completions, first_failed = _run_round(requests, model, concurrency, on_progress, should_stop, retry_failed)
    # Reference protocol: a second turn per answered first call asks for the final answer.
    second_of: dict[int, int] = {}
    second_requests: list[ChatRequest] = []
    second_completions: list[Completion] = []
    second_failed: dict[int, Completion] = {}
    if protocol == "reference":
        question_of = {idx: ex.input for row in plan for ex, (idx, _) in zip(examples, row)}
        for idx, c in enumerate(completions):
            if c.error is None:
                req = requests[idx]
                follow = req.messages + (("assistant", c.text), ("user", second_turn(answer_type, question_of[idx])))
                second_of[idx] = len(second_requests)
                second_requests.append(ChatRequest(follow, temperature, min(max_tokens, SECOND_TURN_MAX_TOKENS),
                                                   sample_index))
        if second_requests:
            done = len(requests)
            cb = (lambda d, n: on_progress(done + d, done + n)) if on_progress else None
            second_completions, second_failed = _run_round(second_requests, model, concurrency, cb, should_stop,
                                                           retry_failed)
    seconds = time.perf_counter() - started

    # Per instruction and example: the call (first failure folded in) and the answer's text;
    # then ONE metric.score_many over every answered output (a judge metric batches its calls).
    rows: list[list[tuple[Completion, Completion | None, int | None, str, str]]] = []
    answered_at: list[tuple[int, int]] = []  # (row, example position) of each answered output
    answered_outputs: list[str] = []
    answered_examples: list[Example] = []
    usages: list[TokenUsage] = []
    spents: list[list[Completion]] = []
    for r, row in enumerate(plan):
        usage = TokenUsage()
        seen: set[int] = set()
        spent: list[Completion] = []
        cells = []
        for pos, (ex, (idx, prompt)) in enumerate(zip(examples, row)):
            c = completions[idx]
            j = second_of.get(idx)
            second = second_completions[j] if j is not None else None
            if idx not in seen:
                seen.add(idx)
                if idx in first_failed:
                    usage.add(first_failed[idx])
                usage.add(c)
                spent.append(c)
                if j is not None and second is not None:
                    if j in second_failed:
                        usage.add(second_failed[j])
                    usage.add(second)
                    spent.append(second)
            answer = c if second is None else second
            if second is not None and second.error is not None:
                c = Completion(text=c.text, prompt_tokens=c.prompt_tokens, completion_tokens=c.completion_tokens,
                               attempts=c.attempts, error=f"answer re-prompt: {second.error}", cached=c.cached,
                               model=c.model)
            if c.error is None:
                answered_at.append((r, pos))
                answered_outputs.append(answer.text)
                answered_examples.append(ex)
            cells.append((c, second, j, prompt, answer.text))
        rows.append(cells)
        usages.append(usage)
        spents.append(spent)
    scored = metric.score_many(answered_outputs, answered_examples) if answered_outputs else []
    if len(scored) != len(answered_outputs):
        raise GPOError(f"metric {metric.name!r} returned {len(scored)} scores for {len(answered_outputs)} outputs")
    result_at = dict(zip(answered_at, scored))

    by_instruction: dict[str, EvalResult] = {}
    for r, (instruction, row) in enumerate(zip(unique, plan)):
        records = []
        n_correct = n_errors = 0
        score_sum = 0.0
        for pos, (ex, (c, second, j, prompt, _text)) in enumerate(zip(examples, rows[r])):
            res = result_at.get((r, pos))
            if res is None:
                n_errors += 1
                score = None
            else:
                score = min(1.0, max(0.0, float(res.score)))
                score_sum += score
                n_correct += score == 1.0
            records.append(
                ExampleRecord(
                    input=ex.input,
                    target=ex.target,
                    rendered_prompt=prompt,
                    raw_output=c.text,
                    parsed_answer=res.parsed if res is not None else None,
                    correct=score == 1.0,
                    prompt_tokens=c.prompt_tokens,
                    completion_tokens=c.completion_tokens,
                    error=c.error,
                    attempts=c.attempts,
                    cached=c.cached,
                    protocol=protocol,
                    second_prompt=second_requests[j].messages[-1][1] if j is not None else None,
                    second_output=second.text if second is not None else None,
                    score=score,
                    reason=res.reason if res is not None else None,
                    metric_error=res.error if res is not None else None,
                    judge_prompt=res.judge_prompt if res is not None else None,
                    judge_output=res.judge_output if res is not None else None,
                    judge_prompt_tokens=res.judge_prompt_tokens if res is not None else 0,
                    judge_completion_tokens=res.judge_completion_tokens if res is not None else 0,
                )
            )
        answered = len(examples) - n_errors
        by_instruction[instruction] = EvalResult(
            instruction=instruction,
            split=split,
            accuracy=score_sum / answered if answered else 0.0,
            n=len(examples),
            n_correct=n_correct,
            n_errors=n_errors,
            usage=usages[r],
            records=records,
            seconds=seconds,
            models=sorted({m for idx, _ in row if (m := completions[idx].model)}),
            warnings=summarize_warnings(spents[r]),
            score_sum=score_sum,
            binary=metric.binary,
            metric=metric.name,
        )
    return [by_instruction[i] for i in instructions]


def evaluate(instruction: str, examples: list[Example], model: ChatModel, **kwargs) -> EvalResult:
    """Score one prompt: :func:`evaluate_many` with a single instruction (same keywords,
    same errors). Returns its :class:`EvalResult`."""
    return evaluate_many([instruction], examples, model, **kwargs)[0]


def failed_calls_note(split: str, res: EvalResult) -> str:
    """One line on a score's failed calls: "test: 4 of 4 calls failed (...): accuracy not
    measured" or "test: 1 of 4 calls failed (...): accuracy over the 3 answered"."""
    err = next((r.error for r in res.records if r.error), "unknown error")
    err = err if len(err) <= 160 else err[:157] + "..."
    what = ("accuracy not measured" if res.n_answered == 0
            else f"accuracy over the {res.n_answered} answered")
    return f"{split}: {res.n_errors} of {res.n} calls failed ({err}): {what}"


def fill_failed(old: EvalResult, examples: list[Example], model: ChatModel, **kwargs) -> EvalResult:
    """Complete a score with failed calls: send again only the examples whose record has an
    error, keep every answered record as it is, and return the merged result.

    old: the earlier result of one instruction on ``examples`` (its records in example
    order, one per example; e.g. loaded from the run's records). kwargs: as
    :func:`evaluate_many` (answer type, position, protocol, ...). The merged result's
    ``usage``, ``seconds``, ``models`` and ``warnings`` are those of the new calls only (the
    earlier calls were counted when they were made). Returns ``old`` unchanged when it has
    no failed record. Raises ConfigError when the records do not match ``examples``."""
    if len(old.records) != len(examples) or any(r.input != e.input for r, e in zip(old.records, examples)):
        raise ConfigError(f"{old.split} records", "do not match the split's examples; score the prompt again")
    failed = [i for i, r in enumerate(old.records) if r.error is not None]
    if not failed:
        return old
    new = evaluate_many([old.instruction], [examples[i] for i in failed], model, split=old.split, **kwargs)[0]
    records = list(old.records)
    for i, rec in zip(failed, new.records):
        records[i] = rec
    errors = sum(1 for r in records if r.error is not None)
    correct = sum(1 for r in records if r.error is None and r.correct)
    total = sum(r.value for r in records if r.error is None)
    answered = len(records) - errors
    return EvalResult(instruction=old.instruction, split=old.split, accuracy=total / answered if answered else 0.0,
                      n=len(records), n_correct=correct, n_errors=errors, usage=new.usage, records=records,
                      seconds=new.seconds, models=new.models, warnings=new.warnings, score_sum=total,
                      binary=new.binary, metric=new.metric)


def _run_round(requests: list[ChatRequest], model: ChatModel, concurrency: int,
               on_progress: Callable[[int, int], None] | None, should_stop: Callable[[], bool] | None,
               retry_failed: bool) -> tuple[list[Completion], dict[int, Completion]]:
    """One round of calls, then (``retry_failed``) one more pass over the retryable
    failures when anything was answered. Returns the completions and, by request index,
    the first failure of each call that was sent again."""
    completions = _run_calls(requests, model, concurrency, on_progress, should_stop)
    first_failed: dict[int, Completion] = {}
    if retry_failed:
        failed = [i for i, c in enumerate(completions) if c.error is not None and c.retryable]
        if failed and any(c.error is None for c in completions):
            total = len(requests)
            cb = (lambda d, n: on_progress(total + d, total + n)) if on_progress else None
            again = _run_calls([requests[i] for i in failed], model, concurrency, cb, should_stop)
            for i, c in zip(failed, again):
                first_failed[i] = completions[i]
                completions[i] = c
    return completions, first_failed


def _run_calls(
    requests: list[ChatRequest],
    model: ChatModel,
    concurrency: int,
    on_progress: Callable[[int, int], None] | None,
    should_stop: Callable[[], bool] | None,
) -> list[Completion]:
    """Run all requests in one pool; results in request order. See :func:`evaluate_many`."""
    total = len(requests)
    if should_stop is not None and should_stop():
        raise EvaluationCancelled(f"cancelled before any of {total} calls")
    workers = max(1, min(concurrency, int(getattr(model, "max_concurrency", 1) or 1), total))
    results: list[Completion | None] = [None] * total
    step = max(1, total // 100)
    done_count = last_reported = 0
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gpo-eval")
    try:
        futures = {pool.submit(_safe_complete, model, req): i for i, req in enumerate(requests)}
        for f in as_completed(futures):
            results[futures[f]] = f.result()
            done_count += 1
            if on_progress is not None and (
                done_count - last_reported >= step or done_count == total
            ):
                last_reported = done_count
                on_progress(done_count, total)
            if done_count < total and should_stop is not None and should_stop():
                for g in futures:
                    g.cancel()
                raise EvaluationCancelled(f"cancelled after {done_count} of {total} calls")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results  # type: ignore[return-value]
