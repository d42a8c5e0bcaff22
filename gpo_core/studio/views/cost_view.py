"""What a run costs, as the app shows it: the estimate before "Create the run"
(:class:`gpo_core.costs.estimate.RunEstimate`), the live spend meter while it runs
(:class:`gpo_core.costs.spend.Spend`), and the calls racing saved."""

from __future__ import annotations

import pandas as pd

from gpo_core.costs.estimate import RunEstimate
from gpo_core.costs.spend import Spend
from gpo_core.runs.records import RunState

__all__ = ["calls_saved", "estimate_frame", "estimate_metrics", "money", "spend_fraction", "spend_text"]


def money(dollars: float | None) -> str:
    """US dollars for people: "$0.0123", "$1.23", or "no price known" for None."""
    if dollars is None:
        return "no price known"
    if dollars == 0:
        return "$0"
    return f"${dollars:.4f}" if dollars < 1 else f"${dollars:,.2f}"


def duration(seconds: float) -> str:
    """"about 40 s" below two minutes, else "about 2.3 min"; "under a second" near 0."""
    if seconds < 1:
        return "under a second"
    return f"about {seconds:.0f} s" if seconds < 120 else f"about {seconds / 60:.1f} min"


def estimate_metrics(est: RunEstimate) -> dict[str, str]:
    """The estimate's headline figures (label -> value): model calls (an upper bound),
    prompt + completion tokens, the time of one step and of the whole run, dollars."""
    return {"Model calls (at most)": f"{est.calls:,}",
            "Tokens (prompt + completion)": f"{est.prompt_tokens:,} + {est.completion_tokens:,}",
            "Time a step": duration(est.step_seconds),
            "Time": f"about {est.minutes:.1f} min" if est.minutes >= 0.1 else "under a minute",
            "Cost": money(est.dollars)}


def estimate_frame(est: RunEstimate) -> pd.DataFrame:
    """One row per model role: model, calls, prompt and completion tokens, minutes,
    dollars, and where the completion lengths, the latency and the token counts come from."""
    rows = [{"role": r.role, "model": r.model, "calls": r.calls, "prompt tokens": r.prompt_tokens,
             "completion tokens": r.completion_tokens, "minutes": round(r.seconds / 60, 1),
             "dollars": money(r.dollars), "completion lengths": r.completion_basis, "time": r.latency_basis,
             "tokens counted with": r.token_method} for r in est.roles.values()]
    return pd.DataFrame(rows, columns=["role", "model", "calls", "prompt tokens", "completion tokens", "minutes",
                                       "dollars", "completion lengths", "time", "tokens counted with"])


def spend_text(spend: Spend) -> str:
    """The live spend meter's line: "Spent: 12,345 tokens ($0.0031), 210 calls (40 cached,
    free) · cap 50,000 tokens (25% used)"."""
    money_ = money(spend.dollars)
    line = (f"Spent: {spend.tokens:,} tokens ({money_}), {spend.calls:,} calls "
            f"({spend.cached_calls:,} cached, free)")
    caps = []
    if spend.max_tokens:
        caps.append(f"{spend.max_tokens:,} tokens")
    if spend.max_cost:
        caps.append(f"${spend.max_cost:g}")
    if caps:
        used = spend.cap_used
        line += f" · cap {' / '.join(caps)}" + (f" ({100 * used:.0f}% used)" if used is not None else "")
    return line


def spend_fraction(spend: Spend) -> float | None:
    """How much of the cap is used, clipped to [0, 1] (for a progress bar), or None without a cap."""
    used = spend.cap_used
    return None if used is None else max(0.0, min(1.0, used))


def calls_saved(state: RunState) -> int:
    """Task-model calls racing did not make, over the run's steps."""
    return sum(int(getattr(st, "calls_saved", 0) or 0) for st in state.steps)


def estimate_caption(est: RunEstimate) -> str:
    """The line under the estimate: what it covers, that it is an upper bound (and whether
    approximate), and where the prices come from and as of when."""
    what = (f"{est.steps} steps x {est.candidates} candidates, dev {est.dev}, test {est.test}, "
            f"{est.protocol} protocol" + (", racing on" if est.racing else ""))
    approx = " Approximate: some token counts or completion lengths are not measured yet." if est.approximate else ""
    return (f"For {what}. Calls are an upper bound (duplicates, unusable replies, racing and cached answers "
            f"make fewer).{approx} {est.prices_note[:1].upper()}{est.prices_note[1:]}.")
