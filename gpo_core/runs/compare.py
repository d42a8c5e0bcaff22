"""Compare 2-6 saved runs: their settings (only what differs), final prompts (word diffs),
final test accuracies with 95% intervals, and paired tests on the test examples they share.

Each run's final prompt is :func:`gpo_core.runs.final.final_entry` (the rule every export
uses). Two runs are paired on the test examples both final prompts answered, matched by
input and target (:func:`gpo_core.stats.paired_counts`): runs on the same task, seed and
test size share their whole test split; runs on different splits share what overlaps, and
runs on different tasks share nothing (then no test is made, and the comparison says so).
The paired test is the exact McNemar test (:func:`gpo_core.stats.mcnemar_exact`; for
partial-credit metrics the exact sign test on per-example scores). With more than one
pair, p-values are also given adjusted for the number of pairs (Benjamini-Hochberg,
``scipy.stats.false_discovery_control``). A blind test that a run has not revealed stays
hidden here too (:func:`gpo_core.optimizer.overfit.is_test_hidden`).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpo_core.errors import ConfigError
from gpo_core.optimizer.direction import TrajectoryEntry
from gpo_core.optimizer.edits import DiffSegment, diff_text, word_diff, word_edit_distance
from gpo_core.optimizer.overfit import is_test_hidden
from gpo_core.runs.final import entry_score, final_entry, records_key
from gpo_core.runs.labels import RunLabel, load_label
from gpo_core.runs.records import RunState
from gpo_core.runs.repository import load_records, load_run
from gpo_core.stats import Proportion, mcnemar_exact, paired_counts

__all__ = ["MAX_RUNS", "MIN_RUNS", "ComparedRun", "PairedTest", "RunComparison", "SettingDifference",
           "compare_runs", "flat_settings"]

MIN_RUNS, MAX_RUNS = 2, 6


@dataclass(frozen=True)
class ComparedRun:
    """One run of a comparison. run_id: its folder's name (what the runs list and the
    command line call it); final: its final prompt's trajectory entry; final_dev /
    final_test: correct of answered of that prompt (None when not scored; final_test also
    None while a blind test is hidden, then ``test_hidden``); test_records: the final
    prompt's per-example test records ([] when none were kept or the test is hidden)."""

    run_id: str
    run_dir: Path
    label: RunLabel
    state: RunState
    final: TrajectoryEntry
    final_dev: Proportion | None
    final_test: Proportion | None
    test_hidden: bool
    test_records: list[dict] = field(default_factory=list, repr=False)

    @property
    def title(self) -> str:
        """The run's name, or its id when it has none."""
        return self.label.name or self.run_id


@dataclass(frozen=True)
class SettingDifference:
    """A setting whose value is not the same in every run: its dotted name ("optimizer.k",
    "task_model.model", "task.name") and one value per run, in the comparison's run order
    ("–" where a run does not have it)."""

    setting: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class PairedTest:
    """Two runs' final prompts on the test examples both answered. first / second: indexes
    into :attr:`RunComparison.runs`; shared: examples paired; second_better / first_better:
    examples the second run's prompt got right and the first's wrong, and the other way
    round (partial credit: a higher score); p_value: exact two-sided McNemar / sign-test p
    (None when nothing is shared); p_adjusted: the Benjamini-Hochberg p over all pairs
    compared (None with one pair or none); why: why there is no test, else ""."""

    first: int
    second: int
    shared: int
    second_better: int
    first_better: int
    p_value: float | None
    p_adjusted: float | None = None
    why: str = ""


@dataclass(frozen=True)
class RunComparison:
    """The comparison of :func:`compare_runs`: the runs in the order asked, the settings
    that differ, and one paired test per pair of runs (i < j)."""

    runs: list[ComparedRun]
    differences: list[SettingDifference]
    paired: list[PairedTest]

    def prompt_diffs(self) -> list[list[DiffSegment]]:
        """Word diff of each run's final prompt against the FIRST run's (the first: all equal)."""
        base = self.runs[0].final.prompt
        return [word_diff(base, r.final.prompt) for r in self.runs]

    def edit_distances(self) -> list[int]:
        """Word edit distance of each final prompt from the first run's (words)."""
        base = self.runs[0].final.prompt
        return [word_edit_distance(base, r.final.prompt) for r in self.runs]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no per-example records, no API key: settings never hold one)."""
        def score(p: Proportion | None) -> dict | None:
            return p.to_dict() if p is not None else None
        return {
            "runs": [{"run_id": r.run_id, "name": r.label.name, "tags": list(r.label.tags), "note": r.label.note,
                      "task": r.state.task.name, "steps_done": len(r.state.decided_steps),
                      "final_prompt": r.final.prompt, "final_is_start": r.final.id == 0,
                      "final_dev": score(r.final_dev), "final_test": score(r.final_test),
                      "test_hidden": r.test_hidden} for r in self.runs],
            "settings_differences": [{"setting": d.setting, "values": list(d.values)} for d in self.differences],
            "paired_tests": [{"first": self.runs[t.first].run_id, "second": self.runs[t.second].run_id,
                              "shared": t.shared, "second_better": t.second_better, "first_better": t.first_better,
                              "p_value": t.p_value, "p_adjusted": t.p_adjusted, "why": t.why} for t in self.paired],
        }

    def text(self) -> str:
        """The comparison as plain text (the ``compare`` command's output)."""
        lines = ["Runs:"]
        for i, r in enumerate(self.runs, 1):
            tags = f" [{', '.join(r.label.tags)}]" if r.label.tags else ""
            ident = f"{r.title}{tags} ({r.run_id})" if r.label.name else r.run_id + tags
            lines.append(f"  {i}. {ident}: task {r.state.task.name}, "
                         f"{len(r.state.decided_steps)} steps")
            lines.append(f"     final prompt: dev {_score_text(r.final_dev)}, test "
                         f"{'hidden (blind test not revealed)' if r.test_hidden else _score_text(r.final_test)}")
            if r.label.note:
                lines.append(f"     note: {r.label.note}")
        lines.append("")
        if self.differences:
            lines.append("Settings that differ:")
            for d in self.differences:
                lines.append(f"  {d.setting}: " + " | ".join(f"{i}: {v}" for i, v in enumerate(d.values, 1)))
        else:
            lines.append("Settings: identical in every run")
        lines.append("")
        lines.append("Final prompts (word diff against run 1: [-removed-] {+added+}):")
        for i, (r, segs, dist) in enumerate(zip(self.runs, self.prompt_diffs(), self.edit_distances()), 1):
            head = f"  {i}. " + ("" if i == 1 else f"({dist} words changed) ")
            lines.append(head + (r.final.prompt if i == 1 else diff_text(segs)))
        lines.append("")
        lines.append("Paired tests on shared test examples (exact McNemar; partial credit: sign test):")
        for t in self.paired:
            a, b = t.first + 1, t.second + 1
            if t.p_value is None:
                lines.append(f"  {a} vs {b}: no test ({t.why})")
                continue
            adj = f", adjusted p = {t.p_adjusted:.3g}" if t.p_adjusted is not None else ""
            lines.append(f"  {a} vs {b}: {t.shared} shared examples; {b} better on {t.second_better}, "
                         f"{a} better on {t.first_better}; p = {t.p_value:.3g}{adj}")
        return "\n".join(lines) + "\n"


def _score_text(p: Proportion | None) -> str:
    return "not scored" if p is None else p.text()


def flat_settings(state: RunState) -> dict[str, str]:
    """A run's settings as ``{"dotted.name": "value"}`` (JSON text of each value), plus the
    task's name, source, answer type, instruction position, starting instruction and warm
    start. Model settings hold no API key, so none can appear."""
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out[prefix] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    walk("", state.settings.to_dict())
    t = state.task
    walk("task", {"name": t.name, "source": t.source, "answer_type": t.answer_type,
                  "instruction_position": t.instruction_position, "start_instruction": t.initial_instruction,
                  "start_from": (t.start_from or {}).get("run_id", "") if t.start_from else ""})
    return out


def _differences(runs: Sequence[ComparedRun]) -> list[SettingDifference]:
    flats = [flat_settings(r.state) for r in runs]
    names: list[str] = []
    for f in flats:
        names += [k for k in f if k not in names]
    out = []
    for name in names:
        values = tuple(f.get(name, "–") for f in flats)
        if len(set(values)) > 1:
            out.append(SettingDifference(name, values))
    return out


def _paired(runs: Sequence[ComparedRun]) -> list[PairedTest]:
    tests: list[PairedTest] = []
    for i, j in itertools.combinations(range(len(runs)), 2):
        a, b = runs[i], runs[j]
        if a.test_hidden or b.test_hidden:
            tests.append(PairedTest(i, j, 0, 0, 0, None, why="a blind test is not revealed"))
            continue
        if not a.test_records or not b.test_records:
            tests.append(PairedTest(i, j, 0, 0, 0, None, why="no per-example test records of a final prompt"))
            continue
        second_better, first_better, shared = paired_counts(a.test_records, b.test_records)
        if shared == 0:
            tests.append(PairedTest(i, j, 0, 0, 0, None, why="no test examples in common"))
            continue
        tests.append(PairedTest(i, j, shared, second_better, first_better, mcnemar_exact(second_better, first_better)))
    done = [k for k, t in enumerate(tests) if t.p_value is not None]
    if len(done) > 1:
        from scipy.stats import false_discovery_control

        adjusted = false_discovery_control([tests[k].p_value for k in done], method="bh")
        for k, p in zip(done, adjusted):
            t = tests[k]
            tests[k] = PairedTest(t.first, t.second, t.shared, t.second_better, t.first_better, t.p_value,
                                  float(min(1.0, p)), t.why)
    return tests


def _compared(run_dir: Path) -> ComparedRun:
    state = load_run(run_dir)
    entry = final_entry(state)
    hidden = is_test_hidden(state)
    test = None if hidden else entry_score(state, entry, "test")
    records: list[dict] = []
    if not hidden and test is not None:
        records = load_records(run_dir, records_key(state, entry, "test"), "test") or []
    return ComparedRun(run_dir.name, run_dir, load_label(run_dir), state, entry,
                       entry_score(state, entry, "dev"), test, hidden, records)


def compare_runs(run_dirs: Sequence[Path]) -> RunComparison:
    """Compare the saved runs in ``run_dirs`` (2 to 6 run folders, in the order to show).

    Raises ConfigError ("runs") for fewer than 2 or more than 6 runs or a run named twice;
    RunFileError naming the file when a run (or its label, or the final prompt's test
    records) cannot be read. Reads only; nothing is written."""
    dirs = [Path(d) for d in run_dirs]
    if not MIN_RUNS <= len(dirs) <= MAX_RUNS:
        raise ConfigError("runs", f"pick {MIN_RUNS} to {MAX_RUNS} runs to compare (got {len(dirs)})")
    seen = [d.resolve() for d in dirs]
    if len(set(seen)) != len(seen):
        raise ConfigError("runs", "a run is named twice; pick different runs")
    runs = [_compared(d) for d in dirs]
    return RunComparison(runs, _differences(runs), _paired(runs))
