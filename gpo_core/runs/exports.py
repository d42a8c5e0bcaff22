"""Exports of a run: the final prompt (.txt), the run (.json, no keys) and a report (.md).

API keys are never part of a run (ModelSettings hold none), and :func:`export_json` also
drops any key-like field defensively.

The final prompt is :func:`gpo_core.runs.final.final_entry` (best dev among the start and
the chosen prompts, ties to the earlier). The JSON and the report say how it compares with
the start (paired counts, McNemar p, Wilson intervals), give every accuracy with its 95%
interval (JSON: ``*_ci95`` fields beside each accuracy; report: "62.5% [30.6–86.3%] (5/8)"),
the dev-test gap per step (:func:`gpo_core.optimizer.overfit.gap_series`), the flagged
candidates, why a run stopped early, and always include test scores, marked when the test
was blind (:func:`gpo_core.optimizer.overfit.blind_note`).
"""

from __future__ import annotations

import json
import re

from gpo_core.optimizer.leaks import FLAG_LABELS
from gpo_core.optimizer.overfit import GAP_THRESHOLD, blind_note, gap_series, gap_warning_text, is_test_hidden
from gpo_core.optimizer.session import GPOSession
from gpo_core.runs.final import FINAL_RULE, candidates_by_id, entry_score
from gpo_core.runs.records import RunState
from gpo_core.runs.report_classes import class_report_lines
from gpo_core.stats import Proportion

_SECRET_KEYS = {"api_key", "apikey", "authorization", "key", "token", "secret"}


def _scrub(obj):
    if isinstance(obj, dict):
        return {k: _scrub(v) for k, v in obj.items() if k.lower() not in _SECRET_KEYS}
    if isinstance(obj, list):
        return [_scrub(v) for v in obj]
    return obj


def final_prompt_text(session: GPOSession) -> str:
    """The final prompt (the bare text, plus a newline): the best dev accuracy among the
    starting prompt and the chosen prompts, ties going to the earlier."""
    return session.best_prompt().prompt + "\n"


def export_json(session: GPOSession, include_records: bool = True) -> str:
    """The whole run as JSON text (RunState plus, optionally, every per-example record
    under "records": {"<candidate id>.<split>": [...]}, for the starting prompt and the
    candidates of the run's steps only: an undone step's rows are gone). Contains no API key."""
    data = session.state.to_dict()
    if include_records:
        recs = {}
        keys = ["initial"] + [c.id for s in session.state.steps for c in s.candidates]
        for key in keys:
            for split in ("dev", "test"):
                r = session.records(key, split)
                if r:
                    recs[f"{key}.{split}"] = r
        data["records"] = recs
        if session.repo.unreadable:  # damaged record files: left out, and said so
            data["unreadable_records"] = {f"{k}.{sp}": why for (k, sp), why in session.repo.unreadable.items()}
    comparison = session.final_comparison()
    data["final_prompt"] = comparison.prompt
    data["final"] = comparison.to_dict()
    _add_intervals(data, session.state)
    data["overfitting"] = {"gap_threshold": GAP_THRESHOLD,
                           "method": "dev minus test accuracy of the prompt in use after each step; 95% interval "
                                     "by Newcombe's hybrid score method (1998, method 10); warning when the "
                                     "interval lies above 0 and the gap exceeds the threshold",
                           "points": [p.to_dict() for p in gap_series(session.state, include_hidden=True)]}
    blind = session.state.settings.optimizer.blind_test
    data["blind_test"] = {"enabled": blind, "hidden_in_app": is_test_hidden(session.state),
                          "revealed": session.state.test_revealed, "note": blind_note(session.state)}
    return json.dumps(_scrub(data), ensure_ascii=False, indent=1)


def _ci(p: Proportion | None) -> list[float] | None:
    if p is None or p.value is None:
        return None
    lo, hi = p.interval()
    return [round(lo, 6), round(hi, 6)]


def _add_intervals(data: dict, state: RunState) -> None:
    """Put the 95% Wilson interval beside every accuracy of the exported run dict:
    ``initial.dev_ci95`` / ``test_ci95``, each candidate's ``dev_ci95`` / ``test_ci95``, each
    step's ``chosen_test_ci95`` and each trajectory entry's ``dev_ci95`` ([low, high] shares)."""
    n_dev, n_test = len(state.splits.get("dev") or []), len(state.splits.get("test") or [])
    init = data.get("initial")
    if isinstance(init, dict):
        init["dev_ci95"] = _ci(Proportion.of(init.get("dev_accuracy"), n_dev - int(init.get("dev_errors") or 0)))
        init["test_ci95"] = _ci(Proportion.of(init.get("test_accuracy"), n_test - int(init.get("test_errors") or 0)))
    cands = candidates_by_id(state)
    for st_dict, st in zip(data.get("steps", []), state.steps):
        for c_dict, c in zip(st_dict.get("candidates", []), st.candidates):
            dev = (Proportion(c.dev_correct, c.dev_answered) if c.dev_correct is not None and c.dev_accuracy is not None
                   else Proportion.of(c.dev_accuracy, c.dev_answered or n_dev))
            c_dict["dev_ci95"] = _ci(dev)
            c_dict["test_ci95"] = _ci(Proportion.of(c.test_accuracy, n_test - c.test_errors))
        chosen = cands.get(st.decision.candidate_id or "") if st.decision else None
        st_dict["chosen_test_ci95"] = _ci(Proportion.of(st.chosen_test_accuracy,
                                                        n_test - (chosen.test_errors if chosen else 0)))
    for e_dict, e in zip(data.get("trajectory", []), state.trajectory):
        e_dict["dev_ci95"] = _ci(entry_score(state, e, "dev", cands))


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


#: Markdown punctuation that could start emphasis, code, a link or image, a table cell, a
#: strikethrough or a heading inside user text.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")


def md_text(text: object) -> str:
    """User text (task names, prompts, model names, warnings) as inert Markdown on one
    line: HTML's ``& < >`` become entities (so ``<script>`` or ``<img onerror=...>`` show as
    text in any Markdown viewer instead of running) and Markdown punctuation is
    backslash-escaped (no links, images, emphasis or table breaks)."""
    t = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(_MD_SPECIAL.sub(r"\\\1", t).splitlines())


def _md_cell(text: str) -> str:
    return md_text(text)


def _acc(p: Proportion | None) -> str:
    return "–" if p is None else p.text()


def export_markdown(session: GPOSession) -> str:
    """A human-readable report: settings, start vs final accuracy (each with its 95% Wilson
    interval and counts) and how the final prompt compares with the start (paired counts,
    McNemar p), why the run stopped early, the trajectory of chosen prompts per step, the
    dev-test gap per step with its interval and warnings, flagged candidates, token totals
    (spent, and what cached calls had cost) and the steps' warnings (e.g. a server that
    answered as another model). Test scores are always included, marked when the test was
    blind. User text is escaped for Markdown tables and fenced as code so it renders as text."""
    s = session.state
    comparison = session.final_comparison()
    best = comparison.entry
    cands = candidates_by_id(s)
    start_entry = next((e for e in s.trajectory if e.id == 0), best)
    total = None
    for st in s.steps:
        total = st.usage if total is None else total.merge(st.usage)
    cfg = s.settings.optimizer
    n_test = len(s.splits.get("test") or [])
    extras = []
    if cfg.patience:
        extras.append(f"early stop after {cfg.patience} steps without a significant gain (p < {cfg.alpha:g})")
    if cfg.blind_test:
        extras.append("blind test")
    if cfg.drop_flagged:
        extras.append("flagged candidates dropped unscored")
    lines = [
        f"# GPO Studio report: {md_text(s.task.name)}",
        "",
        f"Run {md_text(s.run_id)}, created {md_text(s.created_at)}, last saved {md_text(s.updated_at)}.",
        "",
        "## Settings",
        "",
        f"- Task model: {md_text(s.settings.task_model.describe())}; optimizer model: "
        f"{md_text(s.settings.optimizer_model.describe())}"
        + (f"; judge model (LLM judge metric): {md_text(s.settings.judge().describe())}"
           if s.settings.uses_judge else ""),
        f"- {cfg.steps} steps, {cfg.candidates} candidates a step, k = {cfg.k} by {cfg.selection}; "
        f"decision policy {cfg.policy}" + (f" (alpha {cfg.alpha:g})" if cfg.policy == "significant" else "")
        + ("; " + "; ".join(extras) if extras else ""),
        f"- Edit budget: {cfg.schedule} from {cfg.budget_initial} to {cfg.budget_final} words"
        f" (warmup {cfg.warmup}; in meta-prompt: {cfg.use_budget}; enforced: {cfg.enforce_budget})",
        f"- Splits: train {len(s.splits['train'])}, dev {len(s.splits['dev'])}, test {n_test}; "
        f"seed {s.settings.splits.seed}",
        f"- Answer type: {md_text(s.task.answer_type)}; instruction position: "
        f"{md_text(s.task.instruction_position)} ({_POSITION_WORDS.get(s.task.instruction_position, 'see the task')}); "
        f"metric: {md_text(cfg.metric or s.task.answer_type)}"
        + (f" ({md_text(', '.join(f'{k}={v}' for k, v in cfg.metric_options.items()))})" if cfg.metric_options else "")
        + f"; scoring protocol: {md_text(cfg.protocol)}",
        "",
        "## Result",
        "",
        "Accuracies: share correct of the examples answered, [95% Wilson interval], (correct/answered).",
        "",
        "| prompt | dev accuracy | test accuracy |",
        "|---|---|---|",
        f"| starting | {_acc(entry_score(s, start_entry, 'dev', cands))} | "
        f"{_acc(entry_score(s, start_entry, 'test', cands))} |",
        f"| final | {_acc(entry_score(s, best, 'dev', cands))} | {_acc(entry_score(s, best, 'test', cands))} |",
        "",
        f"Final prompt: {FINAL_RULE}.",
        "",
        f"How it compares with the start: {comparison.summary()}.",  # numbers only: no user text
    ]
    note = blind_note(s)
    if note:
        lines += ["", f"Note: {note}."]
    if s.stopped_early:
        lines += ["", f"The run {s.stopped_early.get('reason', 'stopped early')}."]
    lines += [
        "",
        "Final prompt:",
        "",
        "```text",
        best.prompt.replace("```", "` ` `"),
        "```",
        "",
        "## Steps",
        "",
        "| step | budget | decision | chosen prompt | edit distance | dev | test | vs prompt before | tokens |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for st in s.steps:
        kind = st.decision.kind if st.decision else "pending"
        chosen = next((c for c in st.candidates if st.decision and c.id == st.decision.candidate_id), None)
        dev = test = paired = "–"
        if chosen is not None:
            dev = _acc(Proportion(chosen.dev_correct, chosen.dev_answered) if chosen.dev_correct is not None
                       else Proportion.of(chosen.dev_accuracy, chosen.dev_answered or len(s.splits["dev"])))
            test = _acc(Proportion.of(st.chosen_test_accuracy, n_test - chosen.test_errors))
            if chosen.p_value is not None:
                paired = f"{chosen.fixed} fixed, {chosen.broken} broken, McNemar p = {chosen.p_value:.3g}"
        lines.append(
            f"| {st.step}.{st.attempt} | {st.budget} | {kind} | {_md_cell(chosen.text) if chosen else '–'} | "
            f"{chosen.edit_distance if chosen else '–'} | {dev} | {test} | {paired} | {st.usage.total_tokens} |")
    lines += decision_log_lines(s)
    lines += class_report_lines(session)
    lines += _gap_lines(s)
    lines += _flag_lines(s)
    if total is not None:
        lines += ["", f"Tokens spent in all steps: {total.prompt_tokens} prompt + {total.completion_tokens} completion "
                      f"in {total.calls} calls ({total.cached_calls} from cache, which had cost {total.cached_tokens} "
                      f"tokens when made; {total.retries} retries, {total.failed_calls} failed)."]
    warnings = [f"- step {st.step}.{st.attempt}: {w}" for st in s.steps for w in st.warnings]
    if warnings:
        lines += ["", "## Warnings", ""] + [_md_cell(w) for w in warnings]
    return "\n".join(lines) + "\n"


#: The instruction positions in words (:mod:`gpo_core.scoring.task_prompt`).
_POSITION_WORDS = {
    "before_Q": "instruction on the line before \"Q: question\"",
    "Q_begin": "instruction right after \"Q:\", before the question",
    "Q_end": "instruction after the question, before \"A:\"",
    "A_begin": "instruction right after \"A:\"",
}

_DECISION_WORDS = {
    "auto": "chose automatically (best dev accuracy not yet chosen)",
    "accept": "accepted by hand",
    "accept_edited": "accepted after editing by hand",
    "reject_all": "rejected every candidate by hand; the prompt stayed",
    "no_candidate": "found no usable candidate; the prompt stayed",
}


def decision_log_lines(s: RunState) -> list[str]:
    """The report's decision log: one sentence per step attempt saying how many candidates
    were proposed and scored, what was decided (by whom) and the chosen prompt's dev accuracy
    with its 95% Wilson interval; then why the run stopped early, if it did."""
    if not s.steps:
        return []
    out = ["", "## Decision log", ""]
    n_dev = len(s.splits.get("dev") or [])
    for st in s.steps:
        scored = sum(1 for c in st.candidates if c.dev_accuracy is not None)
        flagged = sum(1 for c in st.candidates if c.flags)
        head = (f"- Step {st.step} (attempt {st.attempt}, edit budget {st.budget} words): "
                f"{len(st.candidates)} candidates proposed, {scored} scored on dev"
                + (f", {flagged} flagged" if flagged else "") + ". ")
        if st.decision is None:
            out.append(head + "No decision yet.")
            continue
        words = _DECISION_WORDS.get(st.decision.kind, st.decision.kind)
        chosen = next((c for c in st.candidates if c.id == st.decision.candidate_id), None)
        tail = f"Decision: {md_text(words)}"
        if chosen is not None:
            dev = (Proportion(chosen.dev_correct, chosen.dev_answered) if chosen.dev_correct is not None
                   else Proportion.of(chosen.dev_accuracy, chosen.dev_answered or n_dev))
            tail += f" `{md_text(chosen.id)}`, dev accuracy {_acc(dev)}: {md_text(chosen.text)}"
            if chosen.p_value is not None:
                tail += (f" (vs the prompt before: {chosen.fixed} fixed, {chosen.broken} broken, "
                         f"McNemar p = {chosen.p_value:.3g})")
        if st.decision.note:
            tail += f". Note: {md_text(st.decision.note)}"
        out.append(head + tail + ".")
    if s.stopped_early:
        out.append(f"- The run {md_text(s.stopped_early.get('reason', 'stopped early'))}.")
    return out


def _gap_lines(s: RunState) -> list[str]:
    """The report's dev-test gap section: one row per step, then the warnings."""
    points = gap_series(s, include_hidden=True)
    if not points or all(p.test is None for p in points):
        return []
    out = ["", "## Dev-test gap", "",
           f"Dev minus test accuracy of the prompt in use after each step, with its 95% interval (Newcombe's "
           f"hybrid score method); a warning when the interval lies above 0 and the gap exceeds "
           f"{100 * GAP_THRESHOLD:.0f} points.", "",
           "| step | dev | test | gap [95% CI] | warning |", "|---|---|---|---|---|"]
    for p in points:
        gap = "–" if p.gap is None or p.gap_ci is None else (
            f"{100 * p.gap:+.1f} [{100 * p.gap_ci[0]:+.1f}, {100 * p.gap_ci[1]:+.1f}] points")
        out.append(f"| {p.step} | {_acc(p.dev)} | {_acc(p.test)} | {gap} | {'opened' if p.warning else ''} |")
    out += [f"- {_md_cell(w)}" for w in (gap_warning_text(p) for p in points) if w]
    return out


def _flag_lines(s: RunState) -> list[str]:
    """The report's flagged candidates: id, what was done with it, what matched."""
    rows = [(st, c) for st in s.steps for c in st.candidates if c.flags]
    if not rows:
        return []
    out = ["", "## Flagged candidates", ""]
    for st, c in rows:
        badges = ", ".join(FLAG_LABELS.get(f, f) for f in c.flags)
        fate = ("dropped unscored" if c.status == "flagged" else
                "chosen" if st.decision and st.decision.candidate_id == c.id else "scored")
        out.append(f"- step {st.step}.{st.attempt}, `{c.id}` ({badges}; {fate}): {_md_cell(c.text)} — "
                   f"{_md_cell('; '.join(c.flag_notes))}")
    return out


def export_records_csv(records: list[dict]) -> str:
    """Per-example records as CSV text (pandas), with formula-looking cells (=, +, -, @ ...)
    neutralized so a spreadsheet shows them as text instead of running them."""
    import pandas as pd

    from gpo_core.tasks.io import neutralize_formula

    cols = ["input", "target", "parsed_answer", "correct", "raw_output", "error", "prompt_tokens", "completion_tokens"]
    df = pd.DataFrame(records, columns=cols)
    for c in ("input", "target", "parsed_answer", "raw_output", "error"):
        df[c] = df[c].map(lambda v: neutralize_formula(v) if isinstance(v, str) else v)
    return df.to_csv(index=False)
