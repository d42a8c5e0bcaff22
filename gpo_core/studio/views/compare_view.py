"""Tables of a run comparison for the Results page (:mod:`gpo_core.runs.compare`): the runs
with their final prompts' accuracies (95% intervals), the settings that differ, and the paired
tests. Accuracies as "62.5% [30.6–86.3%] (5/8)"; p-values to 3 significant digits."""

from __future__ import annotations

import pandas as pd

from gpo_core.runs.compare import RunComparison
from gpo_core.stats import Proportion

__all__ = ["paired_frame", "run_choice_label", "runs_frame", "settings_frame"]


def _score(p: Proportion | None, hidden: bool = False) -> str:
    if hidden:
        return "hidden (blind test)"
    return "not scored" if p is None else p.text()


def run_choice_label(row: dict) -> str:
    """A saved run in a picker: "name · task · id" (or "task · id" without a name)."""
    parts = [row.get("name") or "", row.get("task") or "", row["run_id"]]
    return " · ".join(p for p in parts if p)


def runs_frame(cmp: RunComparison) -> pd.DataFrame:
    """One row per run: #, run (name or id), task, steps done, final prompt's dev and test
    accuracy with 95% intervals, whether the final prompt is the start, tags, note."""
    rows = [{"#": i, "run": r.title, "task": r.state.task.name, "steps": len(r.state.decided_steps),
             "final dev": _score(r.final_dev), "final test": _score(r.final_test, r.test_hidden),
             "final is the start": "yes" if r.final.id == 0 else "no", "tags": ", ".join(r.label.tags),
             "note": r.label.note}
            for i, r in enumerate(cmp.runs, 1)]
    return pd.DataFrame(rows, columns=["#", "run", "task", "steps", "final dev", "final test",
                                       "final is the start", "tags", "note"])


def settings_frame(cmp: RunComparison) -> pd.DataFrame:
    """The settings that differ: setting, then one column per run ("1. name")."""
    cols = [f"{i}. {r.title}" for i, r in enumerate(cmp.runs, 1)]
    rows = [{"setting": d.setting, **dict(zip(cols, d.values))} for d in cmp.differences]
    return pd.DataFrame(rows, columns=["setting", *cols])


def paired_frame(cmp: RunComparison) -> pd.DataFrame:
    """One row per pair of runs ("1 vs 3": A is run 1, B run 3): shared test examples, the
    examples only A's final prompt got right and only B's (partial credit: scored higher),
    the exact McNemar p, the p adjusted for the number of pairs (Benjamini-Hochberg), or why
    no test was made."""
    rows = []
    for t in cmp.paired:
        a, b = t.first + 1, t.second + 1
        rows.append({"A vs B": f"{a} vs {b}", "shared test examples": t.shared,
                     "right only with A": t.first_better if t.p_value is not None else None,
                     "right only with B": t.second_better if t.p_value is not None else None,
                     "McNemar p": f"{t.p_value:.3g}" if t.p_value is not None else "–",
                     "adjusted p": f"{t.p_adjusted:.3g}" if t.p_adjusted is not None else "–",
                     "note": t.why})
    return pd.DataFrame(rows, columns=["A vs B", "shared test examples", "right only with A", "right only with B",
                                       "McNemar p", "adjusted p", "note"])
