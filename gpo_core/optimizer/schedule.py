"""Edit budget (step size) schedules, decayed like a learning rate.

GPO (Tang et al. 2024, Sec. 3.3 "update method", and the reference code's step-size
schedule): the meta-prompt says "change at most N words" and N decays over the run.
Convention for step t = 1..T (T = total steps), with optional linear warmup of W steps:

- fixed:  N_t = initial
- linear: N_t = floor(final + (initial - final) * (1 - t'/T'))
- cosine: N_t = floor(final + (initial - final) * (1 + cos(pi * t'/T')) / 2)

where t' = t - W and T' = T - W after warmup; during warmup (t <= W) the budget rises
linearly, N_t = floor(initial * t / W). For initial 50, final 10, T = 18, no warmup, cosine
gives 49 48 47 45 42 40 36 33 30 26 23 20 17 14 12 11 10 10.
"""

from __future__ import annotations

import math

from gpo_core.errors import ConfigError

SCHEDULE_KINDS = ("cosine", "linear", "fixed")


def validate_schedule(kind: str, initial: int, final: int, total_steps: int, warmup: int = 0) -> None:
    """Raise :class:`ConfigError` (naming the setting) for an impossible schedule."""
    if kind not in SCHEDULE_KINDS:
        raise ConfigError("schedule", f"unknown kind {kind!r}; choose one of {', '.join(SCHEDULE_KINDS)}")
    if total_steps < 1:
        raise ConfigError("steps", f"must be at least 1 (got {total_steps})")
    if initial < 1:
        raise ConfigError("budget_initial", f"must be at least 1 word (got {initial})")
    if kind != "fixed":
        if final < 1:
            raise ConfigError("budget_final", f"must be at least 1 word (got {final})")
        if final > initial:
            raise ConfigError("budget_final", f"final budget {final} is larger than initial budget {initial}")
    if warmup < 0 or (warmup > 0 and warmup >= total_steps):
        raise ConfigError("warmup", f"must be in 0..{total_steps - 1} (got {warmup})")


def edit_budget(t: int, *, kind: str = "cosine", initial: int = 50, final: int = 10,
                total_steps: int = 18, warmup: int = 0) -> int:
    """Edit budget in words for step ``t`` (1-based). Raises ConfigError on bad settings
    or a step outside 1..total_steps."""
    validate_schedule(kind, initial, final, total_steps, warmup)
    if not 1 <= t <= total_steps:
        raise ConfigError("step", f"step {t} is outside 1..{total_steps}")
    if kind == "fixed":
        return initial
    if warmup and t <= warmup:
        return max(1, math.floor(initial * t / warmup))
    tt, big_t = t - warmup, total_steps - warmup
    frac = tt / big_t
    if kind == "linear":
        value = final + (initial - final) * (1 - frac)
    else:
        value = final + (initial - final) * (1 + math.cos(math.pi * frac)) / 2
    # Guard against float fuzz such as 29.999999999 for an exact integer.
    return math.floor(value + 1e-9)


def budget_schedule(*, kind: str = "cosine", initial: int = 50, final: int = 10,
                    total_steps: int = 18, warmup: int = 0) -> list[int]:
    """Budgets for steps 1..total_steps, in words (list of length total_steps).
    Raises ConfigError naming the setting for an impossible schedule."""
    validate_schedule(kind, initial, final, total_steps, warmup)
    return [edit_budget(t, kind=kind, initial=initial, final=final, total_steps=total_steps, warmup=warmup)
            for t in range(1, total_steps + 1)]
