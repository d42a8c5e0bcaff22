"""Exports of a run: the final prompt (.txt), the run (.json, no keys) and a report (.md).

API keys are never part of a run (ModelSettings hold none), and :func:`export_json` also
drops any key-like field defensively.
"""

from __future__ import annotations

import json

from gpo_core.optimizer.session import GPOSession

_SECRET_KEYS = {"api_key", "apikey", "authorization", "key", "token", "secret"}


def _scrub(obj):
    if isinstance(obj, dict):
        return {k: _scrub(v) for k, v in obj.items() if k.lower() not in _SECRET_KEYS}
    if isinstance(obj, list):
        return [_scrub(v) for v in obj]
    return obj


def final_prompt_text(session: GPOSession) -> str:
    """The final prompt: the chosen prompt with the best dev accuracy, plus a newline."""
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
    data["final_prompt"] = session.best_prompt().prompt
    return json.dumps(_scrub(data), ensure_ascii=False, indent=1)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def export_markdown(session: GPOSession) -> str:
    """A human-readable report: settings, start vs final accuracy, the trajectory of chosen
    prompts per step, token totals (spent, and what cached calls had cost) and the steps'
    warnings (e.g. a server that answered as another model). User text is escaped for Markdown tables and
    fenced as code so it renders as text."""
    s = session.state
    best = session.best_prompt()
    init = s.initial or {}
    total = None
    for st in s.steps:
        total = st.usage if total is None else total.merge(st.usage)
    best_test = None
    for st in s.steps:
        if st.chosen_entry_id == best.id:
            best_test = st.chosen_test_accuracy
    if best.id == 0:
        best_test = init.get("test_accuracy")
    cfg = s.settings.optimizer
    lines = [
        f"# GPO Studio report: {s.task.name}",
        "",
        f"Run `{s.run_id}`, created {s.created_at}, last saved {s.updated_at}.",
        "",
        "## Settings",
        "",
        f"- Task model: `{s.settings.task_model.describe()}`; optimizer model: "
        f"`{s.settings.optimizer_model.describe()}`",
        f"- {cfg.steps} steps, {cfg.candidates} candidates a step, k = {cfg.k} by {cfg.selection}; "
        f"decision policy {cfg.policy}",
        f"- Edit budget: {cfg.schedule} from {cfg.budget_initial} to {cfg.budget_final} words"
        f" (warmup {cfg.warmup}; in meta-prompt: {cfg.use_budget}; enforced: {cfg.enforce_budget})",
        f"- Splits: train {len(s.splits['train'])}, dev {len(s.splits['dev'])}, test {len(s.splits['test'])}; "
        f"seed {s.settings.splits.seed}",
        "",
        "## Result",
        "",
        "| prompt | dev accuracy | test accuracy |",
        "|---|---|---|",
        f"| starting | {_pct(init.get('dev_accuracy'))} | {_pct(init.get('test_accuracy'))} |",
        f"| final (best on dev) | {_pct(best.dev_accuracy)} | {_pct(best_test)} |",
        "",
        "Final prompt:",
        "",
        "```text",
        best.prompt.replace("```", "` ` `"),
        "```",
        "",
        "## Steps",
        "",
        "| step | budget | decision | chosen prompt | edit distance | dev | test | tokens |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for st in s.steps:
        kind = st.decision.kind if st.decision else "pending"
        chosen = next((c for c in st.candidates if st.decision and c.id == st.decision.candidate_id), None)
        lines.append(
            f"| {st.step}.{st.attempt} | {st.budget} | {kind} | {_md_cell(chosen.text) if chosen else '–'} | "
            f"{chosen.edit_distance if chosen else '–'} | {_pct(chosen.dev_accuracy) if chosen else '–'} | "
            f"{_pct(st.chosen_test_accuracy)} | {st.usage.total_tokens} |")
    if total is not None:
        lines += ["", f"Tokens spent in all steps: {total.prompt_tokens} prompt + {total.completion_tokens} completion "
                      f"in {total.calls} calls ({total.cached_calls} from cache, which had cost {total.cached_tokens} "
                      f"tokens when made; {total.retries} retries, {total.failed_calls} failed)."]
    warnings = [f"- step {st.step}.{st.attempt}: {w}" for st in s.steps for w in st.warnings]
    if warnings:
        lines += ["", "## Warnings", ""] + [_md_cell(w) for w in warnings]
    return "\n".join(lines) + "\n"


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
