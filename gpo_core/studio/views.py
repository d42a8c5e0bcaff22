"""Tables and texts the app shows, built from run records (pandas DataFrames, plain strings).

No Streamlit here: the pages pass these to ``st.dataframe`` / ``st.markdown``. Every piece
of user text that goes into Markdown is escaped by :func:`escape_markdown`, so a prompt or
an uploaded value is shown as text, never interpreted as Markdown or HTML.
"""

from __future__ import annotations

import string

import pandas as pd

from gpo_core.optimizer.edits import DiffSegment
from gpo_core.optimizer.session import GPOSession
from gpo_core.runs.records import CandidateRecord, RunState, StepRecord
from gpo_core.tasks.task import Task, TaskSplits

_MD_SPECIAL = set(string.punctuation)

#: What each progress phase of the engine means, for progress bars.
PHASE_LABELS = {
    "optimizer": "Sampling candidates from the optimizer model",
    "dev": "Scoring on the dev set",
    "test": "Scoring the chosen prompt on the test set",
}

#: How each decision kind reads in tables.
DECISION_LABELS = {
    "auto": "auto (best not yet chosen)",
    "accept": "accepted",
    "accept_edited": "accepted after editing",
    "reject_all": "rejected all, resampled",
    "no_candidate": "no usable candidate",
}


def pct(x: float | None, digits: int = 1) -> str:
    """Accuracy in [0, 1] as a percentage string ("62.5%"), or "–" for None."""
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def escape_markdown(text: str) -> str:
    """Backslash-escape every ASCII punctuation character (CommonMark allows escaping all of
    them) and fold newlines into spaces, so Streamlit Markdown shows ``text`` literally:
    no emphasis, links, HTML, LaTeX or ``:color[...]`` directives from user text."""
    out = []
    for ch in text.replace("\r", " ").replace("\n", " "):
        out.append("\\" + ch if ch in _MD_SPECIAL else ch)
    return "".join(out)


def diff_markdown(segments: list[DiffSegment]) -> str:
    """A word diff as Streamlit Markdown: deleted words red and struck through, inserted
    words green and bold, unchanged words plain. Every segment's text is escaped first."""
    parts = []
    for seg in segments:
        text = escape_markdown(seg.text)
        if not text:
            continue
        if seg.op == "delete":
            parts.append(f":red-background[~~{text}~~]")
        elif seg.op == "insert":
            parts.append(f":green-background[**{text}**]")
        else:
            parts.append(text)
    return " ".join(parts) if parts else "*(no change)*"


def diff_plain(segments: list[DiffSegment]) -> str:
    """The same diff as plain text: ``[-deleted-]`` and ``{+inserted+}`` (git word-diff style)."""
    out = []
    for seg in segments:
        if seg.op == "delete":
            out.append(f"[-{seg.text}-]")
        elif seg.op == "insert":
            out.append(f"{{+{seg.text}+}}")
        else:
            out.append(seg.text)
    return " ".join(out)


def progress_text(phase: str, done: int, total: int) -> str:
    """A progress line such as "Scoring on the dev set: 12 / 64 calls"."""
    label = PHASE_LABELS.get(phase, phase)
    return f"{label}: {done} / {total} calls"


def progress_fraction(done: int, total: int) -> float:
    """done / total clipped to [0, 1] (0 when total is 0)."""
    return 0.0 if total <= 0 else max(0.0, min(1.0, done / total))


def job_progress_text(phase: str | None, done: int, total: int) -> str:
    """The progress line of a running job ("Starting…" before its first report)."""
    if phase is None:
        return "Starting (the first call may load the models)…"
    return progress_text(phase, done, total)


# ----------------------------------------------------------------------------- task


def preview_frame(columns: list[str], rows: list[dict]) -> pd.DataFrame:
    """The first rows of an uploaded file, one column per file column (text)."""
    return pd.DataFrame([{c: r.get(c, "") for c in columns} for r in rows], columns=columns)


def examples_frame(task: Task, limit: int = 200) -> pd.DataFrame:
    """Up to ``limit`` examples of a task: input, target, source line (all splits of a
    split folder, with a "split" column)."""
    rows = []
    if task.explicit_splits:
        for split, exs in task.explicit_splits.items():
            rows += [{"split": split, "input": e.input, "target": e.target, "line": e.line} for e in exs]
    else:
        rows = [{"input": e.input, "target": e.target, "line": e.line} for e in task.examples]
    return pd.DataFrame(rows[:limit])


def task_size(task: Task) -> int:
    """Number of examples in the task (all splits)."""
    return len(task.examples) + sum(len(v) for v in task.explicit_splits.values())


def split_counts(splits: TaskSplits) -> dict[str, int]:
    """Examples per split: train (exemplar pool), dev (scores candidates), test (reported)."""
    return {"train": len(splits.train), "dev": len(splits.dev), "test": len(splits.test)}


def models_frame(active: list[dict]) -> pd.DataFrame:
    """The active models (rows from Studio.active_models)."""
    return pd.DataFrame(active, columns=["role", "backend", "model", "where"])


# ----------------------------------------------------------------------------- a step


def retrieved_frame(step: StepRecord) -> pd.DataFrame:
    """The update direction of a step: each retrieved trajectory prompt with its dev score
    (0-100, as the meta-prompt shows it), its cosine similarity to the current prompt and
    why it was picked. Ordered as in the meta-prompt (best last)."""
    rows = [{"prompt": r.prompt, "dev score": r.score,
             "similarity": None if r.similarity is None else round(r.similarity, 3),
             "from step": r.step, "why": r.reason, "entry": r.entry_id} for r in step.retrieved]
    return pd.DataFrame(rows, columns=["prompt", "dev score", "similarity", "from step", "why", "entry"])


def candidate_tokens(cand: CandidateRecord) -> int:
    """Tokens spent scoring the candidate on dev (prompt + completion)."""
    return cand.usage.total_tokens


def candidate_cached(cand: CandidateRecord) -> bool:
    """Whether the candidate's dev scoring was answered (at least partly) from the response
    cache: its usage counts cached calls."""
    return cand.usage.cached_calls > 0


def candidate_tokens_text(cand: CandidateRecord) -> str:
    """The candidate's dev-scoring tokens for people: "1,234" when the model answered every
    call; "cached · 1,234" when the response cache did (the tokens those calls cost when they
    were made: nothing is spent again); "1,234 + 800 cached (3 of 8 calls cached)" when it
    answered some. A cached candidate never reads as a free "0"."""
    u = cand.usage
    cached_tokens = getattr(u, "cached_tokens", 0)
    if u.cached_calls <= 0:
        return f"{u.total_tokens:,}"
    if u.cached_calls >= u.calls:
        tokens = cached_tokens or u.total_tokens
        return f"cached · {tokens:,}" if tokens else "cached"
    return f"{u.total_tokens:,} + {cached_tokens:,} cached ({u.cached_calls} of {u.calls} calls cached)"


def budget_badge(cand: CandidateRecord, step: StepRecord) -> str:
    """A Markdown badge: the candidate's measured edit distance against the step's budget."""
    if cand.edit_distance > step.budget:
        return f":red-badge[over budget: {cand.edit_distance} > {step.budget} words]"
    return f":green-badge[within budget: {cand.edit_distance} ≤ {step.budget} words]"


def schedule_text(budgets: list[int], current: int | None = None) -> str:
    """The edit-budget schedule as one Markdown line ("50 · 48 · **43** · …"), the budget of
    step ``current`` (1-based) in bold."""
    return " · ".join(f"**{b}**" if i == current else str(b) for i, b in enumerate(budgets, start=1))


def candidate_state(cand: CandidateRecord, step: StepRecord) -> str:
    """How a candidate stands: "chosen", "rejected" (by the user, or the whole attempt),
    "duplicate of …", "over budget (not scored)", "failed", or "scored"."""
    if step.decision is not None and step.decision.candidate_id == cand.id:
        return "chosen"
    if cand.rejected or (step.decision is not None and step.decision.kind == "reject_all"):
        return "rejected"
    if cand.status == "duplicate":
        return f"duplicate of {cand.duplicate_of}"
    if cand.status == "over_budget":
        return "over budget (not scored)"
    if cand.status == "failed":
        return "failed (every dev call failed)"
    return "scored"


def candidates_frame(step: StepRecord) -> pd.DataFrame:
    """One row per candidate: id, dev accuracy (%), edit distance (words), budget (words),
    whether it is over budget, tokens (text: "cached · …" for cached scoring), state,
    origin and the text."""
    rows = []
    for c in step.candidates:
        rows.append({"candidate": c.id,
                     "dev accuracy": None if c.dev_accuracy is None else round(100 * c.dev_accuracy, 1),
                     "edit distance": c.edit_distance, "budget": step.budget,
                     "over budget": c.edit_distance > step.budget, "tokens": candidate_tokens_text(c),
                     "state": candidate_state(c, step), "origin": c.origin, "text": c.text})
    return pd.DataFrame(rows, columns=["candidate", "dev accuracy", "edit distance", "budget", "over budget",
                                       "tokens", "state", "origin", "text"])


def optimizer_calls_frame(step: StepRecord) -> pd.DataFrame:
    """The optimizer samples of a step: reply, how candidates were extracted (or why not)."""
    rows = [{"sample": c.sample_index, "extraction": c.extraction, "reason": c.reason or "",
             "candidates": ", ".join(c.candidate_ids), "tokens": c.prompt_tokens + c.completion_tokens,
             "error": c.error or "", "reply": c.reply} for c in step.optimizer_calls]
    return pd.DataFrame(rows, columns=["sample", "extraction", "reason", "candidates", "tokens", "error", "reply"])


def decision_text(step: StepRecord) -> str:
    """One line (plain text) about what was decided in a step."""
    if step.decision is None:
        return f"Step {step.step} is waiting for your decision."
    d = step.decision
    label = DECISION_LABELS.get(d.kind, d.kind)
    if d.candidate_id:
        c = step.candidate(d.candidate_id)
        test = f", test {pct(step.chosen_test_accuracy)}" if step.chosen_test_accuracy is not None else ""
        return f"Step {step.step}: {label} {c.id} (dev {pct(c.dev_accuracy)}{test}, {c.edit_distance} words edited)."
    return f"Step {step.step}: {label}."


# ----------------------------------------------------------------------------- the run


def chosen_path(state: RunState) -> pd.DataFrame:
    """The prompt after each decided step: step (0 = start), prompt, dev and test accuracy,
    best dev so far, and the measured edit distance and budget of the step (words)."""
    rows = []
    init = state.initial
    if init is None:
        return pd.DataFrame(columns=["step", "prompt", "dev", "test", "best dev", "edit distance", "budget",
                                     "decision"])
    dev, test, prompt = init["dev_accuracy"], init.get("test_accuracy"), init["prompt"]
    rows.append({"step": 0, "prompt": prompt, "dev": dev, "test": test, "edit distance": None, "budget": None,
                 "decision": "start"})
    by_id = {e.id: e for e in state.trajectory}
    for st in state.decided_steps:
        dist = None
        if st.decision.candidate_id:
            c = st.candidate(st.decision.candidate_id)
            entry = by_id.get(st.chosen_entry_id)
            prompt = c.text
            dev = entry.dev_accuracy if entry else (c.dev_accuracy or 0.0)
            test = st.chosen_test_accuracy
            dist = c.edit_distance
        rows.append({"step": st.step, "prompt": prompt, "dev": dev, "test": test, "edit distance": dist,
                     "budget": st.budget, "decision": DECISION_LABELS.get(st.decision.kind, st.decision.kind)})
    df = pd.DataFrame(rows)
    df["best dev"] = df["dev"].cummax()
    return df[["step", "prompt", "dev", "test", "best dev", "edit distance", "budget", "decision"]]


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
            "decision": DECISION_LABELS.get(st.decision.kind, st.decision.kind) if st.decision else "pending",
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
    output, tokens, error. ``wrong_only`` keeps the wrong answers."""
    rows = [{"input": r["input"], "target": r["target"], "answer": r.get("parsed_answer"),
             "correct": bool(r["correct"]),
             "output": r.get("raw_output", ""), "tokens": r.get("prompt_tokens", 0) + r.get("completion_tokens", 0),
             "error": r.get("error") or ""} for r in records if not (wrong_only and r["correct"])]
    return pd.DataFrame(rows, columns=["input", "target", "answer", "correct", "output", "tokens", "error"])


def records_accuracy(records: list[dict]) -> float | None:
    """Fraction correct of per-example records (None when empty)."""
    return sum(bool(r["correct"]) for r in records) / len(records) if records else None


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
