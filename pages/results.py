"""Results: curves, the trajectory, per-example answers, exports, and saved runs to reopen."""

import streamlit as st

from gpo_core.errors import GPOError
from gpo_core.runs.repository import RunInUseError
from gpo_core.studio import charts
from gpo_core.studio.studio import Studio
from gpo_core.studio.views import markup, run_view

if "studio" not in st.session_state:
    # A fresh server's first request straight to this page runs it without app.py (Streamlit
    # treats a pages/ folder as legacy multipage until st.navigation runs): go through app.py,
    # keeping the address (the open run, the owner token), and come back to this page.
    st.switch_page("app.py", query_params={**st.query_params.to_dict(), "page": "results"})
studio: Studio = st.session_state["studio"]
runs = studio.runs
md = markup.escape_markdown

st.title("Results")
for f in studio.pop_flashes():
    getattr(st, f.kind)(md(f.text))


def _open_run() -> None:
    """"Open and resume" (a callback: the page drawn next already shows the run)."""
    run_id = st.session_state.get("open_run_id")
    if not isinstance(run_id, str):
        return
    take_over = st.session_state.get("take_over_run") == run_id
    try:
        s = runs.open(run_id, take_over=take_over)
    except RunInUseError as e:
        st.session_state["take_over_run"] = run_id
        studio.flash("warning", f"{e}. Click \"Open anyway\" to take it over; the other session then stops saving.")
    except GPOError as e:
        studio.flash("error", str(e))
    else:
        st.session_state.pop("take_over_run", None)
        studio.flash("success", f"Opened run {s.state.run_id} ({len(s.state.decided_steps)} of "
                                f"{s.config.steps} steps done). Continue on the Optimize page.")


def saved_runs_section() -> None:
    st.subheader("Saved runs")
    st.caption(md(f"Runs are saved after every step in {runs.root}. The open run is kept in the page "
                  "address, so a reload reopens it; open any saved run here to inspect or resume it."))
    saved = runs.saved()
    if not saved:
        st.info("No saved runs yet.")
        return
    st.dataframe(run_view.runs_frame(saved), hide_index=True, width="stretch")
    ids = [r["run_id"] for r in saved if "error" not in r]
    if not ids:
        return
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    run_id = c1.selectbox("Run", ids, key="open_run_id")
    take_over = st.session_state.get("take_over_run") == run_id
    c2.button("Open anyway" if take_over else "Open and resume", key="open_run", on_click=_open_run)


session = runs.session
initial = session.state.initial if session is not None else None  # None until the start is scored
if session is None or initial is None:
    st.info("No scored run open in this browser session. Run one on the Optimize page, or open a saved run below.")
    saved_runs_section()
    st.stop()

state = session.state
best = session.best_prompt()
st.caption(f"Run {state.run_id} · task {md(session.task_name)} · {len(state.decided_steps)} of "
           f"{session.config.steps} steps done")
m1, m2, m3 = st.columns(3)
m1.metric("Starting prompt (dev)", markup.pct(initial["dev_accuracy"]))
m2.metric("Best prompt (dev)", markup.pct(best.dev_accuracy))
m3.metric("Starting prompt (test)", markup.pct(initial.get("test_accuracy")))
st.markdown("**Final prompt** (the chosen prompt with the best dev accuracy)")
st.code(best.prompt, language=None, wrap_lines=True)

c1, c2 = st.columns(2)
c1.plotly_chart(charts.accuracy_figure(state), key="accuracy_chart")
c2.plotly_chart(charts.budget_figure(state, session.budgets()), key="budget_chart")

st.subheader("Trajectory")
tab_steps, tab_traj = st.tabs(["Steps", "Every scored prompt"])
tab_steps.dataframe(run_view.steps_frame(state), hide_index=True, width="stretch")
tab_traj.dataframe(run_view.trajectory_frame(state), hide_index=True, width="stretch",
                   column_config={"prompt": st.column_config.TextColumn(width="large")})

st.subheader("Per-example results")
options = run_view.prompt_options(session)
labels = dict(options)
keys = [k for k, _ in options]


def label_of(key: str) -> str:
    return labels[key]


c1, c2, c3 = st.columns([4, 1, 1], vertical_alignment="bottom")
key_a = c1.selectbox("Prompt", keys, format_func=label_of, key="records_a")
split = c2.radio("Split", ["dev", "test"], horizontal=True, key="records_split")
wrong_only = c3.checkbox("Wrong answers only", key="records_wrong")
recs_a = runs.records(key_a, split) if key_a is not None else []
if not recs_a:
    st.info(f"This prompt has no {split} results (only chosen prompts are scored on test).")
else:
    st.caption(f"Accuracy on {split}: {markup.pct(run_view.records_accuracy(recs_a))} ({len(recs_a)} examples)")
    st.dataframe(run_view.records_frame(recs_a, wrong_only), hide_index=True, width="stretch")

with st.expander("Compare two prompts side by side", expanded=False):
    d1, d2 = st.columns(2)
    cmp_a = d1.selectbox("Prompt A", keys, format_func=label_of, key="cmp_a")
    cmp_b = d2.selectbox("Prompt B", keys, index=len(keys) - 1, format_func=label_of, key="cmp_b")
    ra = runs.records(cmp_a, split) if cmp_a is not None else []
    rb = runs.records(cmp_b, split) if cmp_b is not None else []
    for col, recs in ((d1, ra), (d2, rb)):
        col.caption(f"{split} accuracy: {markup.pct(run_view.records_accuracy(recs))}")
        col.dataframe(run_view.records_frame(recs, wrong_only), hide_index=True, width="stretch")
    if ra and rb:
        st.caption("Same examples, A vs B" + (" (rows where either is wrong)" if wrong_only else ""))
        st.dataframe(run_view.compare_frame(ra, rb, wrong_only), hide_index=True, width="stretch")

st.subheader("Export")
# Built when clicked (in a thread of their own), not on every run of this page.
e1, e2, e3 = st.columns(3)
exports = studio.exports
e1.download_button("Final prompt (.txt)", exports.final_prompt, file_name=exports.file_name("final-prompt.txt"),
                   mime="text/plain", key="dl_prompt", on_click="ignore")
e2.download_button("Run (.json, no keys)", exports.run_json, file_name=exports.file_name("run.json"),
                   mime="application/json", key="dl_json", on_click="ignore")
e3.download_button("Report (.md)", exports.report_md, file_name=exports.file_name("report.md"),
                   mime="text/markdown", key="dl_report", on_click="ignore")

st.divider()
saved_runs_section()
