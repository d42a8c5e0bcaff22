"""A whole run as the Results page (and the Optimize page's headline) shows it: the chosen
path, the headline numbers, every scored candidate, the trajectory, the step table, the
per-example results of one prompt or two side by side, and the list of saved runs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from gpo_core.optimizer.choices import label as choice_label
from gpo_core.optimizer.overfit import gap_series, gap_warning_text, is_test_hidden
from gpo_core.optimizer.session import GPOSession
from gpo_core.runs.final import FINAL_RULE, FinalComparison
from gpo_core.runs.records import RunState
from gpo_core.runs.seeds import SeedSummary
from gpo_core.settings import RunSettings
from gpo_core.stats import Proportion, mcnemar_exact, paired_counts, record_score
from gpo_core.studio.views.markup import pct
from gpo_core.studio.views.paired_view import p_text
from gpo_core.studio.views.step_view import decision_label
from gpo_core.studio.views.uncertainty import (
    Accuracy,
    accuracy_from,
    candidate_dev,
    chosen_test,
    entry_accuracy,
    initial_accuracy,
)

PATH_COLUMNS = ["step", "prompt", "dev", "dev low", "dev high", "dev n", "test", "test low", "test high", "test n",
                "best dev", "edit distance", "budget", "decision"]


def _bounds(acc: Accuracy | None, name: str) -> dict:
    """``{name, name low, name high, name n}`` of an accuracy (shares in [0, 1]; None when unknown)."""
    if acc is None or acc.value is None:
        return {name: None, f"{name} low": None, f"{name} high": None, f"{name} n": None}
    lo, hi = acc.interval()
    return {name: acc.value, f"{name} low": lo, f"{name} high": hi, f"{name} n": acc.answered}


def chosen_path(state: RunState) -> pd.DataFrame:
    """The prompt after each decided step: step (0 = start), prompt, dev and test accuracy
    (shares in [0, 1]) each with its 95% Wilson interval ("dev low", "dev high") and the
    examples answered ("dev n"), best dev so far, and the measured edit distance and budget
    of the step (words). Test columns stay empty while a blind test is hidden."""
    init = state.initial
    if init is None:
        return pd.DataFrame(columns=PATH_COLUMNS)
    hide = is_test_hidden(state)  # a blind test not yet revealed: no test number leaves this function
    dev, test = initial_accuracy(state, "dev"), None if hide else initial_accuracy(state, "test")
    prompt = init["prompt"]
    best = init["dev_accuracy"]
    rows = [{"step": 0, "prompt": prompt, **_bounds(dev, "dev"), **_bounds(test, "test"), "best dev": best,
             "edit distance": None, "budget": None, "decision": "start"}]
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
            dev = (entry_accuracy(state, entry) if entry else None) or candidate_dev(c)
            test = None if hide else chosen_test(state, st)
            dist = c.edit_distance
        if dev is not None and dev.value is not None:
            best = max(best, dev.value)
        rows.append({"step": st.step, "prompt": prompt, **_bounds(dev, "dev"), **_bounds(test, "test"),
                     "best dev": best, "edit distance": dist, "budget": st.budget,
                     "decision": decision_label(decision.kind)})
    return pd.DataFrame(rows, columns=PATH_COLUMNS)


def run_summary(state: RunState, total_steps: int) -> dict[str, tuple[str, str | None]]:
    """The headline numbers of a run for ``st.metric``, label -> (value, caption): steps
    done of total; the dev accuracy of the starting prompt, of the current prompt and of the
    best chosen so far ("62.5%"), each captioned with its 95% interval ("95% interval 41–79%")."""
    current = next((e for e in state.trajectory if e.id == state.current_entry_id), None)
    chosen = [e for e in state.trajectory if e.chosen]
    # the best chosen prompt: highest dev accuracy, ties to the earlier (never a later lucky tie)
    best = max(chosen, key=lambda e: (e.dev_accuracy, -e.id)) if chosen else None

    def shown(acc: Accuracy | None) -> tuple[str, str | None]:
        return acc.metric() if acc is not None else ("–", None)

    return {"Steps done": (f"{len(state.decided_steps)} / {total_steps}", None),
            "Starting prompt (dev)": shown(initial_accuracy(state, "dev")),
            "Current prompt (dev)": shown(entry_accuracy(state, current) if current else None),
            "Best so far (dev)": shown(entry_accuracy(state, best) if best else None)}


def candidate_points(state: RunState) -> pd.DataFrame:
    """Every scored candidate of every step (all attempts): step, candidate, dev accuracy
    with its 95% interval ("dev low", "dev high", shares) and its interval as text
    ("interval"), edit distance, whether it was chosen, and its text."""
    rows = []
    for st in state.steps:
        chosen = st.decision.candidate_id if st.decision else None
        for c in st.candidates:
            acc = candidate_dev(c)
            if acc is None or acc.value is None:
                continue
            lo, hi = acc.interval()
            rows.append({"step": st.step, "attempt": st.attempt, "candidate": c.id, "dev": acc.value,
                         "dev low": lo, "dev high": hi, "interval": acc.text(),
                         "edit distance": c.edit_distance, "chosen": c.id == chosen, "text": c.text})
    return pd.DataFrame(rows, columns=["step", "attempt", "candidate", "dev", "dev low", "dev high", "interval",
                                       "edit distance", "chosen", "text"])


def trajectory_frame(state: RunState) -> pd.DataFrame:
    """The optimization trajectory: every scored prompt with its dev accuracy (%) and its
    95% interval ("41–79%"), the step that produced it, its parent prompt id and whether it
    was chosen."""
    rows = []
    for e in state.trajectory:
        acc = entry_accuracy(state, e)
        rows.append({"entry": e.id, "step": e.step, "dev accuracy": round(100 * e.dev_accuracy, 1),
                     "95% interval": acc.band() if acc is not None else "", "chosen": e.chosen,
                     "parent": e.parent, "candidate": e.candidate_id or "initial", "prompt": e.prompt})
    return pd.DataFrame(rows, columns=["entry", "step", "dev accuracy", "95% interval", "chosen", "parent",
                                       "candidate", "prompt"])


def steps_frame(state: RunState) -> pd.DataFrame:
    """One row per step record (rejected attempts included): step.attempt, budget, decision,
    chosen candidate, its edit distance, dev/test accuracy (%) each with its 95% interval,
    its paired comparison with the prompt it replaced (fixed, broken, McNemar p), racing's
    calls saved, tokens and seconds. Test columns stay empty while a blind test is hidden."""
    rows = []
    hide = is_test_hidden(state)
    for st in state.steps:
        chosen = None
        if st.decision and st.decision.candidate_id:
            chosen = st.candidate(st.decision.candidate_id)
        dev = candidate_dev(chosen) if chosen else None
        test = None if hide else chosen_test(state, st)
        rows.append({
            "step": f"{st.step}.{st.attempt}", "budget": st.budget,
            "decision": decision_label(st.decision.kind) if st.decision else "pending",
            "chosen": chosen.id if chosen else "", "edit distance": chosen.edit_distance if chosen else None,
            "dev accuracy": round(100 * dev.value, 1) if dev is not None and dev.value is not None else None,
            "dev 95% interval": dev.band() if dev is not None else "",
            "test accuracy": round(100 * test.value, 1) if test is not None and test.value is not None else None,
            "test 95% interval": test.band() if test is not None else "",
            "fixed": chosen.fixed if chosen else None, "broken": chosen.broken if chosen else None,
            "McNemar p": round(chosen.p_value, 4) if chosen and chosen.p_value is not None else None,
            "candidates": len(st.candidates), "calls saved": int(getattr(st, "calls_saved", 0) or 0),
            "tokens": st.usage.total_tokens,
            "cached calls": st.usage.cached_calls,
            "retries": st.usage.retries, "failed calls": st.usage.failed_calls, "seconds": round(st.seconds, 1),
        })
    return pd.DataFrame(rows, columns=STEPS_COLUMNS)


STEPS_COLUMNS = ["step", "budget", "decision", "chosen", "edit distance", "dev accuracy", "dev 95% interval",
                 "test accuracy", "test 95% interval", "fixed", "broken", "McNemar p", "candidates", "calls saved",
                 "tokens",
                 "cached calls", "retries", "failed calls", "seconds"]


def prompt_options(session: GPOSession) -> list[tuple[str, str]]:
    """Prompts that have per-example records: (key, label). key is "initial" or a
    candidate id; the label shows step, id, dev accuracy with its 95% interval and the start
    of the text."""
    s = session.state
    out: list[tuple[str, str]] = []
    if s.initial is not None:
        init = initial_accuracy(s, "dev")
        out.append(("initial", f"start · dev {init.text() if init else '–'} · {_short(s.initial['prompt'])}"))
    for st in s.steps:
        chosen = st.decision.candidate_id if st.decision else None
        for c in st.candidates:
            acc = candidate_dev(c)
            if acc is None or c.status == "duplicate":
                continue
            mark = " ✓" if c.id == chosen else ""
            out.append((c.id, f"step {st.step} · {c.id}{mark} · dev {acc.text()} · {_short(c.text)}"))
    return out


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def records_frame(records: list[dict], wrong_only: bool = False) -> pd.DataFrame:
    """Per-example results of one prompt: input, target, parsed answer, correct, model
    output, tokens, error; with the reference scoring protocol also the answer re-prompt
    and the reply that was parsed ("re-prompt", "final reply"); with the LLM judge its reply,
    its prompt and its tokens ("judge reply", "judge prompt", "judge tokens"). ``wrong_only`` keeps the
    wrong answers."""
    two_turns = any(r.get("second_prompt") is not None for r in records)
    judged = any(r.get("judge_prompt") for r in records)
    partial = _partial_credit(records)
    columns = ["input", "target", "answer", "correct", *(["score"] if partial else []), "reason", "output"]
    columns += ["re-prompt", "final reply"] if two_turns else []
    columns += ["judge reply", "judge prompt", "judge tokens"] if judged else []
    columns += ["tokens", "error"]
    rows = []
    for r in records:
        if wrong_only and r["correct"]:
            continue
        row = {"input": r["input"], "target": r["target"], "answer": r.get("parsed_answer"),
               "correct": bool(r["correct"]), "output": r.get("raw_output", ""),
               "tokens": r.get("prompt_tokens", 0) + r.get("completion_tokens", 0),
               "error": r.get("error") or r.get("metric_error") or "", "reason": r.get("reason") or ""}
        if partial:
            row["score"] = None if r.get("error") else round(record_score(r), 3)
        if two_turns:
            row["re-prompt"] = r.get("second_prompt") or ""
            row["final reply"] = r.get("second_output") or ""
        if judged:
            row["judge reply"] = r.get("judge_output") or ""
            row["judge prompt"] = r.get("judge_prompt") or ""
            row["judge tokens"] = int(r.get("judge_prompt_tokens") or 0) + int(r.get("judge_completion_tokens") or 0)
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def _partial_credit(records: list[dict]) -> bool:
    """Whether any answered record scored strictly between 0 and 1 (a partial-credit metric)."""
    return any(not r.get("error") and record_score(r) not in (0.0, 1.0) for r in records)


def records_accuracy(records: list[dict]) -> float | None:
    """Mean score (fraction correct for 0/1 metrics) of the ANSWERED per-example records (a
    failed call is no answer); None when nothing was answered."""
    answered = [r for r in records if not r.get("error")]
    return sum(record_score(r) for r in answered) / len(answered) if answered else None


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
    """Saved runs (:meth:`gpo_core.studio.runs.Runs.saved` rows): id, name, tags, task, steps
    done of total, best dev (%,
    with its 95% interval over the run's dev split when the row has "dev_size"), last saved,
    and an error for unreadable runs."""
    rows = []
    for r in runs:
        best = r.get("best_dev_accuracy")
        acc = accuracy_from(best, int(r["dev_size"])) if best is not None and r.get("dev_size") else None
        rows.append({"run": r["run_id"], "name": r.get("name", ""), "tags": ", ".join(r.get("tags") or []),
                     "task": r.get("task", ""),
                     "steps": f"{r['steps_done']} / {r['steps_total']}" if "steps_done" in r else "",
                     "best dev": acc.text() if acc is not None else pct(best) if best is not None else "–",
                     "last saved": r.get("updated_at", ""), "problem": r.get("error", "") or r.get("label_error", "")})
    return pd.DataFrame(rows, columns=["run", "name", "tags", "task", "steps", "best dev", "last saved", "problem"])


def policy_text(settings: RunSettings) -> str:
    """The run's decision policy for people: "Decision policy: paper: best candidate not
    chosen before" (with "alpha = 0.05" for the significant policy)."""
    opt = settings.optimizer
    alpha = f", alpha = {opt.alpha:g}" if opt.policy == "significant" else ""
    return f"Decision policy: {choice_label('policy', opt.policy)}{alpha}"


def compare_text(a: list[dict], b: list[dict], split: str = "dev") -> str:
    """Prompt B against prompt A on the same examples (paired as
    :func:`gpo_core.stats.paired_counts` pairs them): "On the 16 dev examples both answered,
    B fixes 3 that A got wrong and breaks 1 that A got right (McNemar p = 0.62: not
    distinguishable at 0.05)"."""
    fixed, broken, both = paired_counts(a, b)
    p = mcnemar_exact(fixed, broken)
    verdict = "significant at 0.05" if p < 0.05 else "not distinguishable at 0.05"
    if _partial_credit(a) or _partial_credit(b):  # partial credit: counts of scores up / down, sign test
        return (f"On the {both} {split} examples both answered, B scores higher than A on {fixed} and lower on "
                f"{broken} (exact sign test {p_text(p)}: {verdict}).")
    return (f"On the {both} {split} examples both answered, B fixes {fixed} that A got wrong and breaks {broken} "
            f"that A got right (McNemar {p_text(p)}: {verdict}).")


def start_scored_text(state: RunState) -> str:
    """The line after the starting prompt is scored: "Starting prompt scored: dev 62.5%
    [41–79%], test 50.0% [22–78%]." ("test hidden (blind test)" while a blind test is hidden)."""
    dev, test = initial_accuracy(state, "dev"), initial_accuracy(state, "test")
    line = f"Starting prompt scored: dev {dev.text() if dev else '–'}"
    if test is not None:
        line += ", test hidden (blind test)" if is_test_hidden(state) else f", test {test.text()}"
    return line + "."


def test_is_hidden(state: RunState) -> bool:
    """Whether the run's test scores must stay hidden now (a blind test not yet revealed)."""
    return is_test_hidden(state)


def gap_warning(state: RunState) -> str | None:
    """The dev-test gap warning of the prompt in use now (the last point of
    :func:`gpo_core.optimizer.overfit.gap_series`), or None while the gap has not opened."""
    points = gap_series(state)
    return gap_warning_text(points[-1]) if points else None


def gap_warnings(state: RunState) -> list[str]:
    """Every step at which the dev-test gap had opened, as warning lines (oldest first)."""
    return [w for p in gap_series(state) if (w := gap_warning_text(p))]


def seeds_frame(summary: SeedSummary) -> pd.DataFrame:
    """One row per seed of a "Repeat with seeds": seed, the final prompt's accuracy on the
    summary's split with its 95% interval, the starting prompt's test accuracy, steps, whether
    it stopped early, its saved run and its final prompt."""
    rows = []
    for r in summary.results:
        final = r.final_test if summary.split == "test" else r.final_dev
        f_acc = Accuracy(final.correct, final.answered) if final is not None else None
        s_acc = Accuracy(r.start_test.correct, r.start_test.answered) if r.start_test is not None else None
        rows.append({"seed": r.seed, f"final prompt ({summary.split})": f_acc.text() if f_acc else "–",
                     "starting prompt (test)": s_acc.text() if s_acc else "–", "steps": r.steps,
                     "stopped early": bool(r.stopped_early), "run": Path(r.run_dir).name if r.run_dir else "",
                     "final prompt": r.final_prompt})
    return pd.DataFrame(rows, columns=["seed", f"final prompt ({summary.split})", "starting prompt (test)", "steps",
                                       "stopped early", "run", "final prompt"])


def seeds_metrics(summary: SeedSummary) -> dict[str, str]:
    """The headline of a "Repeat with seeds": mean, spread (sample sd) and range of the final
    prompt's accuracy over the seeds, and the starting prompt's mean."""
    split = summary.split
    out = {f"Final prompt ({split}), mean of {len(summary.results)}": f"{100 * summary.mean:.1f}%",
           "Spread (sd)": f"{100 * summary.sd:.1f} points",
           "Range": f"{100 * summary.low:.1f}–{100 * summary.high:.1f}%"}
    if summary.start_mean is not None:
        out["Starting prompt (test), mean"] = f"{100 * summary.start_mean:.1f}%"
    return out


def final_metrics(cmp: FinalComparison, hidden: bool) -> dict[str, tuple[str, str | None]]:
    """The Results page's headline for ``st.metric``, label -> (value, caption): the starting
    and the final prompt on dev and test, each captioned with its 95% interval; "hidden
    (blind test)" for test numbers while ``hidden``."""
    def shown(p: Proportion | None) -> tuple[str, str | None]:
        return Accuracy(p.correct, p.answered).metric() if p is not None else ("–", None)

    out = {"Starting prompt (dev)": shown(cmp.dev.start if cmp.dev else None),
           "Final prompt (dev)": shown(cmp.dev.final if cmp.dev else None)}
    if cmp.test is not None:
        out["Starting prompt (test)"] = ("hidden", "blind test") if hidden else shown(cmp.test.start)
        out["Final prompt (test)"] = ("hidden", "blind test") if hidden else shown(cmp.test.final)
    return out


#: How the final prompt is chosen, as the Results page says it.
FINAL_PROMPT_RULE = FINAL_RULE
