"""Seed variance: repeat a run with several seeds and report the final test accuracy's mean
and spread, so a user sees how much the optimizer's result moves from run to run.

The seed of a run (``SplitSettings.seed``) draws the dev/test split and the exemplars; the
optimizer model's samples differ with them (the meta-prompt shows other exemplars) and the
response cache keys on every request, so a seed never replays another seed's replies. With
a task folder whose splits are fixed (BIG-Bench Hard) the spread is that of the optimizer
(exemplars and sampling); with one file it also holds that of the split.

The CLI (``run --seeds 0,1,2``) runs each seed in ``OUT/seed-N`` through the same path as a
single run (:func:`gpo_core.runs.runner.run_cli`), then prints :meth:`SeedSummary.lines`.
The app calls :func:`repeat_runs` with its own models and run folders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpo_core.errors import ConfigError
from gpo_core.runs.final import compare_final_with_start
from gpo_core.runs.records import RunState, StepRecord
from gpo_core.stats import Proportion, mean_spread

__all__ = ["MAX_SEEDS", "SeedResult", "SeedSummary", "parse_seeds", "repeat_runs", "run_seeds_cli", "seed_result",
           "summarize"]

#: At most this many seeds in one request (each is a whole run).
MAX_SEEDS = 20

LoadRecords = Callable[[str, str], list[dict]]


def parse_seeds(text: str, flag: str = "--seeds") -> list[int]:
    """Seeds from "0,1,2" (commas and/or spaces; each a whole number, no repeats, at most
    :data:`MAX_SEEDS`). Raises ConfigError naming ``flag`` otherwise."""
    parts = [p for p in str(text).replace(",", " ").split() if p]
    if not parts:
        raise ConfigError(flag, "give at least one seed, e.g. 0,1,2")
    seeds: list[int] = []
    for p in parts:
        try:
            seeds.append(int(p))
        except ValueError:
            raise ConfigError(flag, f"each seed must be a whole number, got {p!r}") from None
    if len(set(seeds)) != len(seeds):
        raise ConfigError(flag, f"a seed is repeated in {text!r}; each seed runs once")
    if len(seeds) > MAX_SEEDS:
        raise ConfigError(flag, f"at most {MAX_SEEDS} seeds, got {len(seeds)}")
    return seeds


@dataclass(frozen=True)
class SeedResult:
    """One seed's run. final_prompt: its final prompt (:func:`gpo_core.runs.final.final_entry`);
    final_dev / final_test / start_test: correct of answered (test None without a test split);
    steps: steps decided; stopped_early: the early-stop line or None; run_dir: its folder."""

    seed: int
    final_prompt: str
    final_dev: Proportion | None
    final_test: Proportion | None
    start_test: Proportion | None
    steps: int
    stopped_early: str | None = None
    run_dir: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (accuracies with counts and 95% intervals)."""
        return {"seed": self.seed, "final_prompt": self.final_prompt, "steps": self.steps,
                "final_dev": self.final_dev.to_dict() if self.final_dev else None,
                "final_test": self.final_test.to_dict() if self.final_test else None,
                "start_test": self.start_test.to_dict() if self.start_test else None,
                "stopped_early": self.stopped_early, "run_dir": self.run_dir}


def seed_result(state: RunState, load_records: LoadRecords | None = None, run_dir: str | Path = "") -> SeedResult:
    """The :class:`SeedResult` of a (finished) run's state."""
    cmp = compare_final_with_start(state, load_records)
    return SeedResult(seed=state.settings.splits.seed, final_prompt=cmp.prompt,
                      final_dev=cmp.dev.final if cmp.dev else None, final_test=cmp.test.final if cmp.test else None,
                      start_test=cmp.test.start if cmp.test else None, steps=len(state.decided_steps),
                      stopped_early=(state.stopped_early or {}).get("reason"), run_dir=str(run_dir))


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


@dataclass(frozen=True)
class SeedSummary:
    """The runs of several seeds. split: "test" (or "dev" when no run has a test split, said
    so in :meth:`lines`); mean / sd / low / high: of the final prompt's accuracy on that
    split over the seeds (sd: sample standard deviation, in the same [0, 1] units);
    start_mean: the starting prompt's mean test accuracy (None without test)."""

    results: list[SeedResult]
    split: str
    mean: float
    sd: float
    low: float
    high: float
    start_mean: float | None

    def lines(self) -> list[str]:
        """Lines for people: one per seed (accuracy with its 95% interval and counts, the
        start's, the run folder), then the mean and spread."""
        out = []
        for r in self.results:
            final = r.final_test if self.split == "test" else r.final_dev
            start = f"; start {r.start_test.text()}" if r.start_test is not None else ""
            stop = "; stopped early" if r.stopped_early else ""
            out.append(f"seed {r.seed}: final {self.split} {final.text() if final else '–'}{start}; "
                       f"{r.steps} steps{stop}; {r.run_dir}")
        n = len(self.results)
        start = f"; starting prompt mean {_pct(self.start_mean)}" if self.start_mean is not None else ""
        note = "" if self.split == "test" else " (no test split: dev accuracy, which chose the prompts)"
        out.append(f"final {self.split} accuracy over {n} seed{'s' if n != 1 else ''}{note}: mean {_pct(self.mean)}, "
                   f"sd {100 * self.sd:.1f} points, range {_pct(self.low)}-{_pct(self.high)}{start}")
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return {"split": self.split, "mean": self.mean, "sd": self.sd, "low": self.low, "high": self.high,
                "start_mean": self.start_mean, "results": [r.to_dict() for r in self.results]}


def summarize(results: Iterable[SeedResult]) -> SeedSummary:
    """Mean and spread (:func:`gpo_core.stats.mean_spread`) of the final test accuracy over
    the seeds' results (dev accuracy when none has a test score). ConfigError when no seed
    has a score."""
    rs = list(results)
    split = "test" if rs and all(r.final_test is not None and r.final_test.value is not None for r in rs) else "dev"
    vals = [(r.final_test if split == "test" else r.final_dev) for r in rs]
    xs = [v.value for v in vals if v is not None and v.value is not None]
    if not xs:
        raise ConfigError("seeds", "no seed's run has a score to summarize")
    mean, sd, low, high = mean_spread(xs)
    starts = [r.start_test.value for r in rs if r.start_test is not None and r.start_test.value is not None]
    start_mean = mean_spread(starts)[0] if split == "test" and starts else None
    return SeedSummary(rs, split, mean, sd, low, high, start_mean)


def repeat_runs(task: Any, settings: Any, seeds: Iterable[int], make_models: Callable[[Any], Any],
                run_dir_for: Callable[[int], Path | None], *,
                on_seed: Callable[[SeedResult], None] | None = None,
                on_step: Callable[[int, StepRecord], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> SeedSummary:
    """Run ``task`` once per seed with ``settings`` (their ``splits.seed`` replaced), each to
    its end with the run's decision policy (and early stopping), and summarize.

    task: a :class:`~gpo_core.tasks.task.Task`; settings: :class:`~gpo_core.settings.RunSettings`;
    make_models(settings) -> :class:`~gpo_core.optimizer.session.Models`; run_dir_for(seed):
    the folder of that seed's run (a saved run there is resumed, not redone; None: not
    saved). on_seed(result) after each seed; on_step(seed, step) after each step;
    should_stop() stops between calls (the seeds done so far are summarized). Errors as
    :meth:`GPOSession.create` / :meth:`GPOSession.run_auto`."""
    from gpo_core.optimizer.session import GPOSession
    from gpo_core.runs.repository import RUN_FILE

    results: list[SeedResult] = []
    for seed in seeds:
        if should_stop and should_stop():
            break
        run_dir = run_dir_for(seed)
        s = settings.replace(splits=settings.splits.replace(seed=int(seed)))
        models = make_models(s)
        if run_dir is not None and (Path(run_dir) / RUN_FILE).exists():
            session = GPOSession.open(Path(run_dir), models, take_over=True)
        else:
            session = GPOSession.create(task, s, models, run_dir=run_dir)
        session.run_auto(on_step=(lambda st, _s=seed: on_step(_s, st)) if on_step else None, should_stop=should_stop)
        if should_stop and should_stop() and len(session.state.decided_steps) < session.config.steps \
                and not session.stop_note:
            break  # stopped mid-run: this seed's result would be partial
        result = seed_result(session.state, session.records, run_dir or "")
        results.append(result)
        if on_seed:
            on_seed(result)
    return summarize(results)


def run_seeds_cli(request_for: Callable[[int], Any], seeds: Iterable[int], out_dir: Path,
                  printer: Callable[[str], None] = print) -> str:
    """The CLI's ``run --seeds``: for each seed, the run ``request_for(seed)`` (a
    :class:`~gpo_core.runs.runner.RunRequest` whose ``out_dir`` is ``OUT/seed-N``) through
    :func:`~gpo_core.runs.runner.run_request`, its lines prefixed "[seed N]"; then the
    per-seed lines and writes ``OUT/seeds.json`` (:meth:`SeedSummary.to_dict`). Returns the
    last line: the mean and spread. Errors as :func:`~gpo_core.runs.runner.run_cli`."""
    import json

    from gpo_core.runs.runner import run_request

    results: list[SeedResult] = []
    for seed in seeds:
        req = request_for(seed)
        session, line = run_request(req, lambda text, _s=seed: printer(f"[seed {_s}] {text}"))
        printer(f"[seed {seed}] {line}")
        results.append(seed_result(session.state, session.records, req.out_dir))
    summary = summarize(results)
    lines = summary.lines()
    for text in lines[:-1]:
        printer(text)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "seeds.json").write_text(json.dumps(summary.to_dict(), ensure_ascii=False, indent=1) + "\n",
                                    encoding="utf-8")
    return lines[-1]
