"""Results: curves, the trajectory, per-example answers, exports, and saved runs to reopen."""

import json

import streamlit as st

from gpo_core.errors import GPOError
from gpo_core.runs.repository import RunInUseError
from gpo_core.studio import charts, compare_chart
from gpo_core.studio.studio import Studio
from gpo_core.studio.views import class_report_view, compare_view, cost_view, markup, run_view, uncertainty
from gpo_core.studio.worker import JobBusyError

if "studio" not in st.session_state:
    # A fresh server's first request straight to this page runs it without app.py (Streamlit
    # treats a pages/ folder as legacy multipage until st.navigation runs): go through app.py,
    # keeping the address (the open run, the owner token), and come back to this page.
    st.switch_page("app.py", query_params={**st.query_params.to_dict(), "page": "results"})
studio: Studio = st.session_state["studio"]
runs = studio.runs
md = markup.escape_markdown

st.title("Results")
# A job's outcome shows where the job was started: here for "Repeat with seeds", else on the
# Optimize page (an automatic run that ends while this page is open keeps its message there).
_finished = studio.actions.job()
for f in studio.pop_flashes(outcome=_finished is not None and _finished.kind == "seeds" and not _finished.running):
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


def _save_label(run_id: str) -> None:
    """"Save name, tags and note" (a callback)."""
    try:
        runs.set_label(run_id, str(st.session_state.get(f"label_name_{run_id}") or ""),
                       str(st.session_state.get(f"label_tags_{run_id}") or ""),
                       str(st.session_state.get(f"label_note_{run_id}") or ""))
    except GPOError as e:
        studio.flash("error", str(e))
    else:
        studio.flash("success", f"Saved the name, tags and note of run {run_id}.")


def _ask_delete(run_id: str | None) -> None:
    st.session_state["confirm_delete"] = run_id


def _delete(run_id: str) -> None:
    """"Delete for good" (a callback, after the confirmation)."""
    st.session_state.pop("confirm_delete", None)
    try:
        gone = runs.delete(run_id)
    except GPOError as e:
        studio.flash("error", str(e))
    else:
        studio.flash("success", f"Deleted run {run_id} ({gone}); no other file was touched.")


def label_box(run_id: str) -> None:
    """Name, tags and note of the picked run, and deleting it (asks first)."""
    try:
        label = runs.label(run_id)
    except GPOError as e:
        st.warning(md(f"{e}"))
        label = None
    n1, n2 = st.columns([2, 3])
    n1.text_input("Name", value=label.name if label else "", key=f"label_name_{run_id}", max_chars=80)
    n2.text_input("Tags", value=", ".join(label.tags) if label else "", key=f"label_tags_{run_id}",
                  help="Separated by commas or spaces; letters, digits and _ . + - only.")
    st.text_area("Note", value=label.note if label else "", key=f"label_note_{run_id}", max_chars=2000, height=80)
    with st.container(horizontal=True):
        st.button("Save name, tags and note", key=f"save_label_{run_id}", on_click=_save_label, args=(run_id,))
        if st.session_state.get("confirm_delete") != run_id:
            st.button("Delete this run…", key=f"ask_delete_{run_id}", on_click=_ask_delete, args=(run_id,))
    if st.session_state.get("confirm_delete") == run_id:
        st.warning(md(f"Delete run {run_id} and all its files (its steps, per-example results and exports kept in "
                      f"its folder {runs.root / run_id})? This cannot be undone. No other file is touched."))
        with st.container(horizontal=True):
            st.button("Delete for good", key=f"delete_{run_id}", type="primary", on_click=_delete, args=(run_id,))
            st.button("Cancel", key=f"cancel_delete_{run_id}", on_click=_ask_delete, args=(None,))


def saved_runs_section(saved: list[dict]) -> None:
    st.subheader("Saved runs")
    st.caption(md(f"Runs are saved after every step in {runs.root}. The open run is kept in the page "
                  "address, so a reload reopens it; open any saved run here to inspect or resume it."))
    if not saved:
        st.info("No saved runs yet.")
        return
    st.dataframe(run_view.runs_frame(saved), hide_index=True, width="stretch")
    ids = [r["run_id"] for r in saved if "error" not in r]
    if not ids:
        return
    by_id = {r["run_id"]: r for r in saved}
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    run_id = c1.selectbox("Run", ids, key="open_run_id", format_func=lambda i: compare_view.run_choice_label(by_id[i]))
    take_over = st.session_state.get("take_over_run") == run_id
    c2.button("Open anyway" if take_over else "Open and resume", key="open_run", on_click=_open_run)
    if run_id is not None:
        with st.expander("Name, tags, note · delete", expanded=st.session_state.get("confirm_delete") == run_id):
            label_box(run_id)


def compare_section(saved: list[dict]) -> None:
    """Issue 13: 2-6 saved runs side by side (curves, settings diff, final prompts, paired tests)."""
    st.subheader("Compare runs")
    ok = {r["run_id"]: r for r in saved if "error" not in r}
    if len(ok) < 2:
        st.info("Save at least two runs to compare them.")
        return
    picked = st.multiselect("Runs to compare (2 to 6; the first is the base of the word diffs)", list(ok),
                            format_func=lambda i: compare_view.run_choice_label(ok[i]), max_selections=6,
                            key="compare_run_ids")
    if len(picked) < 2:
        st.caption("Pick at least two runs.")
        return
    try:
        cmp = runs.compare(picked)
    except GPOError as e:
        st.error(md(str(e)))
        return
    st.dataframe(compare_view.runs_frame(cmp), hide_index=True, width="stretch",
                 column_config={"note": st.column_config.TextColumn(width="medium")})
    st.plotly_chart(compare_chart.compare_figure(cmp), key="compare_chart")
    st.markdown("**Settings that differ**")
    if cmp.differences:
        st.dataframe(compare_view.settings_frame(cmp), hide_index=True, width="stretch")
    else:
        st.caption("Every setting is the same in these runs (seeds included).")
    st.markdown("**Final prompts** (word diff against run 1: removed words struck through in red, added words in "
                "green)")
    cols = st.columns(len(cmp.runs))
    for i, (col, r, segs, dist) in enumerate(zip(cols, cmp.runs, cmp.prompt_diffs(), cmp.edit_distances()), 1):
        with col.container(border=True):
            st.markdown(f"**{i}. {md(r.title)}**" + ("" if i == 1 else f" · {dist} words changed"))
            st.markdown(md(r.final.prompt) if i == 1 else markup.diff_markdown(segs))
    st.markdown("**Paired tests on the test examples the runs share**")
    st.caption("Each pair of final prompts on the test examples both answered (matched by input and target; runs "
               "on another task or split share fewer or none): the examples only one of them got right, and the "
               "exact McNemar p. With several pairs the p adjusted for their number (Benjamini-Hochberg) is the "
               "one to read.")
    st.dataframe(compare_view.paired_frame(cmp), hide_index=True, width="stretch")
    st.download_button("Comparison (.json)", json.dumps(cmp.to_dict(), indent=1, ensure_ascii=False),
                       file_name="comparison.json", mime="application/json", key="dl_comparison", on_click="ignore")


session = runs.session
initial = session.state.initial if session is not None else None  # None until the start is scored
if session is None or initial is None:
    st.info("No scored run open in this browser session. Run one on the Optimize page, or open a saved run below.")
    _saved = runs.saved()
    saved_runs_section(_saved)
    compare_section(_saved)
    st.stop()

state = session.state
actions = studio.actions
busy = actions.busy()
hidden = run_view.test_is_hidden(state)  # a blind test not revealed yet: no test number on this page


def _call(action, *args) -> None:
    try:
        action(*args)
    except (JobBusyError, GPOError) as e:
        studio.flash("error", str(e))


def _stop() -> None:
    actions.stop()


def _reveal_on_export() -> None:
    """A download of a blind run holds its test scores, so it reveals them (recorded)."""
    _call(actions.reveal_test, "export")


def _repeat_with_seeds() -> None:
    text = str(st.session_state.get("seeds_text") or "")
    try:
        seeds = [int(x) for x in text.replace(" ", ",").split(",") if x.strip()]
    except ValueError:
        studio.flash("error", f"Seeds: whole numbers separated by commas, e.g. 1, 2, 3; got {text!r}")
        return
    _call(actions.submit_seeds, seeds)


@st.fragment(run_every=0.5)
def running_job() -> None:
    """The open run's running job (automatic steps, seeds...): progress, log, Stop."""
    job = actions.job()
    if job is None or not job.running:
        st.rerun()
    with st.container(border=True, key="results_job_box"):
        st.markdown(f"**{md(job.label)}**")
        st.progress(markup.progress_fraction(job.done, job.total),
                    text=markup.job_progress_text(job.phase, job.done, job.total))
        for line in job.log[-8:]:
            st.text(line)
        st.caption(f"{job.seconds:.0f} s so far. The work goes on if you leave this page or reload it.")
        if job.stoppable:
            st.button("Stop", key="stop_results_job", on_click=_stop)


st.caption(f"Run {state.run_id} · task {md(session.task_name)} · {len(state.decided_steps)} of "
           f"{session.config.steps} steps done · {md(run_view.policy_text(session.settings))}")
job = actions.job()
if job is not None and job.running:
    running_job()
comparison = session.final_comparison()
with st.container(horizontal=True, gap="large"):
    for name, (value, interval) in run_view.final_metrics(comparison, hidden).items():
        st.metric(name, value, interval, delta_color="off", delta_arrow="off")
st.caption(md(uncertainty.explainer(uncertainty.initial_accuracy(state, "dev"))))
if (baseline := class_report_view.dev_baseline_caption(state)) is not None:  # label tasks only (issue 12)
    st.caption(md(baseline))
st.caption(md(cost_view.spend_text(session.spend()) + (f" · racing saved {cost_view.calls_saved(state):,} "
                                                         "task-model calls" if session.config.racing else "")))
if hidden:
    with st.container(horizontal=True, vertical_alignment="center"):
        st.info("Blind test: every test number on this page stays hidden until you reveal them. "
                "Downloading an export reveals them too (the export holds them).")
        st.button("Reveal test scores", key="reveal_test", disabled=busy, on_click=_call, args=(actions.reveal_test,))
elif state.test_revealed:
    st.caption(md(f"Blind test: test scores revealed by {state.test_revealed.get('by', '?')} at "
                  f"{state.test_revealed.get('at', '?')}."))
st.markdown(f"**Final prompt** ({md(run_view.FINAL_PROMPT_RULE)})")
st.code(comparison.prompt, language=None, wrap_lines=True)
st.caption(md(comparison.summary(show_test=not hidden)))

c1, c2 = st.columns(2)
c1.plotly_chart(charts.accuracy_figure(state), key="accuracy_chart")
c2.plotly_chart(charts.budget_figure(state, session.budgets()), key="budget_chart")
c1, c2 = st.columns(2)
c1.plotly_chart(charts.gap_figure(state), key="gap_chart")
with c2:
    st.markdown("**Overfitting guard**")
    st.caption("Prompts are chosen on dev, so the prompt in use tends to score higher on dev than on test. The "
               "chart shows dev minus test per step with its 95% interval; a warning appears when the interval "
               "lies above 0 and the gap exceeds 10 points.")
    warnings = [] if hidden else run_view.gap_warnings(state)
    for w in warnings:
        st.warning(md(w[:1].upper() + w[1:] + "."))
    if not warnings and not hidden:
        st.success("No dev-test gap has opened so far.")

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
split = c2.radio("Split", ["dev"] if hidden else ["dev", "test"], horizontal=True, key="records_split",
                 help="Test results are hidden while the blind test is." if hidden else None)
wrong_only = c3.checkbox("Wrong answers only", key="records_wrong")
recs_a = runs.records(key_a, split) if key_a is not None else []
unreadable = runs.records_problem(key_a, split) if key_a is not None else None  # a damaged records file
if unreadable:
    st.warning(md(f"Unreadable: these per-example results cannot be shown. {unreadable}. The run's scores "
                  "and every other result are intact."))
elif not recs_a:
    st.info(f"This prompt has no {split} results (only chosen prompts are scored on test).")
else:
    acc_a = uncertainty.records_accuracy(recs_a)
    failed = len(recs_a) - (acc_a.answered if acc_a else 0)
    report = class_report_view.report_of(state, recs_a)  # label tasks only (issue 12)
    st.caption(md(f"Accuracy on {split}: {acc_a.sized(split) if acc_a else '–'}"
                  + (f" ({failed} failed calls left out)" if failed else "")
                  + (f" · {report.baseline_text()}" if report else "")))
    st.dataframe(run_view.records_frame(recs_a, wrong_only), hide_index=True, width="stretch")
    if report is not None:
        st.markdown(f"**Classification report** ({md(label_of(key_a))}, {split})")
        r1, r2 = st.columns(2)
        r1.plotly_chart(class_report_view.matrix_figure(report), key="class_matrix")
        r2.dataframe(class_report_view.classes_frame(report), hide_index=True, width="stretch")

with st.expander("Compare two prompts side by side", expanded=False):
    d1, d2 = st.columns(2)
    cmp_a = d1.selectbox("Prompt A", keys, format_func=label_of, key="cmp_a")
    cmp_b = d2.selectbox("Prompt B", keys, index=len(keys) - 1, format_func=label_of, key="cmp_b")
    ra = runs.records(cmp_a, split) if cmp_a is not None else []
    rb = runs.records(cmp_b, split) if cmp_b is not None else []
    for col, recs, key in ((d1, ra, cmp_a), (d2, rb, cmp_b)):
        problem = runs.records_problem(key, split) if key is not None else None
        if problem:
            col.warning(md(f"Unreadable: {problem}."))
        acc = uncertainty.records_accuracy(recs)
        col.caption(md(f"{split} accuracy: {acc.sized(split) if acc else '–'}"))
        col.dataframe(run_view.records_frame(recs, wrong_only), hide_index=True, width="stretch")
    if ra and rb:
        st.caption(md(run_view.compare_text(ra, rb, split)))
        st.caption("Same examples, A vs B" + (" (rows where either is wrong)" if wrong_only else ""))
        st.dataframe(run_view.compare_frame(ra, rb, wrong_only), hide_index=True, width="stretch")

st.subheader("Export")
# Built when clicked (in a thread of their own), not on every run of this page.
if hidden:
    st.caption("The run and report exports hold the test scores: downloading one reveals them here too.")
on_download = _reveal_on_export if hidden else "ignore"
e1, e2, e3 = st.columns(3)
exports = studio.exports
e1.download_button("Final prompt (.txt)", exports.final_prompt, file_name=exports.file_name("final-prompt.txt"),
                   mime="text/plain", key="dl_prompt", on_click="ignore")
e2.download_button("Run (.json, no keys)", exports.run_json, file_name=exports.file_name("run.json"),
                   mime="application/json", key="dl_json", on_click=on_download)
e3.download_button("Report (.md)", exports.report_md, file_name=exports.file_name("report.md"),
                   mime="text/markdown", key="dl_report", on_click=on_download)
st.caption("The final prompt in the form it is used, each stating the accuracy it was measured at (95% interval, "
           "split); no API key in any of them. The HTML report is " + exports.html_size_note() + ".")
f1, f2, f3, f4 = st.columns(4)
f1.download_button("Report (.html, offline)", exports.report_html, file_name=exports.file_name("report.html"),
                   mime="text/html", key="dl_report_html", on_click=on_download)
f2.download_button("Chat messages (.json)", exports.messages, file_name=exports.file_name("messages.json"),
                   mime="application/json", key="dl_messages", on_click=on_download)
f3.download_button("OpenAI snippet (.py)", exports.snippet, file_name=exports.file_name("openai_snippet.py"),
                   mime="text/x-python", key="dl_snippet", on_click=on_download)
f4.download_button("promptfoo config (.yaml)", exports.promptfoo, file_name=exports.file_name("promptfoo.yaml"),
                   mime="application/yaml", key="dl_promptfoo", on_click=on_download)

st.subheader("Seed variance")
st.caption("Repeat this run with other seeds to see how much the optimizer itself varies: each seed is a new saved "
           "run on the same task, examples and settings (the seed changes the exemplars, so the optimizer's samples "
           "differ), run to its end with the run's decision policy. Reported: the final prompt's test accuracy, "
           "mean and spread.")
c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
c1.text_input("Seeds", value="1, 2, 3", key="seeds_text", help="Whole numbers separated by commas (at most 20).")
c2.button("Repeat with seeds", key="repeat_seeds", disabled=busy, on_click=_repeat_with_seeds,
          help="Wait for the running work to end first." if busy else None)
summary = actions.seed_summaries.get(state.run_id)
if summary is not None:
    if hidden and summary.split == "test":
        st.info("The seed runs' test accuracies are hidden while this run's blind test is: reveal them above.")
    else:
        with st.container(horizontal=True, gap="large"):
            for name, value in run_view.seeds_metrics(summary).items():
                st.metric(name, value)
        st.dataframe(run_view.seeds_frame(summary), hide_index=True, width="stretch",
                     column_config={"final prompt": st.column_config.TextColumn(width="large")})

st.divider()
_saved = runs.saved()
saved_runs_section(_saved)
compare_section(_saved)
