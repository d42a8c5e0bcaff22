"""What a run has spent, live: tokens and calls per model role, counted as each call ends.

:class:`RoleSpend` is the record (saved in run.json as ``RunState.spend``, one per role);
:class:`SpendMeter` counts into it from the calls themselves (:class:`SpendingChatModel`
wraps the task model and the optimizer model of a session), so the total includes work a
stop or a crash threw away (a discarded partial step, an undone step): money spent is spent.
A cache hit costs nothing: it counts in ``cached_calls`` / ``cached_tokens`` only.
:func:`cap_reason` says whether a spend cap (``OptimizerSettings.max_cost`` /
``max_spend_tokens``) is reached.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from gpo_core.models.base import ChatModel, ChatRequest, Completion, TokenUsage
from gpo_core.scoring.evaluation import EvaluationCancelled

if TYPE_CHECKING:
    from gpo_core.costs.prices import PriceTable
    from gpo_core.settings import RunSettings

__all__ = ["ROLES", "SpendingChatModel", "RoleSpend", "Spend", "SpendCapReached", "SpendMeter", "cap_reason",
           "check_cap_prices", "spend_from_usage", "spend_snapshot"]

ROLES = ("task", "optimizer")


class SpendCapReached(EvaluationCancelled):
    """Work stopped on the run's spend cap (``OptimizerSettings.max_cost`` /
    ``max_spend_tokens``) at a call boundary. Every finished step is saved; the step in
    progress was discarded (its calls are in the response cache, so redoing it costs nothing
    for them); ``RunState.stop_reason`` holds the message. Raising the cap continues the run."""


@dataclass
class RoleSpend:
    """Spend of one model role in a run.

    prompt_tokens / completion_tokens: tokens of calls a backend answered (cache hits
    excluded), as the backend reported them. calls: calls sent to the backend (answered or
    failed; cache hits excluded); answered: those that got an answer; failed_calls: those
    that ended in an error; cached_calls / cached_tokens: calls served from the response
    cache and what they cost when first made (free now). seconds: summed wall time of the
    answered calls (seconds), so ``seconds / answered`` is the measured latency per call.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    answered: int = 0
    failed_calls: int = 0
    cached_calls: int = 0
    cached_tokens: int = 0
    seconds: float = 0.0

    def add(self, c: Completion) -> None:
        """Count one finished call."""
        if c.cached:
            self.cached_calls += 1
            self.cached_tokens += c.prompt_tokens + c.completion_tokens
            return
        self.calls += 1
        self.prompt_tokens += c.prompt_tokens
        self.completion_tokens += c.completion_tokens
        if c.error is None:
            self.answered += 1
            self.seconds += float(c.latency_s or 0.0)
        else:
            self.failed_calls += 1

    @property
    def tokens(self) -> int:
        """Tokens spent (prompt + completion), cache hits excluded."""
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @staticmethod
    def from_dict(d: Mapping[str, Any] | None) -> RoleSpend:
        """Inverse of :meth:`to_dict`; unknown keys ignored, missing ones 0."""
        known = {f.name for f in fields(RoleSpend)}
        return RoleSpend(**{k: v for k, v in (d or {}).items() if k in known})


def spend_from_usage(usage: TokenUsage) -> RoleSpend:
    """A RoleSpend from a TokenUsage (for runs saved before spend was metered: no latency)."""
    sent = max(0, usage.calls - usage.cached_calls)
    return RoleSpend(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens, calls=sent,
                     answered=max(0, sent - usage.failed_calls), failed_calls=usage.failed_calls,
                     cached_calls=usage.cached_calls, cached_tokens=usage.cached_tokens)


@dataclass
class Spend:
    """A snapshot of a run's spend, for the app's meter and the CLI.

    roles: per role ("task", "optimizer", and "judge" when the LLM judge was called) its
    :class:`RoleSpend`. tokens: spent by both
    (cache hits free). dollars: at the price table's prices, or None when a role that spent
    tokens has no price (``unpriced`` names those models). prices_note: where the prices come
    from and as of when. max_cost / max_tokens: the caps (None: none); cap_used: the larger
    fraction of a cap used (0..1+, None without a cap); stop_reason: why the run stopped on
    its cap, if it did.
    """

    roles: dict[str, RoleSpend]
    dollars: float | None
    prices_note: str
    unpriced: list[str] = field(default_factory=list)
    max_cost: float | None = None
    max_tokens: int | None = None
    stop_reason: str | None = None

    @property
    def tokens(self) -> int:
        return sum(r.tokens for r in self.roles.values())

    @property
    def calls(self) -> int:
        return sum(r.calls for r in self.roles.values())

    @property
    def cached_calls(self) -> int:
        return sum(r.cached_calls for r in self.roles.values())

    @property
    def cap_used(self) -> float | None:
        used = []
        if self.max_tokens:
            used.append(self.tokens / self.max_tokens)
        if self.max_cost and self.dollars is not None:
            used.append(self.dollars / self.max_cost)
        return max(used) if used else None

    def text(self) -> str:
        """One line: "12,345 tokens spent ($0.0031), 210 calls (40 cached, free)" plus the cap."""
        money = "no price known" if self.dollars is None else f"${self.dollars:.4f}"
        line = f"{self.tokens:,} tokens spent ({money}), {self.calls} calls ({self.cached_calls} cached, free)"
        caps = []
        if self.max_tokens:
            caps.append(f"{self.max_tokens:,} tokens")
        if self.max_cost:
            caps.append(f"${self.max_cost:g}")
        if caps:
            line += f"; cap {' / '.join(caps)}"
        return line


def role_dollars(spend: Mapping[str, RoleSpend], settings: RunSettings, prices: PriceTable
                 ) -> tuple[float | None, list[str]]:
    """Dollars spent at ``prices`` and the models without a price that spent tokens (then
    the dollars are None)."""
    total = 0.0
    unpriced: list[str] = []
    for role, rs in spend.items():
        if not rs.tokens:
            continue
        price = prices.price_for(settings.model(role))
        if price is None:
            unpriced.append(settings.model(role).model)
            continue
        total += price.dollars(rs.prompt_tokens, rs.completion_tokens)
    return (None if unpriced else total), unpriced


def spend_snapshot(spend: Mapping[str, RoleSpend], settings: RunSettings, prices: PriceTable,
                   stop_reason: str | None = None) -> Spend:
    """A :class:`Spend` of the per-role ``spend`` of a run with ``settings`` at ``prices``."""
    dollars, unpriced = role_dollars(spend, settings, prices)
    roles = {r: RoleSpend.from_dict(spend[r].to_dict()) if r in spend else RoleSpend() for r in ROLES}
    roles.update({r: RoleSpend.from_dict(v.to_dict()) for r, v in spend.items() if r not in roles})  # the judge
    opt = settings.optimizer
    return Spend(roles, dollars, prices.note, unpriced, opt.max_cost, opt.max_spend_tokens, stop_reason)


def cap_reason(spend: Mapping[str, RoleSpend], settings: RunSettings, prices: PriceTable) -> str | None:
    """Why the run must stop on its spend cap, or None while under it. Tokens: spent tokens
    of both roles >= ``max_spend_tokens``; dollars: spent dollars >= ``max_cost`` (a model
    without a price is refused before the run by :func:`check_cap_prices`)."""
    opt = settings.optimizer
    tokens = sum(r.tokens for r in spend.values())
    if opt.max_spend_tokens is not None and tokens >= opt.max_spend_tokens:
        return f"spend cap reached: {tokens:,} tokens spent of a {opt.max_spend_tokens:,}-token cap"
    if opt.max_cost is not None:
        dollars, _ = role_dollars(spend, settings, prices)
        if dollars is not None and dollars >= opt.max_cost:
            return f"spend cap reached: ${dollars:.4f} spent of a ${opt.max_cost:g} cap"
    return None


class SpendMeter:
    """Counts every finished call of a run into ``spend`` (role -> RoleSpend; the run's
    ``RunState.spend``, updated in place), thread-safe. :meth:`wrap` gives the model to call."""

    def __init__(self, spend: dict[str, RoleSpend]):
        self.spend = spend
        self._lock = threading.Lock()
        for role in ROLES:
            self.spend.setdefault(role, RoleSpend())

    def record(self, role: str, c: Completion) -> None:
        with self._lock:
            self.spend.setdefault(role, RoleSpend()).add(c)

    def wrap(self, model: ChatModel, role: str) -> ChatModel:
        """``model`` with every call counted for ``role``."""
        return SpendingChatModel(model, role, self.record)


class SpendingChatModel:
    """A ChatModel that reports each finished call to ``record(role, completion)``; name,
    max_concurrency and any other attribute are the inner model's."""

    def __init__(self, inner: ChatModel, role: str, record: Callable[[str, Completion], None]):
        self.inner = inner
        self.role = role
        self._record = record
        self.name = inner.name
        self.max_concurrency = inner.max_concurrency

    def complete(self, request: ChatRequest) -> Completion:
        c = self.inner.complete(request)
        self._record(self.role, c)
        return c

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"SpendingChatModel({self.inner!r}, role={self.role!r})"


def check_cap_prices(settings: RunSettings, prices: PriceTable) -> None:
    """ConfigError (setting ``max_cost``) when a dollar cap is set but a model of the run has
    no price in ``prices``: the cap could not be kept, so the run is refused before any call."""
    from gpo_core.errors import ConfigError

    if settings.optimizer.max_cost is None:
        return
    for role in (*ROLES, "judge") if settings.uses_judge else ROLES:
        m = settings.model(role)
        if prices.price_for(m) is None:
            raise ConfigError("max_cost", f"no price for the {role} model {m.model!r} in the price table "
                                          f"({prices.note}); add it with --prices FILE (or $GPO_HOME/prices.toml), "
                                          "or cap tokens with --max-tokens instead")
