"""What a run will cost, before it runs: calls, prompt and completion tokens, minutes, dollars.

:func:`estimate_run` walks the run the engine would make (GPO, Tang et al. 2024, Algorithm 1
as run by :class:`~gpo_core.optimizer.session.GPOSession`): the starting prompt scored on dev
and test, then per step N optimizer calls on that step's meta-prompt, N candidates scored on
dev and the chosen one on test (times 2 calls an example under the reference protocol's
answer re-prompt). The prompts counted are the REAL ones of this task: each step's
meta-prompt is built by :func:`gpo_core.optimizer.metaprompt.build_meta_prompt` with the
run's layout, exemplars (:func:`~gpo_core.optimizer.proposer.draw_exemplars`) and edit
budget, and every task prompt by the scoring protocol's own renderer
(:func:`gpo_core.scoring.task_prompt.task_messages` / :mod:`gpo_core.scoring.reprompt`), on
the run's actual dev and test examples; tokens are counted as each model counts them
(:mod:`gpo_core.costs.tokens`).

What cannot be known before the run is assumed, and each assumption is named in the
estimate (``RoleEstimate.completion_basis``, ``notes``):

- candidate instructions are not written yet: each is counted as long as the mean candidate
  of past runs of this optimizer model, else as the starting instruction plus the step's edit
  budget in words;
- completion lengths: the mean of past calls of the same model (the run itself on resume,
  and the ``history`` runs given), else the completion cap (an upper bound);
- latency: the mean of past calls, else the configured defaults below;
- the candidates scored on dev a step: the share of past replies of the same optimizer model
  that gave a new candidate, else all N (an upper bound: duplicates and replies without a
  candidate make fewer calls, as do raced-out candidates and cache hits); the policy chooses
  one each step (its test scoring counted).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gpo_core.costs.prices import PriceTable, load_prices
from gpo_core.costs.spend import RoleSpend
from gpo_core.costs.tokens import TokenCounter, counter_for
from gpo_core.optimizer.direction import Retrieved
from gpo_core.optimizer.failure_feedback import Failure
from gpo_core.optimizer.metaprompt import build_meta_prompt
from gpo_core.optimizer.policies import norm_text
from gpo_core.optimizer.proposer import budget_for, draw_exemplars
from gpo_core.optimizer.racing import calls_per_example
from gpo_core.runs.records import RunState
from gpo_core.scoring.reprompt import SECOND_TURN_MAX_TOKENS, plain_prompt, second_turn
from gpo_core.scoring.task_prompt import task_messages
from gpo_core.settings import LOCAL_DEFAULT_MODEL, QWEN_CODER_1_5B, SMOLLM2_135M, ModelSettings, RunSettings
from gpo_core.tasks.task import Example, Task, TaskSplits

__all__ = ["EMBEDDED_SPEED", "REMOTE_LATENCY", "RoleEstimate", "RunEstimate", "estimate_run", "recent_runs"]

#: Configured speed of each embedded model when no call was measured yet: prompt tokens and
#: completion tokens per second of one call on 2 CPU cores (benchmarks/embedded_optimizer.py,
#: results/embedded_optimizer.md, 2026-11-22, 2 threads). A local ``.gguf`` file of unknown
#: speed is estimated at the slowest embedded model's speed, and the estimate says so.
EMBEDDED_SPEED: dict[str, tuple[float, float]] = {SMOLLM2_135M: (209.0, 43.7), QWEN_CODER_1_5B: (65.7, 12.5)}
#: Configured latency of a remote model when no call was measured yet (ours, a typical hosted
#: API): seconds to the first token, and completion tokens per second after it.
REMOTE_LATENCY = (0.6, 60.0)


@dataclass
class RoleEstimate:
    """The estimate of one model role ("task", "optimizer" or "judge").

    model: the model, for people. calls: calls it will make. prompt_tokens /
    completion_tokens: in tokens. completion_basis: where the completion length comes from
    ("measured: ..." or "at most: ..."), measured_completion: whether it was measured.
    seconds: wall time of its calls (seconds), latency_basis: from what. workers: calls in
    flight at once. dollars: at the price table's price, None without a price.
    token_method / exact_tokens: how prompt tokens were counted (:mod:`gpo_core.costs.tokens`).
    """

    role: str
    model: str
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    completion_basis: str = ""
    measured_completion: bool = False
    seconds: float = 0.0
    latency_basis: str = ""
    workers: int = 1
    dollars: float | None = None
    token_method: str = ""
    exact_tokens: bool = False

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class RunEstimate:
    """What a run (or the rest of a resumed run) will cost. ``roles``: per role its
    :class:`RoleEstimate`; ``steps`` to run (of ``total_steps``), ``candidates`` a step, dev
    and test examples, the scoring ``protocol``, whether the starting prompt is still to be
    scored (``includes_start``), ``racing``; ``notes``: the assumptions and caveats, one line
    each; ``prices_note``: where the prices come from and as of when; ``pending``: a saved
    run's pending step is decided first. ``step_seconds``: wall time of one step in seconds
    (its optimizer calls, its candidates on dev and the chosen prompt on test), what the
    Optimize page shows as the time a step."""

    roles: dict[str, RoleEstimate]
    steps: int
    total_steps: int
    candidates: int
    dev: int
    test: int
    protocol: str
    includes_start: bool
    racing: bool = False
    notes: list[str] = field(default_factory=list)
    prices_note: str = ""
    pending: bool = False
    step_seconds: float = 0.0

    @property
    def calls(self) -> int:
        return sum(r.calls for r in self.roles.values())

    @property
    def prompt_tokens(self) -> int:
        return sum(r.prompt_tokens for r in self.roles.values())

    @property
    def completion_tokens(self) -> int:
        return sum(r.completion_tokens for r in self.roles.values())

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def minutes(self) -> float:
        """Wall time in minutes: the roles' calls run one after the other (the steps' phases
        depend on each other), each role's calls ``workers`` at a time."""
        return sum(r.seconds for r in self.roles.values()) / 60.0

    @property
    def dollars(self) -> float | None:
        """US dollars at the price table's prices; None when a model has no price."""
        values = [r.dollars for r in self.roles.values()]
        return None if any(v is None for v in values) else float(sum(v for v in values if v is not None))

    @property
    def approximate(self) -> bool:
        """True when a token count is not the model's own or a completion length is not measured."""
        return any(not r.exact_tokens or not r.measured_completion for r in self.roles.values())

    def lines(self) -> list[str]:
        """The estimate for people, one line each (the CLI prints them before a run)."""
        what = (f"{self.steps} steps" + (f" (of {self.total_steps})" if self.steps != self.total_steps else "")
                + f" x {self.candidates} candidates, dev {self.dev}, test {self.test}, {self.protocol} protocol"
                + (", starting prompt included" if self.includes_start else ""))
        out = [f"estimate before running {what}:"]
        for r in self.roles.values():
            out.append(f"  {r.role} model {r.model}: {r.calls:,} calls, {r.prompt_tokens:,} prompt + "
                       f"{r.completion_tokens:,} completion tokens ({r.completion_basis}); "
                       f"{_money(r.dollars)}; {r.seconds / 60:.1f} min ({r.latency_basis})")
        out.append(f"  total: {self.calls:,} calls, {self.tokens:,} tokens, about {self.minutes:.1f} min, "
                   f"{_money(self.dollars)}" + (" (approximate)" if self.approximate else ""))
        methods = sorted({f"{r.role} model: {r.token_method}" for r in self.roles.values()})
        out.append("  tokens counted with " + "; ".join(methods))
        if self.pending:
            out.append("  the pending step is decided first (its test scoring counted), then the steps above")
        out.append("  " + self.prices_note)
        out += [f"  note: {n}" for n in self.notes]
        return out

    def to_dict(self) -> dict:
        """JSON-ready: the totals, the per-role figures and the notes."""
        return {"calls": self.calls, "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "minutes": self.minutes, "dollars": self.dollars, "approximate": self.approximate,
                "steps": self.steps, "total_steps": self.total_steps, "candidates": self.candidates, "dev": self.dev,
                "test": self.test, "protocol": self.protocol, "includes_start": self.includes_start,
                "racing": self.racing, "notes": list(self.notes), "prices_note": self.prices_note,
                "roles": {k: {**vars(v), "tokens": v.tokens} for k, v in self.roles.items()}}


def _money(d: float | None) -> str:
    if d is None:
        return "no price known"
    return "$0 (no per-token price)" if d == 0 else f"${d:.4f}" if d < 1 else f"${d:,.2f}"


@dataclass
class _Measured:
    """Past calls of one model in one role: spend summed, candidate texts seen."""

    spend: RoleSpend = field(default_factory=RoleSpend)
    candidate_texts: list[str] = field(default_factory=list)
    replies: int = 0          # optimizer calls of past steps
    new_candidates: int = 0   # candidates they gave that were scored on dev (not duplicates, not dropped)


def _measure(history: Iterable[RunState], role: str, model: ModelSettings) -> _Measured:
    out = _Measured()
    for st in history:
        if st.settings.model(role).describe() != model.describe():
            continue
        rs = st.spend.get(role)
        if rs is not None:
            out.spend = RoleSpend.from_dict({k: getattr(out.spend, k) + getattr(rs, k)
                                             for k in rs.to_dict()})
        if role == "optimizer":
            out.candidate_texts += [c.text for s in st.steps for c in s.candidates if c.origin == "optimizer"]
            out.replies += sum(len(s.optimizer_calls) for s in st.steps)
            out.new_candidates += sum(1 for s in st.steps for c in s.candidates if c.origin == "optimizer"
                                      and c.status not in ("duplicate", "over_budget", "flagged"))
    return out


def _first_messages(instruction: str, ex: Example, position: str, protocol: str) -> tuple[tuple[str, str], ...]:
    if protocol == "reference":
        return (("user", plain_prompt(instruction, ex.input, position)),)
    return task_messages(instruction, ex.input, position)


def _task_prompt_tokens(counter: TokenCounter, instruction: str, examples: Sequence[Example], position: str,
                        protocol: str, answer_type: str) -> tuple[int, int]:
    """(first-turn prompt tokens, second-turn prompt tokens without the first reply) summed
    over ``examples`` for ``instruction``."""
    first = second = 0
    for ex in examples:
        msgs = _first_messages(instruction, ex, position, protocol)
        first += counter.count(msgs)
        if protocol == "reference":
            second += counter.count(msgs + (("assistant", ""), ("user", second_turn(answer_type, ex.input))))
    return first, second


def _completion(measured: _Measured, cap: int, role: str, flag: str) -> tuple[float, str, bool]:
    rs = measured.spend
    if rs.answered:
        mean = rs.completion_tokens / rs.answered
        return mean, f"measured: {mean:.1f} a call over {rs.answered:,} past calls", True
    return float(cap), f"at most: the cap of {cap} a call ({flag}), no past calls measured", False


def _latency(model: ModelSettings, measured: _Measured, prompt_per_call: float, completion_per_call: float,
             override: float | None) -> tuple[float, str]:
    if override is not None:
        return override, f"{override:.2f} s a call, as given"
    rs = measured.spend
    if rs.answered and rs.seconds > 0:
        return rs.seconds / rs.answered, f"measured {rs.seconds / rs.answered:.2f} s a call"
    if model.backend == "demo":
        return 0.0, "demo model: instant"
    if model.backend == "local":
        name = model.model.strip() or LOCAL_DEFAULT_MODEL
        known = name in EMBEDDED_SPEED
        pre, dec = EMBEDDED_SPEED[name] if known else min(EMBEDDED_SPEED.values())
        s = prompt_per_call / pre + completion_per_call / dec
        return s, (f"configured {pre:.0f} prompt / {dec:.0f} completion tokens a second"
                   + ("" if known else ": the slowest embedded model's speed, this file's is not measured"))
    first, rate = REMOTE_LATENCY
    s = first + completion_per_call / rate
    return s, f"configured {first:g} s + {rate:.0f} completion tokens a second"


def estimate_run(settings: RunSettings | None = None, task: Task | None = None, *, splits: TaskSplits | None = None,
                 state: RunState | None = None, prices: PriceTable | None = None,
                 history: Iterable[RunState] = (), latency_s: dict[str, float] | None = None) -> RunEstimate:
    """Estimate a new run of ``task`` with ``settings`` (splits drawn as
    :func:`gpo_core.optimizer.session.plan_run` draws them, unless ``splits`` is given), or
    with ``state`` the rest of a saved run (its settings, examples and spend; steps already
    decided are not counted, nor the starting prompt once scored).

    prices: the price table (default :func:`gpo_core.costs.prices.load_prices`). history:
    past runs whose calls measure completion lengths, candidate lengths and latency for the
    same model (``state`` counts too). latency_s: seconds a call per role, overriding both.
    Returns a :class:`RunEstimate`. Raises ConfigError for bad settings or an empty dev
    split (as creating the run would), ValueError without ``task`` or ``state``."""
    from gpo_core.optimizer.session import plan_run

    prices = prices or load_prices()
    history = list(history)
    if state is not None:
        settings = state.settings
        s = state.splits
        ex = lambda key: [Example(d["input"], d["target"]) for d in s.get(key) or []]  # noqa: E731
        splits = TaskSplits(ex("train"), ex("dev"), ex("test"), ex("exemplars") or ex("train"))
        position, answer_type = state.task.instruction_position, state.task.answer_type
        initial = state.task.initial_instruction
        done = len(state.decided_steps)
        first_step = done + 1 + (1 if state.pending_step is not None else 0)
        includes_start = state.initial is None
        history.append(state)
    else:
        if task is None or settings is None:
            raise ValueError("estimate_run needs settings and a task, or a saved run's state")
        settings, splits = plan_run(task, settings, splits)
        position, answer_type, initial = task.instruction_position, task.answer_type, task.initial_instruction
        first_step, includes_start = 1, True
    assert splits is not None and settings is not None
    opt = settings.optimizer
    n, k_dev, k_test = opt.candidates, len(splits.dev), len(splits.test)
    cpe = calls_per_example(opt.protocol)
    reference = opt.protocol == "reference"
    steps = list(range(first_step, opt.steps + 1))
    notes: list[str] = []
    roles: dict[str, RoleEstimate] = {}

    # ---- optimizer model: N calls a step on the step's real meta-prompt
    om = settings.optimizer_model
    oc = counter_for(om)
    o_meas = _measure(history, "optimizer", om)
    o_comp, o_basis, o_known = _completion(o_meas, om.max_tokens, "optimizer", "--optimizer-max-tokens")
    init_tokens = oc.count_text(initial)
    texts = list({norm_text(t): t for t in o_meas.candidate_texts}.values())
    if texts:
        cand_len = {t: sum(oc.count_text(x) for x in texts) / len(texts) for t in steps}
        notes.append(f"candidate instructions counted at {next(iter(cand_len.values()), 0):.0f} tokens, the mean of "
                     f"{len(texts)} past candidates of this optimizer model")
    else:
        words = max(1, len(initial.split()))
        per_word = init_tokens / words if initial.strip() else 1.3
        cand_len = {t: init_tokens + per_word * (budget_for(settings, t) if opt.use_budget else 0) for t in steps}
        notes.append("candidate instructions counted as the starting instruction plus the step's edit budget in "
                     "words (no past candidates of this optimizer model measured)")
    o_prompt = 0.0
    # failure feedback: at most N wrong dev examples a step, counted as the first N dev examples
    # with their target as the answer (an estimate: which are wrong is known only when run)
    failures = [Failure(i, e.input, e.target, e.target) for i, e in enumerate(splits.dev[:opt.failure_feedback])]
    if failures:
        notes.append(f"failure feedback counted as {len(failures)} dev examples in every meta-prompt (fewer are shown "
                     "when the current prompt gets fewer wrong)")
    for t in steps:
        pool = t if opt.direction_pool == "chosen" else 1 + (t - 1) * n
        n_ret = min(opt.k, pool)
        retrieved = [Retrieved(i, initial, 0.5, 0, None, "") for i in range(n_ret)]
        meta = build_meta_prompt(retrieved=retrieved, current_prompt=initial,
                                 exemplars=draw_exemplars(settings, splits, t, 1), position=position,
                                 budget=budget_for(settings, t) if opt.use_budget else None, layout=opt.layout,
                                 failures=failures)
        delta = cand_len[t] - init_tokens
        shown_candidates = (n_ret - (1 if pool <= opt.k else 0)) + (1 if t > 1 else 0)
        o_prompt += n * (oc.count((("user", meta),)) + delta * shown_candidates)
    o_calls = n * len(steps)
    # candidates scored on dev a step: N when every reply gives a new one (an upper bound), else
    # the share of past replies of this optimizer model that did (duplicates and empty replies don't)
    if o_meas.replies:
        scored_per_step = n * min(1.0, o_meas.new_candidates / o_meas.replies)
        notes.append(f"{scored_per_step:.2f} of {n} candidates a step scored on dev: {o_meas.new_candidates} of "
                     f"{o_meas.replies} past replies of this optimizer model gave a new candidate (at most {n})")
    else:
        scored_per_step = float(n)
    roles["optimizer"] = RoleEstimate("optimizer", om.describe(), o_calls, round(o_prompt), round(o_calls * o_comp),
                                      o_basis, o_known, token_method=oc.method, exact_tokens=oc.exact)

    # ---- task model: start on dev + test, then N x dev + test a step (x2 with the re-prompt)
    tm = settings.task_model
    tc = counter_for(tm)
    t_meas = _measure(history, "task", tm)
    t_comp, t_basis, t_known = _completion(t_meas, tm.max_tokens, "task", "--task-max-tokens")
    second_comp = t_comp if t_known else float(min(tm.max_tokens, SECOND_TURN_MAX_TOKENS))
    dev_first, dev_second = _task_prompt_tokens(tc, initial, splits.dev, position, opt.protocol, answer_type)
    test_first, test_second = _task_prompt_tokens(tc, initial, splits.test, position, opt.protocol, answer_type)
    t_init = tc.count_text(initial)

    def scoring(first: int, second: int, n_ex: int, delta: float) -> tuple[float, float]:
        """(prompt, completion) tokens of scoring one instruction on a split."""
        prompt = first + delta * n_ex
        completion = t_comp * n_ex
        if reference:
            prompt += second + (delta + t_comp) * n_ex
            completion += second_comp * n_ex
        return prompt, completion

    t_prompt = t_completion = 0.0
    t_calls = 0
    if includes_start:
        for first, second, n_ex in ((dev_first, dev_second, k_dev), (test_first, test_second, k_test)):
            p, c = scoring(first, second, n_ex, 0.0)
            t_prompt, t_completion, t_calls = t_prompt + p, t_completion + c, t_calls + n_ex * cpe
    if state is not None and state.pending_step is not None and k_test:
        delta = (cand_len.get(first_step, init_tokens) - init_tokens) * (t_init / max(1, init_tokens))
        p, c = scoring(test_first, test_second, k_test, delta)
        t_prompt, t_completion, t_calls = t_prompt + p, t_completion + c, t_calls + k_test * cpe
    for t in steps:
        delta = (cand_len[t] - init_tokens) * (t_init / max(1, init_tokens))  # in the task model's tokens
        p, c = scoring(dev_first, dev_second, k_dev, delta)
        t_prompt, t_completion = t_prompt + scored_per_step * p, t_completion + scored_per_step * c
        t_calls += round(scored_per_step * k_dev * cpe)
        if k_test:
            p, c = scoring(test_first, test_second, k_test, delta)
            t_prompt, t_completion, t_calls = t_prompt + p, t_completion + c, t_calls + k_test * cpe
    if reference and not t_known:
        t_basis += f"; answer re-prompts at most {second_comp:.0f}"
    roles["task"] = RoleEstimate("task", tm.describe(), t_calls, round(t_prompt), round(t_completion), t_basis,
                                 t_known, token_method=tc.method, exact_tokens=tc.exact)

    # ---- judge model (the llm_judge metric): one call per task-model answer
    timed = [("optimizer", om, o_meas), ("task", tm, t_meas)]
    step_calls = {"optimizer": float(n), "task": (scored_per_step * k_dev + k_test) * cpe}
    if settings.uses_judge:
        from gpo_core.metrics.judge import judge_messages
        from gpo_core.metrics.judge_template import DEFAULT_RUBRIC

        jm = settings.judge()
        jc = counter_for(jm)
        j_meas = _measure(history, "judge", jm)
        j_comp, j_basis, j_known = _completion(j_meas, jm.max_tokens, "judge",
                                               "Judge model · Max tokens on the Models page")
        mopts = opt.metric_options
        rubric, scale = str(mopts.get("rubric") or DEFAULT_RUBRIC), str(mopts.get("scale") or "1-10")
        sample = [*splits.dev, *splits.test][:20]
        answer = " ".join(["word"] * max(1, round(t_comp)))  # an answer of the task model's expected length
        per_call = (sum(jc.count(judge_messages(rubric, scale, ex, answer)) for ex in sample) / len(sample)
                    if sample else 0.0)
        j_calls = round(t_calls / cpe)
        roles["judge"] = RoleEstimate("judge", jm.describe(), j_calls, round(per_call * j_calls),
                                      round(j_calls * j_comp), j_basis, j_known, token_method=jc.method,
                                      exact_tokens=jc.exact)
        timed.append(("judge", jm, j_meas))
        step_calls["judge"] = scored_per_step * k_dev + k_test
        notes.append("judge model: one call per task-model answer, each prompt counted with an answer of the task "
                     "model's expected length")

    # ---- time and money
    step_seconds = 0.0
    for role, model, meas in timed:
        r = roles[role]
        per_prompt = r.prompt_tokens / r.calls if r.calls else 0.0
        per_comp = r.completion_tokens / r.calls if r.calls else 0.0
        latency, basis = _latency(model, meas, per_prompt, per_comp, (latency_s or {}).get(role))
        cap = n if role == "optimizer" else max(1, model.concurrency)
        r.workers = 1 if model.backend == "local" else max(1, min(model.concurrency, cap))
        r.seconds = r.calls * latency / r.workers
        step_seconds += step_calls[role] * latency / r.workers
        r.latency_basis = basis + (f", {r.workers} in flight" if r.workers > 1 else "")
        price = prices.price_for(model)
        r.dollars = None if price is None else price.dollars(r.prompt_tokens, r.completion_tokens)
        if price is None:
            notes.append(f"no price for the {role} model {model.model!r} in the price table: add it with --prices "
                         "FILE or $GPO_HOME/prices.toml")
    if o_meas.replies:
        notes.append("calls expected from past runs; " + ("raced-out candidates and " if opt.racing else "")
                     + "cached answers (free) make fewer")
    else:
        notes.append("calls are an upper bound: duplicate candidates, replies without a usable candidate"
                     + (", raced-out candidates" if opt.racing else "") + " and cached answers (free) make fewer")
    if opt.racing and k_dev > opt.racing_batch and n > 1:
        spared = (n - 1) * (k_dev - opt.racing_batch) * cpe * len(steps)
        notes.append(f"racing is on: dev scoring can spare up to {spared:,} task calls "
                     f"({spared / max(1, t_calls):.0%}) when all but one candidate drop out after the first round")
    if not math.isfinite(o_prompt):  # pragma: no cover - defensive
        raise ValueError("estimate overflow")
    return RunEstimate(roles, len(steps), opt.steps, n, k_dev, k_test, opt.protocol, includes_start, opt.racing,
                       notes, prices.note, pending=state is not None and state.pending_step is not None,
                       step_seconds=step_seconds)


def recent_runs(root: Path | None = None, limit: int = 10) -> list[RunState]:
    """The ``limit`` most recently saved runs under ``root`` (default: the app's runs folder,
    ``$GPO_HOME/runs``), without their examples: the measured history an estimate of a new
    run learns completion lengths, candidate lengths and latency from. Unreadable runs are
    skipped."""
    from gpo_core.runs.repository import RUN_FILE, default_runs_root, load_run_and_data

    root = Path(root) if root is not None else default_runs_root()
    try:
        files = sorted(root.glob(f"*/{RUN_FILE}"), key=lambda p: p.stat().st_mtime, reverse=True)[:limit]
    except OSError:
        return []
    out: list[RunState] = []
    for f in files:
        try:
            out.append(load_run_and_data(f.parent, with_data=False)[0])
        except Exception:  # noqa: BLE001 - a damaged or foreign run is no history; skip it
            continue
    return out
