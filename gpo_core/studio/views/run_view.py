"""A whole run as the Results page (and the Optimize page's headline) shows it: the chosen
path, the headline numbers, every scored candidate, the trajectory, the step table, the
per-example results of one prompt or two side by side, and the list of saved runs."""

from __future__ import annotations

import pandas as pd

from gpo_core.optimizer.session import GPOSession
from gpo_core.runs.records import RunState
from gpo_core.studio.views.markup import pct
from gpo_core.studio.views.step_view import decision_label

PATH_COLUMNS = ["step", "prompt", "dev", "test", "best dev", "edit distance", "budget", "decision"]


def chosen_path(state: RunState) -> pd.DataFrame:
    """The prompt after each decided step: step (0 = start), prompt, dev and test accuracy,
    best dev so far, and the measured edit distance and budget of the step (words)."""
    init = state.initial
    if init is None:
        return pd.DataFrame(columns=PATH_COLUMNS)
    dev, test, prompt = init["dev_accuracy"], init.get("test_accuracy"), init["prompt"]
    best = dev
    rows = [{"step": 0, "prompt": prompt, "dev": dev, "test": test, "best dev": best, "edit distance": None,
             "budget": None, "decision": "start"}]
    by_id = {e.id: e for e in state.trajectory}
    for st in state.decided_steps:
        decision = st.decision
        if decision is None:  # decided_steps holds decided steps only
            continue
        dist = None
        if decision.candidate_id:
            c = st.candidate(decision.candidate_id)
            entry = by_id.get(st.chosen_entry_id) if st.chosen_entry_id is not None else None
            prompt = c.text
            dev = entry.dev_accuracy if entry else (c.dev_accuracy or 0.0)
            test = st.chosen_test_accuracy
            dist = c.edit_distance
        best = max(best, dev)
        rows.append({"step": st.step, "prompt": prompt, "dev": dev, "test": test, "best dev": best,
                     "edit distance": dist, "budget": st.budget, "decision": decision_label(decision.kind)})
    return pd.DataFrame(rows, columns=PATH_COLUMNS)


def run_summary(state: RunState, total_steps: int) -> dict[str, str]:
    """The headline numbers of a run as display strings: steps done of total, dev accuracy
    of the starting prompt, of the current prompt and the best chosen so far."""
    init = state.initial or {}
    current = next((e.dev_accuracy for e in state.trajectory if e.id == state.current_entry_id), None)
    chosen = [e.dev_accuracy for e in state.trajectory if e.chosen]
    return {"Steps done": f"{len(state.decided_steps)} / {total_steps}",
            "Starting prompt (dev)": pct(init.get("dev_accuracy")),
            "Current prompt (dev)": pct(current),
            "Best so far (dev)": pct(max(chosen) if chosen else None)}


def candidate_points(state: RunState) -> pd.DataFrame:
    """Every scored candidate of every step (all attempts): step, candidate, dev accuracy,
    edit distance, whether it was chosen, and its text."""
    rows = []
    for st in state.steps:
        chosen = st.decision.candidate_id if st.decision else None
        for c in st.candidates:
            if c.dev_accuracy is None:
                continue
            rows.append({"step": st.step, "attempt": st.attempt, "candidate": c.id, "dev": c.dev_accuracy,
                         "edit distance": c.edit_distance, "chosen": c.id == chosen, "text": c.text})
    return pd.DataFrame(rows, columns=["step", "attempt", "candidate", "dev", "edit distance", "chosen", "text"])


def trajectory_frame(state: RunState) -> pd.DataFrame:
    """The optimization trajectory: every scored prompt with its dev accuracy (%), the step
    that produced it, its parent prompt id and whether it was chosen."""
    rows = [{"entry": e.id, "step": e.step, "dev accuracy": round(100 * e.dev_accuracy, 1), "chosen": e.chosen,
             "parent": e.parent, "candidate": e.candidate_id or "initial", "prompt": e.prompt}
            for e in state.trajectory]
    return pd.DataFrame(rows, columns=["entry", "step", "dev accuracy", "chosen", "parent", "candidate", "prompt"])


def steps_frame(state: RunState) -> pd.DataFrame:
    """One row per step record (rejected attempts included): step.attempt, budget, decision,
    chosen candidate, its edit distance, dev/test accuracy (%), tokens and seconds."""
    rows = []
    for st in state.steps:
        chosen = None
        if st.decision and st.decision.candidate_id:
            chosen = st.candidate(st.decision.candidate_id)
        rows.append({
            "step": f"{st.step}.{st.attempt}", "budget": st.budget,
            "decision": decision_label(st.decision.kind) if st.decision else "pending",
            "chosen": chosen.id if chosen else "", "edit distance": chosen.edit_distance if chosen else None,
            "dev accuracy": round(100 * chosen.dev_accuracy, 1) if chosen and chosen.dev_accuracy is not None else None,
            "test accuracy": round(100 * st.chosen_test_accuracy, 1) if st.chosen_test_accuracy is not None else None,
            "candidates": len(st.candidates), "tokens": st.usage.total_tokens,
            "cached calls": st.usage.cached_calls,
            "retries": st.usage.retries, "failed calls": st.usage.failed_calls, "seconds": round(st.seconds, 1),
        })
    return pd.DataFrame(rows, columns=["step", "budget", "decision", "chosen", "edit distance", "dev accuracy",
                                       "test accuracy", "candidates", "tokens", "cached calls", "retries",
                                       "failed calls", "seconds"])


def prompt_options(session: GPOSession) -> list[tuple[str, str]]:
    """Prompts that have per-example records: (key, label). key is "initial" or a
    candidate id; the label shows step, id, dev accuracy and the start of the text."""
    s = session.state
    out: list[tuple[str, str]] = []
    if s.initial is not None:
        out.append(("initial", f"start · dev {pct(s.initial['dev_accuracy'])} · {_short(s.initial['prompt'])}"))
    for st in s.steps:
        chosen = st.decision.candidate_id if st.decision else None
        for c in st.candidates:
            if c.dev_accuracy is None or c.status == "duplicate":
                continue
            mark = " ✓" if c.id == chosen else ""
            out.append((c.id, f"step {st.step} · {c.id}{mark} · dev {pct(c.dev_accuracy)} · {_short(c.text)}"))
    return out


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def records_frame(records: list[dict], wrong_only: bool = False) -> pd.DataFrame:
    """Per-example results of one prompt: input, target, parsed answer, correct, model
    output, tokens, error; with the reference scoring protocol also the answer re-prompt
    and the reply that was parsed ("re-prompt", "final reply"). ``wrong_only`` keeps the
    wrong answers."""
    two_turns = any(r.get("second_prompt") is not None for r in records)
    columns = ["input", "target", "answer", "correct", "output"]
    columns += ["re-prompt", "final reply"] if two_turns else []
    columns += ["tokens", "error"]
    rows = []
    for r in records:
        if wrong_only and r["correct"]:
            continue
        row = {"input": r["input"], "target": r["target"], "answer": r.get("parsed_answer"),
               "correct": bool(r["correct"]), "output": r.get("raw_output", ""),
               "tokens": r.get("prompt_tokens", 0) + r.get("completion_tokens", 0), "error": r.get("error") or ""}
        if two_turns:
            row["re-prompt"] = r.get("second_prompt") or ""
            row["final reply"] = r.get("second_output") or ""
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def records_accuracy(records: list[dict]) -> float | None:
    """Fraction correct of the ANSWERED per-example records (a failed call is no answer);
    None when nothing was answered."""
    answered = [r for r in records if not r.get("error")]
    return sum(bool(r["correct"]) for r in answered) / len(answered) if answered else None


def compare_frame(a: list[dict], b: list[dict], wrong_only: bool = False) -> pd.DataFrame:
    """Two prompts' results on the same examples side by side (matched by input): target,
    A's answer and correctness, B's. ``wrong_only`` keeps rows where either is wrong."""
    b_by_input = {r["input"]: r for r in b}
    rows = []
    for ra in a:
        rb = b_by_input.get(ra["input"])
        if rb is None:
            continue
        if wrong_only and ra["correct"] and rb["correct"]:
            continue
        rows.append({"input": ra["input"], "target": ra["target"], "A answer": ra.get("parsed_answer"),
                     "A correct": bool(ra["correct"]), "B answer": rb.get("parsed_answer"),
                     "B correct": bool(rb["correct"])})
    return pd.DataFrame(rows, columns=["input", "target", "A answer", "A correct", "B answer", "B correct"])


def runs_frame(runs: list[dict]) -> pd.DataFrame:
    """Saved runs (RunStore.list_runs rows): id, task, steps done of total, best dev (%),
    last saved, and an error for unreadable runs."""
    rows = []
    for r in runs:
        best = r.get("best_dev_accuracy")
        rows.append({"run": r["run_id"], "task": r.get("task", ""),
                     "steps": f"{r['steps_done']} / {r['steps_total']}" if "steps_done" in r else "",
                     "best dev": pct(best) if best is not None else "–", "last saved": r.get("updated_at", ""),
                     "problem": r.get("error", "")})
    return pd.DataFrame(rows, columns=["run", "task", "steps", "best dev", "last saved", "problem"])
