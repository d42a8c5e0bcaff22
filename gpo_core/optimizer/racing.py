"""Racing: score a step's candidates on dev in rounds and stop scoring the hopeless ones.

Optional (``OptimizerSettings.racing``, off by default; ours, not the paper's). Instead of
scoring every candidate on all N dev examples, the candidates still in the race are scored
together on the next ``racing_batch`` dev examples (the same examples for all, in dev order,
so the comparison stays paired), and after each round a candidate is dropped ("raced out")
when it cannot beat the leader:

- **statistically**: the upper end of its Wilson interval at confidence ``1 - racing_alpha``
  (correct of answered examples so far, :func:`gpo_core.stats.wilson_interval`) is below the
  highest lower end among the other candidates still racing; or
- **for sure**: even if it answered every remaining dev example right, its final dev accuracy
  ``(correct + remaining) / (answered + remaining)`` would stay below another candidate's worst
  possible final accuracy ``correct / (answered + remaining)``.

Both comparisons are strict, so ties race on, and the leader is never dropped (its lower
bound is at most its upper bound; see :func:`race_round`). No candidate is dropped before it
has been scored on one full round. A raced-out candidate keeps the score of the examples it
was scored on, is recorded with status ``raced_out`` and a note ("raced out after 8 of 16 dev
examples ..."), and no decision policy may choose it; the task-model calls it was spared are
counted per step (``StepRecord.calls_saved``).

Sources: the rule is Maron & Moore's racing ("Hoeffding races: accelerating model selection
search for classification and function approximation", NIPS 1993; "The racing algorithm",
AI Review 11, 1997): evaluate all contenders on a growing sample, eliminate one as soon as its
upper confidence bound falls below the best lower bound, with Wilson's interval for a
proportion (tighter than Hoeffding's on 0/1 outcomes) in place of Hoeffding's. irace's F-race
(Birattari et al., GECCO 2002; López-Ibáñez et al. 2016) races configurations on instances
the same way with a Friedman test, and successive halving (Jamieson & Talwalkar, AISTATS 2016)
drops the worse half per round; GEPA screens candidates on mini-batches before a full score.
The bounds are per comparison, not corrected for multiple candidates: with ``racing_alpha``
0.05 an eventual full-dev winner is rarely, not never, dropped (``benchmarks/racing.py``
measures the agreement with full scoring).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gpo_core.models.base import TokenUsage
from gpo_core.scoring.evaluation import EvalResult
from gpo_core.stats import wilson_interval
from gpo_core.tasks.task import Example

__all__ = ["RaceOutcome", "RacerState", "calls_per_example", "merge_results", "race", "race_round"]

#: evaluate(prompts, examples, on_progress(done, total)) -> one EvalResult per prompt (the
#: scorer's single scoring path, :meth:`gpo_core.optimizer.scorer.Scorer.race`).
Evaluate = Callable[[list[str], list[Example], "Callable[[int, int], None] | None"], list[EvalResult]]


@dataclass
class RacerState:
    """One candidate in the race: examples scored so far (``scored``, failed calls included),
    ``answered`` of them, ``correct`` of those; ``out_after`` (examples scored when raced out,
    None while racing), ``upper`` (its bound when dropped) and ``threshold`` (what it had to
    reach), both accuracies in [0, 1]; ``reason``: "statistical" or "certain"."""

    scored: int = 0
    answered: int = 0
    correct: int = 0
    out_after: int | None = None
    upper: float | None = None
    threshold: float | None = None
    reason: str | None = None

    @property
    def racing(self) -> bool:
        return self.out_after is None


@dataclass
class RaceOutcome:
    """A candidate's result after the race: ``result`` covers the examples it was scored on
    (all of dev unless raced out); ``raced_out_after`` (examples scored when dropped, or None)
    and ``note`` ("raced out after 8 of 16 dev examples: ...", or None)."""

    result: EvalResult
    raced_out_after: int | None = None
    note: str | None = None
    racer: RacerState = field(default_factory=RacerState)


def calls_per_example(protocol: str) -> int:
    """Task-model calls per dev example under a scoring protocol: 2 for "reference" (the
    question, then the answer re-prompt), 1 otherwise (see :mod:`gpo_core.scoring.reprompt`)."""
    return 2 if protocol == "reference" else 1


def race_round(racers: Sequence[RacerState], n_total: int, alpha: float) -> list[int]:
    """Indices of the racers to drop after a round (all racing ones have scored the same
    examples). ``n_total``: dev examples in all; ``alpha``: the Wilson intervals are at
    confidence ``1 - alpha``. Sets ``out_after``, ``upper``, ``threshold`` and ``reason`` of
    each one dropped. Rule: see the module docstring. Never drops every racer: a racer is
    dropped only when another one is strictly ahead of it."""
    live = [i for i, r in enumerate(racers) if r.racing]
    if len(live) < 2:
        return []
    bounds = {i: wilson_interval(racers[i].correct, racers[i].answered, 1.0 - alpha) for i in live}
    worst_final: dict[int, float] = {}
    best_final: dict[int, float] = {}
    for i in live:
        r = racers[i]
        left = max(0, n_total - r.scored)
        denom = r.answered + left
        worst_final[i] = r.correct / denom if denom else 0.0
        best_final[i] = (r.correct + left) / denom if denom else 1.0
    dropped: list[int] = []
    for i in live:
        others = [j for j in live if j != i]
        lead_low = max(bounds[j][0] for j in others)
        lead_worst = max(worst_final[j] for j in others)
        r = racers[i]
        if r.answered and bounds[i][1] < lead_low:
            r.upper, r.threshold, r.reason = bounds[i][1], lead_low, "statistical"
        elif best_final[i] < lead_worst:
            r.upper, r.threshold, r.reason = best_final[i], lead_worst, "certain"
        else:
            continue
        dropped.append(i)
    for i in dropped:
        racers[i].out_after = racers[i].scored
    return dropped


def _note(r: RacerState, n_total: int, alpha: float) -> str:
    assert r.upper is not None and r.threshold is not None and r.out_after is not None
    head = f"raced out after {r.out_after} of {n_total} dev examples"
    if r.reason == "certain":
        return (f"{head}: even with every remaining example right it would reach {r.upper:.0%}, below another "
                f"candidate's worst possible {r.threshold:.0%}")
    return (f"{head}: {r.correct}/{r.answered} right, upper bound {r.upper:.0%} < leader's lower bound "
            f"{r.threshold:.0%} ({1 - alpha:.0%} Wilson)")


def merge_results(parts: Sequence[EvalResult]) -> EvalResult:
    """One prompt's results on consecutive slices of a split as one :class:`EvalResult`
    (records in order; counts, usage and seconds summed; models and warnings merged). ``parts`` must be
    non-empty and of one instruction and split."""
    if not parts:
        raise ValueError("merge_results needs at least one result")
    first = parts[0]
    usage = TokenUsage()
    for p in parts:
        usage = usage.merge(p.usage)
    n = sum(p.n for p in parts)
    n_correct = sum(p.n_correct for p in parts)
    n_errors = sum(p.n_errors for p in parts)
    answered = n - n_errors
    return EvalResult(instruction=first.instruction, split=first.split,
                      accuracy=n_correct / answered if answered else 0.0, n=n, n_correct=n_correct,
                      n_errors=n_errors, usage=usage, records=[r for p in parts for r in p.records],
                      seconds=sum(p.seconds for p in parts), models=sorted({m for p in parts for m in p.models}),
                      warnings=list(dict.fromkeys(w for p in parts for w in p.warnings)))


def race(prompts: list[str], examples: list[Example], evaluate: Evaluate, *, alpha: float, batch: int,
         on_progress: Callable[[int, int], None] | None = None,
         check: Callable[[list[EvalResult]], None] | None = None) -> list[RaceOutcome]:
    """Score ``prompts`` on ``examples`` in rounds of ``batch`` examples, dropping after each
    round the prompts :func:`race_round` rules out; one :class:`RaceOutcome` per prompt, in
    order. ``evaluate``: the scorer's path (:data:`Evaluate`), called once per round with the
    prompts still racing. on_progress(done, total): in examples x prompts (the total shrinks
    as prompts drop out). check(results so far): raises to stop (e.g. every call failed: the
    endpoint is down). Errors: whatever ``evaluate`` and ``check`` raise (e.g.
    EvaluationCancelled); ValueError for batch < 1 or no examples.
    Identical prompts should be deduplicated by the caller (each races as one)."""
    if batch < 1:
        raise ValueError(f"racing batch must be >= 1, got {batch}")
    if not examples:
        raise ValueError("racing needs at least one example")
    n = len(examples)
    racers = [RacerState() for _ in prompts]
    parts: list[list[EvalResult]] = [[] for _ in prompts]
    for start in range(0, n, batch):
        live = [i for i, r in enumerate(racers) if r.racing]
        chunk = examples[start:start + batch]
        done_before = sum(r.scored for r in racers)
        total = done_before + len(live) * (n - start)
        cb = None
        if on_progress is not None:
            units = len(live) * len(chunk)
            cb = (lambda d, t, b=done_before, u=units, tt=total: on_progress(b + (u * d // t if t else u), tt))
        results = evaluate([prompts[i] for i in live], chunk, cb)
        for i, res in zip(live, results):
            parts[i].append(res)
            r = racers[i]
            r.scored += res.n
            r.answered += res.n - res.n_errors
            r.correct += res.n_correct
        if check is not None:
            check([merge_results(p) for p in parts if p])
        if start + batch < n:
            race_round(racers, n, alpha)
    if on_progress is not None:
        done = sum(r.scored for r in racers)
        on_progress(done, done)
    return [RaceOutcome(merge_results(p), r.out_after, _note(r, n, alpha) if r.out_after is not None else None, r)
            for p, r in zip(parts, racers)]
