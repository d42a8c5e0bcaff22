"""Optimize: score the starting prompt, then step through GPO by hand or automatically."""

import streamlit as st

from gpo_core.studio import charts, views
from gpo_core.errors import GPOError
from gpo_core.optimizer.schedule import SCHEDULE_KINDS
from gpo_core.studio.studio import Studio
from gpo_core.optimizer.direction import SELECTION_STRATEGIES

if "studio" not in st.session_state:
    # A fresh server's first request straight to this page runs it without app.py (Streamlit
    # treats a pages/ folder as legacy multipage until st.navigation runs): go through app.py.
    st.switch_page("app.py")
studio: Studio = st.session_state["studio"]
md = views.escape_markdown

st.title("Optimize")
for f in studio.pop_flashes():
    getattr(st, f.kind)(md(f.text))


def progress_callback(container):
    """A (phase, done, total) callback drawing a progress bar in ``container``."""
    bar = container.progress(0.0, text="Preparing (the first call loads the models)…")

    def on_progress(phase: str, done: int, total: int) -> None:
        bar.progress(views.progress_fraction(done, total), text=views.progress_text(phase, done, total))

    return on_progress


def run_action(label: str, action, done_message=None, rerun: bool = True) -> None:
    """Run a long engine action with a live status box. On success: with ``rerun`` queue
    ``done_message(result)`` (if given) and rerun the page (needed when what is drawn above
    changed); without, show the message and let the page go on rendering the new state
    (one render per click). On an engine error show it here."""
    with st.status(label, expanded=True) as status:
        try:
            result = action(progress_callback(status))
        except GPOError as e:
            status.update(label=f"{label} failed", state="error")
            st.error(md(str(e)))
            return
        status.update(label=label.rstrip("…") + ": done", state="complete", expanded=False)
    if not rerun:
        if done_message is not None:
            st.success(md(done_message(result)))
        return
    if done_message is not None:
        studio.flash("success", done_message(result))
    st.rerun()


if studio.task is None and studio.session is None:
    st.info("Load a task first (Task page), or reopen a saved run (Results page).")
    st.page_link("pages/task.py", label="Go to Task", icon=":material/table_view:")
    st.stop()

session = studio.session

# ----------------------------------------------------------------------------- settings
with st.expander("Run settings" if session is None else "Run settings (for a new run)", expanded=session is None):
    cfg = studio.config
    c1, c2, c3, c4 = st.columns(4)
    steps = c1.number_input("Total steps T", min_value=1, max_value=200, value=cfg.steps, key="cfg_steps")
    candidates = c2.number_input("Candidates per step", min_value=1, max_value=32, value=cfg.candidates,
                                 key="cfg_candidates")
    k = c3.number_input("k (trajectory prompts retrieved)", min_value=1, max_value=20, value=cfg.k, key="cfg_k")
    selection = c4.selectbox("Selection strategy", SELECTION_STRATEGIES, index=SELECTION_STRATEGIES.index(cfg.selection),
                             key="cfg_selection", help="relevance: newest + most similar (GPO); recency: newest; "
                                                       "importance: highest dev score.")
    c1, c2, c3, c4 = st.columns(4)
    schedule = c1.selectbox("Edit budget schedule", SCHEDULE_KINDS, index=SCHEDULE_KINDS.index(cfg.schedule),
                            key="cfg_schedule")
    initial = c2.number_input("Initial budget (words)", min_value=1, max_value=1000, value=cfg.budget_initial,
                              key="cfg_initial")
    final = c3.number_input("Final budget (words)", min_value=1, max_value=1000, value=cfg.budget_final,
                            key="cfg_final", disabled=schedule == "fixed")
    warmup = c4.number_input("Warmup steps", min_value=0, max_value=199, value=cfg.warmup, key="cfg_warmup")
    c1, c2, c3 = st.columns(3)
    use_budget = c1.toggle("State the budget in the meta-prompt", value=cfg.use_budget, key="cfg_use_budget")
    enforce = c2.toggle("Enforce budget (drop over-budget candidates unscored)", value=cfg.enforce_budget,
                        key="cfg_enforce")
    exemplars = c3.number_input("Task exemplars in the meta-prompt", min_value=0, max_value=10, value=cfg.n_exemplars,
                                key="cfg_exemplars")
    try:
        studio.update_config(steps=int(steps), candidates=int(candidates), k=int(k), selection=selection,
                             schedule=schedule, budget_initial=int(initial), budget_final=int(final),
                             warmup=int(warmup), use_budget=use_budget, enforce_budget=enforce,
                             n_exemplars=int(exemplars))
        if session is None:  # with a run open the step's own schedule plot is below; skip the draft's
            st.plotly_chart(charts.schedule_figure(studio.draft_budgets(), height=200), key="draft_schedule",
                            config={"displayModeBar": False})
        else:
            st.caption("Edit budget per step (words): " + " ".join(str(b) for b in studio.draft_budgets()))
    except GPOError as e:
        st.error(md(str(e)))
    label = "Create the run and score the starting prompt" if session is None else "Start a new run with these settings"
    if st.button(label, type="primary" if session is None else "secondary", disabled=studio.task is None,
                 key="new_run"):
        try:
            studio.new_run()
        except GPOError as e:
            st.error(md(str(e)))
        else:
            run_action("Scoring the starting prompt on dev and test…", studio.start,
                       lambda init: f"Starting prompt scored: dev {views.pct(init['dev_accuracy'])}, "
                                    f"test {views.pct(init['test_accuracy'])}.")

if session is None:
    st.stop()

state = session.state
if not session.started:
    st.warning("The starting prompt of this run is not scored yet.")
    if st.button("Score the starting prompt", type="primary", key="start_run"):
        run_action("Scoring the starting prompt on dev and test…", studio.start,
                   lambda init: f"Starting prompt scored: dev {views.pct(init['dev_accuracy'])}.")
    st.stop()

# ----------------------------------------------------------------------------- where we are
T = session.config.steps
done = len(state.decided_steps)
st.caption(f"Run {state.run_id} · task {md(session.task_name)}")
for col, (label, value) in zip(st.columns(4), views.run_summary(state, T).items()):
    col.metric(label, value)
st.markdown("**Current prompt**")
st.code(state.current_prompt, language=None, wrap_lines=True)

# ----------------------------------------------------------------------------- controls
pending = state.pending_step
c1, c2, c3, c4 = st.columns([2, 1, 2, 1], vertical_alignment="bottom")
next_clicked = c1.button(f"Next step ({min(done + 1, T)} of {T})", type="primary", key="next_step",
                         disabled=session.finished or pending is not None,
                         help="Decide the pending step first." if pending is not None else None)
remaining = max(1, T - done)
n_auto = c2.number_input("Steps", min_value=1, max_value=remaining, value=min(studio.auto_steps, remaining),
                         key="auto_n", disabled=session.finished)
auto_clicked = c3.button("Run N steps automatically", key="run_auto", disabled=session.finished,
                         help="Each step takes the best candidate not chosen before, as in the paper.")
stop_clicked = c4.button("Stop", key="stop_auto", help="Stops after the running model call; finished steps are kept.")

if stop_clicked:
    st.info(f"Stopped. Every finished step is kept: {done} of {T} steps done.")
if next_clicked:
    # Nothing drawn above changes when a step is proposed, so the page renders on without a
    # second run (a stale enabled "Next step" is harmless: proposing again returns the pending step).
    run_action(f"Running step {done + 1} of {T}: retrieving, sampling candidates, scoring them on dev…", studio.next_step,
               lambda step: f"Step {step.step}: {len(step.candidates)} candidates ready. Accept one or reject all.",
               rerun=False)
if auto_clicked:
    studio.auto_steps = int(n_auto)
    with st.status(f"Running {int(n_auto)} steps automatically…", expanded=True) as status:
        log = status.container()
        on_progress = progress_callback(status)
        try:
            finished = studio.run_auto(int(n_auto), on_step=lambda s: log.text(views.decision_text(s)),
                                       on_progress=on_progress)
        except GPOError as e:
            status.update(label="Automatic run stopped by an error", state="error")
            st.error(md(str(e)) + " Every finished step is kept.")
        else:
            studio.flash("success", f"Ran {len(finished)} steps automatically.")
            st.rerun()

if session.finished:
    st.success(f"All {T} steps are done.")
    st.page_link("pages/results.py", label="See the results", icon=":material/monitoring:")

# ----------------------------------------------------------------------------- the step
step = studio.shown_step()
if step is None:
    st.info("Press **Next step** to run step 1: the optimizer model proposes candidates, scored on dev.")
    st.stop()

st.divider()
st.subheader(f"Step {step.step} of {T} · edit budget {step.budget} words")
if step.attempt > 1:
    st.caption(f"Attempt {step.attempt} of this step (earlier attempts were rejected).")
st.plotly_chart(charts.schedule_figure(session.budgets(), step.step, height=200), key="step_schedule",
                config={"displayModeBar": False})
if step.pending:
    st.info("Waiting for your decision: accept a candidate (or an edited one), accept the best, or reject all.")
else:
    st.success(md(views.decision_text(step)))

st.markdown("**Retrieved trajectory prompts** (the update direction, as listed in the meta-prompt, best last)")
st.dataframe(views.retrieved_frame(step), hide_index=True, width="stretch",
             column_config={"prompt": st.column_config.TextColumn(width="large")})
with st.expander("Meta-prompt sent to the optimizer model", expanded=False):
    st.code(step.meta_prompt, language=None, wrap_lines=True)
    st.caption("Optimizer replies and how candidates were extracted")
    st.dataframe(views.optimizer_calls_frame(step), hide_index=True, width="stretch")

st.markdown(f"**Candidates** ({len(step.candidates)})")
st.dataframe(views.candidates_frame(step, studio.rejected), hide_index=True, width="stretch",
             column_config={"dev accuracy": st.column_config.NumberColumn(format="%.1f%%"),
                            "text": st.column_config.TextColumn(width="large")})

for cand in step.candidates:
    state_label = views.candidate_state(cand, step, studio.rejected)
    over = cand.edit_distance > step.budget
    with st.container(border=True, key=f"card_{cand.id}"):
        h1, h2 = st.columns([3, 2])
        h1.markdown(f"**{cand.id}** · {md(state_label)}")
        with h2:
            if over:
                st.badge(f"over budget: {cand.edit_distance} > {step.budget} words", color="red")
            else:
                st.badge(f"within budget: {cand.edit_distance} ≤ {step.budget} words", color="green")
        if cand.id in studio.rejected and step.pending:
            st.text(cand.text)
            if st.button("Restore", key=f"restore_{cand.id}"):
                studio.unreject(cand.id)
                st.rerun()
            continue
        st.code(cand.text, language=None, wrap_lines=True)
        st.markdown("Change vs the current prompt: " + views.diff_markdown(studio.candidate_diff(step, cand)))
        st.caption(f"Edit distance {cand.edit_distance} words (budget {step.budget}) · dev accuracy "
                   f"{views.pct(cand.dev_accuracy)} · tokens (dev scoring) {views.candidate_tokens(cand)}")
        if not step.pending:
            continue
        b1, b2, _ = st.columns([1, 1, 3])
        if b1.button("Accept", key=f"accept_{cand.id}", type="primary"):
            run_action(f"Accepting {cand.id}: scoring it…", lambda cb, cid=cand.id: studio.accept(cid, on_progress=cb))
        if b2.button("Reject", key=f"reject_{cand.id}"):
            studio.reject(cand.id)
            st.rerun()
        with st.expander("Edit before accepting"):
            edited = st.text_area("Instruction", value=cand.text, key=f"edit_{cand.id}", height=100)
            if st.button("Score and accept the edited text", key=f"accept_edit_{cand.id}"):
                run_action(f"Scoring the edited {cand.id} on dev, then test…",
                           lambda cb, cid=cand.id, text=edited: studio.accept(cid, text=text, on_progress=cb))

st.divider()
b1, b2, b3 = st.columns(3)
if step.pending:
    if b1.button("Accept best", type="primary", key="accept_best",
                 help="The best-scoring candidate not chosen before (the paper's rule)."):
        run_action("Accepting the best candidate…", studio.accept_best)
    if b2.button("Reject all and resample", key="reject_all"):
        run_action(f"Rejected all; sampling step {step.step} again…", studio.reject_all_and_resample,
                   lambda s: f"Step {s.step}, attempt {s.attempt}: {len(s.candidates)} new candidates.")
if b3.button("Undo last step", key="undo", disabled=not state.steps):
    try:
        undone = studio.undo()
        studio.flash("info", f"Undid step {undone.step} (attempt {undone.attempt}); the prompt is back to: "
                             f"{state.current_prompt}")
    except GPOError as e:
        st.error(md(str(e)))
    else:
        st.rerun()
