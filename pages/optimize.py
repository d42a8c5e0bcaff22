"""Optimize: score the starting prompt, then step through GPO by hand or automatically.

Every long action is a button callback that submits a background job
(``studio.actions.submit_*``); the page shows the running job in a fragment that looks again
every ``POLL_S`` seconds while it runs and redraws the whole page when it ends. Leaving the
page or reloading the tab does not stop the job. Buttons that would conflict with it are
disabled meanwhile.

Over 300 lines: one page script, drawn top to bottom in the order the user reads it.
"""

from collections.abc import Callable

import streamlit as st

from gpo_core.errors import GPOError
from gpo_core.optimizer.choices import CHOICES
from gpo_core.optimizer.choices import label as choice_label
from gpo_core.optimizer.direction import SELECTION_STRATEGIES
from gpo_core.optimizer.schedule import SCHEDULE_KINDS
from gpo_core.studio import charts
from gpo_core.studio.studio import Studio
from gpo_core.studio.views import markup, run_view, step_view
from gpo_core.studio.worker import JobBusyError

if "studio" not in st.session_state:
    # A fresh server's first request straight to this page runs it without app.py (Streamlit
    # treats a pages/ folder as legacy multipage until st.navigation runs): go through app.py,
    # keeping the address (the open run, the owner token), and come back to this page.
    st.switch_page("app.py", query_params={**st.query_params.to_dict(), "page": "optimize"})
studio: Studio = st.session_state["studio"]
actions, runs = studio.actions, studio.runs
md = markup.escape_markdown
#: Seconds between two looks at a running job.
POLL_S = 0.5

#: Run-settings widgets: (OptimizerSettings field, widget key, conversion).
CONFIG_WIDGETS = [("steps", "cfg_steps", int), ("candidates", "cfg_candidates", int), ("k", "cfg_k", int),
                  ("selection", "cfg_selection", str), ("schedule", "cfg_schedule", str),
                  ("budget_initial", "cfg_initial", int), ("budget_final", "cfg_final", int),
                  ("warmup", "cfg_warmup", int), ("use_budget", "cfg_use_budget", bool),
                  ("enforce_budget", "cfg_enforce", bool), ("n_exemplars", "cfg_exemplars", int),
                  ("layout", "cfg_layout", str), ("direction_pool", "cfg_pool", str),
                  ("direction_order", "cfg_order", str), ("exemplar_draw", "cfg_draw", str),
                  ("protocol", "cfg_protocol", str)]


# ----------------------------------------------------------------------------- callbacks
# They run before the page script, so the page drawn after a click already shows the job
# (or, for quick work, its result): one page run per click.


def _call(action: Callable[..., object], *args: object) -> None:
    """Run an action on the open run; an engine error becomes a message below the controls."""
    try:
        action(*args)
    except JobBusyError as e:
        actions.say("warning", str(e))
    except GPOError as e:
        actions.say("error", str(e))


def _apply_config() -> None:
    """Apply the run-settings widgets (values set in the same interaction included)."""
    values = {name: conv(st.session_state[key]) for name, key, conv in CONFIG_WIDGETS if key in st.session_state}
    if "cfg_epochs" in st.session_state:
        epochs = int(st.session_state["cfg_epochs"])
        values["epochs"] = epochs or None
    studio.draft.update_optimizer(**values)


def _new_run() -> None:
    try:
        _apply_config()
        actions.submit_new_run()
    except GPOError as e:
        actions.say("error", str(e))


def _run_auto() -> None:
    _call(actions.submit_run_auto, int(st.session_state.get("auto_n", 1)))


def _accept_edited() -> None:
    candidate_id = st.session_state.get("edit_candidate")
    if candidate_id is not None:
        _call(actions.submit_accept, candidate_id, st.session_state.get(f"edit_{candidate_id}"))


def _stop() -> None:
    if not actions.stop():
        actions.say("info", "Nothing is running, so there is nothing to stop.")


def _undo() -> None:
    try:
        undone = actions.undo()
    except GPOError as e:
        actions.say("error", str(e))
    else:
        prompt = runs.require_session().state.current_prompt
        actions.say("info", f"Undid step {undone.step}; the prompt is back to: {prompt}")


# ----------------------------------------------------------------------------- the job


@st.fragment(run_every=POLL_S)
def running_job(with_stop: bool) -> None:
    """The running job: label, progress, finished steps, Stop. Redraws the whole page when a
    step has finished since the page was drawn (the metrics and the step below follow the
    run) and when the job ends (its result)."""
    job = actions.job()
    if job is None or not job.running or st.session_state.get("job_seen") != (job.id, len(job.log)):
        st.rerun()
    with st.container(border=True, key="job_box"):
        st.markdown(f"**{md(job.label)}**")
        st.progress(markup.progress_fraction(job.done, job.total),
                    text=markup.job_progress_text(job.phase, job.done, job.total))
        for line in job.log:
            st.text(line)
        note = " Stopping after the model call in flight…" if job.stop_requested else ""
        st.caption(f"{job.seconds:.0f} s so far.{note} The work goes on if you leave this page or reload it.")
        if with_stop and job.stoppable:
            st.button("Stop", key="stop_job", on_click=_stop)


def job_area(with_stop: bool = False) -> None:
    """Where the user looks after an action: the outcome of the last job (or action) and
    the running job."""
    outcome = actions.pop_outcome()
    if outcome is not None:
        getattr(st, outcome.kind)(md(outcome.text))
    job = actions.job()
    if job is not None and job.running:
        st.session_state["job_seen"] = (job.id, len(job.log))  # what this page run shows
        running_job(with_stop)


st.title("Optimize")
for f in studio.pop_flashes(outcome=False):
    getattr(st, f.kind)(md(f.text))

if studio.tasks.task is None and runs.session is None:
    st.info("Load a task first (Task page), or reopen a saved run (Results page).")
    st.page_link("pages/task.py", label="Go to Task", icon=":material/table_view:")
    st.stop()

session = runs.session
busy = actions.busy()

# ----------------------------------------------------------------------------- settings
# Drawn only while open (a lazy expander): with a run open it is closed and costs nothing.
settings_box = st.expander("Run settings" if session is None else "Run settings (for a new run)",
                           expanded=session is None, key="settings_box_new" if session is None else "settings_box_run",
                           on_change="rerun")
with settings_box:
    if settings_box.open:
        cfg = studio.draft.optimizer
        c1, c2, c3, c4 = st.columns(4)
        steps = c1.number_input("Total steps T", min_value=1, max_value=200, value=cfg.steps, key="cfg_steps")
        candidates = c2.number_input("Candidates per step", min_value=1, max_value=32, value=cfg.candidates,
                                     key="cfg_candidates")
        k = c3.number_input("k (trajectory prompts retrieved)", min_value=1, max_value=20, value=cfg.k, key="cfg_k")
        selection = c4.selectbox("Selection strategy", SELECTION_STRATEGIES,
                                 index=SELECTION_STRATEGIES.index(cfg.selection), key="cfg_selection",
                                 format_func=lambda v: choice_label("selection", v))
        st.caption("Method: GPO (Tang et al. 2024, arXiv 2402.17564). Choices marked *paper* follow its "
                   "reference code; *ours* are GPO Studio's variants.")
        method = {}
        c1, c2, c3 = st.columns(3)
        for col, (field, key, title) in zip([c1, c2, c3, c1, c2], [
                ("layout", "cfg_layout", "Meta-prompt layout"), ("direction_pool", "cfg_pool", "Retrieve from"),
                ("direction_order", "cfg_order", "Order of retrieved prompts"),
                ("exemplar_draw", "cfg_draw", "Exemplars"), ("protocol", "cfg_protocol", "Scoring protocol")]):
            options = list(CHOICES[field])
            method[field] = col.selectbox(title, options, index=options.index(getattr(cfg, field)), key=key,
                                          format_func=lambda v, f=field: choice_label(f, v))
        epochs = c3.number_input("Epochs (0 = a fixed T)", min_value=0, max_value=50, value=cfg.epochs or 0,
                                 key="cfg_epochs", help="Paper: 3 epochs of a step per 8 train examples; "
                                                        "T then comes from the train split when the run is created.")
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
        exemplars = c3.number_input("Task exemplars in the meta-prompt", min_value=0, max_value=10,
                                    value=cfg.n_exemplars,
                                    key="cfg_exemplars")
        try:
            studio.draft.update_optimizer(steps=int(steps), candidates=int(candidates), k=int(k), selection=selection,
                                 schedule=schedule, budget_initial=int(initial), budget_final=int(final),
                                 warmup=int(warmup), use_budget=use_budget, enforce_budget=enforce,
                                 n_exemplars=int(exemplars), epochs=int(epochs) or None, **method)
            if cfg.epochs:
                st.caption(f"T = {cfg.epochs} epochs x steps per epoch, from the train split when the run "
                           f"is created (a step per {cfg.batch_size} train examples).")
            if session is None:  # with a run open the step's own schedule plot is below; skip the draft's
                st.plotly_chart(charts.schedule_figure(studio.draft.budgets(), height=200), key="draft_schedule",
                                config={"displayModeBar": False})
            else:
                st.caption("Edit budget per step (words): " + " ".join(str(b) for b in studio.draft.budgets()))
        except GPOError as e:
            st.error(md(str(e)))
        label = ("Create the run and score the starting prompt" if session is None
                 else "Start a new run with these settings")
        st.button(label, type="primary" if session is None else "secondary", disabled=studio.tasks.task is None or busy,
                  key="new_run", on_click=_new_run,
                  help="Wait for the running work to end (or stop it) first." if busy else None)

if session is None or not session.started:
    job_area(with_stop=True)
    if session is not None and not busy:
        st.warning("The starting prompt of this run is not scored yet.")
        st.button("Score the starting prompt", type="primary", key="start_run", on_click=_call,
                  args=(actions.submit_start,))
    st.stop()

# ----------------------------------------------------------------------------- where we are
state = session.state
T = session.config.steps
done = len(state.decided_steps)
st.caption(f"Run {state.run_id} · task {md(session.task_name)}")
# Rows are horizontal containers, not st.columns: one element instead of one per column (a
# click redraws the page; fewer elements make it settle sooner in the browser).
with st.container(horizontal=True, gap="large"):
    for label, value in run_view.run_summary(state, T).items():
        st.metric(label, value)
st.markdown("**Current prompt**")
st.code(state.current_prompt, language=None, wrap_lines=True)

# ----------------------------------------------------------------------------- controls
pending = state.pending_step
controls = st.container(horizontal=True, vertical_alignment="bottom")
controls.button(f"Next step ({min(done + 1, T)} of {T})", type="primary", key="next_step",
          disabled=busy or session.finished or pending is not None, on_click=_call, args=(actions.submit_next_step,),
          help="Decide the pending step first." if pending is not None else None)
remaining = max(1, T - done)
controls.number_input("Steps", min_value=1, max_value=remaining, value=min(actions.auto_steps, remaining),
                key="auto_n", disabled=busy or session.finished, width=120)
controls.button("Run N steps automatically", key="run_auto", disabled=busy or session.finished, on_click=_run_auto,
          help="Each step takes the best candidate not chosen before, as in the paper.")
controls.button("Stop", key="stop_auto", on_click=_stop, type="primary" if busy else "secondary",
          help="Stops the running work after the model call in flight; every finished step is kept.")

job_area()

if session.finished:
    st.success(f"All {T} steps are done.")
    st.page_link("pages/results.py", label="See the results", icon=":material/monitoring:")

# ----------------------------------------------------------------------------- the step
step = runs.shown_step()
if step is None:
    if not busy:
        st.info("Press **Next step** to run step 1: the optimizer model proposes candidates, scored on dev.")
    st.stop()

st.subheader(f"Step {step.step} of {T} · edit budget {step.budget} words", divider="gray")
if step.attempt > 1:
    st.caption(f"Attempt {step.attempt} of this step (earlier attempts were rejected).")
if step.pending:
    st.info("Waiting for your decision: accept a candidate (or an edited one), accept the best, or reject all.")
else:
    st.success(md(step_view.decision_text(step)))
st.caption("Edit budget per step (words): " + step_view.schedule_text(session.budgets(), step.step))
# The heavier parts of a step are drawn only while their expander is open (lazy expanders):
# a click then redraws a light page.
schedule_box = st.expander("Edit budget schedule (chart)", key="schedule_box", on_change="rerun")
with schedule_box:
    if schedule_box.open:
        st.plotly_chart(charts.schedule_figure(session.budgets(), step.step, height=200), key="step_schedule",
                        config={"displayModeBar": False})

st.markdown("**Retrieved trajectory prompts** (the update direction, as listed in the meta-prompt, best last)")
st.dataframe(step_view.retrieved_frame(step), hide_index=True, width="stretch",
             column_config={"prompt": st.column_config.TextColumn(width="large")})
meta_box = st.expander("Meta-prompt sent to the optimizer model", key="meta_box", on_change="rerun")
with meta_box:
    if meta_box.open:
        st.code(step.meta_prompt, language=None, wrap_lines=True)
        st.caption("Optimizer replies and how candidates were extracted")
        st.dataframe(step_view.optimizer_calls_frame(step), hide_index=True, width="stretch")

st.markdown(f"**Candidates** ({len(step.candidates)})")
table_box = st.expander("All candidates in one table (sortable)", key="candidates_box", on_change="rerun")
with table_box:
    if table_box.open:
        st.dataframe(step_view.candidates_frame(step), hide_index=True, width="stretch",
                     column_config={"dev accuracy": st.column_config.NumberColumn(format="%.1f%%"),
                                    "text": st.column_config.TextColumn(width="large")})

decidable = step.pending and not busy
for cand in step.candidates:
    with st.container(border=True, key=f"card_{cand.id}"):
        # two elements: id, state, budget badge, the change and the numbers; then the text
        header = f"**{cand.id}** · {md(step_view.candidate_state(cand, step))} · {step_view.budget_badge(cand, step)}"
        if cand.rejected and step.pending:
            st.markdown(header)
            st.text(cand.text)
            st.button("Restore", key=f"restore_{cand.id}", disabled=busy, on_click=_call,
                      args=(actions.unreject, cand.id))
            continue
        st.markdown(f"{header}  \nChange vs the current prompt: "
                    + markup.diff_markdown(step_view.candidate_diff(step, cand))
                    + f"  \n:gray[Edit distance {cand.edit_distance} words (budget {step.budget}) · dev accuracy "
                      f"{md(markup.pct(cand.dev_accuracy))} · tokens (dev scoring) "
                      f"{md(step_view.candidate_tokens_text(cand))}]")
        st.code(cand.text, language=None, wrap_lines=True)
        if not step.pending:
            continue
        with st.container(horizontal=True):
            st.button("Accept", key=f"accept_{cand.id}", type="primary", disabled=not decidable, on_click=_call,
                      args=(actions.submit_accept, cand.id))
            st.button("Reject", key=f"reject_{cand.id}", disabled=not decidable, on_click=_call,
                      args=(actions.reject, cand.id))

if step.pending:
    editable = [c for c in step.candidates if not c.rejected]
    edit_box = st.expander("Edit a candidate before accepting", key="edit_box", on_change="rerun")
    with edit_box:
        if edit_box.open and editable:
            by_id = {c.id: c for c in editable}
            cid = st.selectbox("Candidate", list(by_id), key="edit_candidate")
            st.text_area("Instruction", value=by_id[cid].text, key=f"edit_{cid}", height=100)
            st.button("Score and accept the edited text", key="accept_edit", disabled=not decidable,
                      on_click=_accept_edited)

with st.container(horizontal=True):
    if step.pending:
        st.button("Accept best", type="primary", key="accept_best", disabled=busy, on_click=_call,
                  args=(actions.submit_accept_best,),
                  help="The best-scoring candidate not rejected and not chosen before (the paper's rule).")
        st.button("Reject all and resample", key="reject_all", disabled=busy, on_click=_call,
                  args=(actions.submit_reject_all,))
    st.button("Undo last step", key="undo", disabled=busy or not state.steps, on_click=_undo)
