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

from gpo_core.costs.prices import load_prices
from gpo_core.errors import GPOError
from gpo_core.optimizer.choices import CHOICES
from gpo_core.optimizer.choices import label as choice_label
from gpo_core.optimizer.direction import SELECTION_STRATEGIES
from gpo_core.optimizer.policies import POLICIES
from gpo_core.optimizer.schedule import SCHEDULE_KINDS
from gpo_core.runs.warm_start import warm_start_text
from gpo_core.settings import OptimizerSettings, label_of
from gpo_core.studio import charts, warm_start_choice
from gpo_core.studio.estimates import draft_estimate
from gpo_core.studio.prices import model_price_rows, save_user_prices
from gpo_core.studio.studio import Studio
from gpo_core.studio.views import class_report_view, cost_view, markup, paired_view, run_view, step_view, uncertainty
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
                  ("protocol", "cfg_protocol", str), ("policy", "cfg_policy", str), ("alpha", "cfg_alpha", float),
                  ("patience", "cfg_patience", int), ("blind_test", "cfg_blind", bool),
                  ("drop_flagged", "cfg_drop_flagged", bool), ("racing", "cfg_racing", bool),
                  ("racing_alpha", "cfg_racing_alpha", float), ("racing_batch", "cfg_racing_batch", int),
                  ("max_cost", "cfg_max_cost", lambda v: float(v) or None),
                  ("max_spend_tokens", "cfg_max_tokens", lambda v: int(v) or None),
                  ("failure_feedback", "cfg_failure_feedback", int)]


def setting_label(name: str) -> str:
    """The app label of an optimizer setting (one place: its field in gpo_core/settings.py)."""
    return label_of(OptimizerSettings, name, "app")


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
    st.session_state.pop("confirm_accept", None)
    try:
        _apply_config()
        actions.submit_new_run(warm_start_choice.warm_start(studio, st.session_state.get("cfg_start_from")))
    except GPOError as e:
        actions.say("error", str(e))


def _run_auto() -> None:
    _call(actions.submit_run_auto, int(st.session_state.get("auto_n", 1)))


def _accept(candidate_id: str, best: bool = False) -> None:
    """Accept by hand: when the numbers do not support the candidate (worse than the current
    prompt, or not distinguishable from it), ask once first (the question is drawn on its
    card, or beside "Accept best"); else accept at once."""
    session = runs.require_session()
    step = session.state.pending_step
    if step is None:
        return
    question = paired_view.accept_question(step, step.candidate(candidate_id), session.state)
    if question is None:
        st.session_state.pop("confirm_accept", None)
        _call(actions.submit_accept, candidate_id)
    else:
        st.session_state["confirm_accept"] = {"id": candidate_id, "best": best, "question": question}


def _accept_best() -> None:
    """"Accept best": the run's policy's choice, asked about first like a hand accept."""
    best = runs.require_session().best_candidate()
    if best is None:  # the engine says why nothing can be chosen
        _call(actions.submit_accept_best)
    else:
        _accept(best.id, best=True)


def _confirm_accept(yes: bool) -> None:
    asked = st.session_state.pop("confirm_accept", None)
    if yes and asked:
        _call(actions.submit_accept, asked["id"])


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


def spend_meter(session) -> None:
    """The run's spend so far (cache hits free) and, with a cap, how much of it is used."""
    spend = session.spend()
    fraction = cost_view.spend_fraction(spend)
    if fraction is None:
        st.caption(md(cost_view.spend_text(spend)))
    else:
        st.progress(fraction, text=md(cost_view.spend_text(spend)))


def _save_prices() -> None:
    rows = model_price_rows(studio.draft.settings, load_prices())
    new = {r["model"]: (float(st.session_state.get(f"price_in_{i}") or 0.0),
                        float(st.session_state.get(f"price_out_{i}") or 0.0)) for i, r in enumerate(rows)}
    try:
        path = save_user_prices(new)
    except GPOError as e:
        studio.flash("error", str(e))
        return
    if runs.session is not None:
        runs.session.use_prices(load_prices())  # the open run's spend meter and cap follow them
    studio.flash("success", f"Prices saved to {path}, dated today; the CLI reads them too.")


def price_editor() -> None:
    """The price of each priced model of the next run, editable; saved to $GPO_HOME/prices.toml."""
    rows = model_price_rows(studio.draft.settings, load_prices())
    if not rows:
        st.caption("The embedded and demo models cost nothing per token. A remote model's price (from the dated "
                   "default table, or yours) shows here to check and edit.")
        return
    for i, r in enumerate(rows):
        c1, c2, c3 = st.columns([2, 1, 1], vertical_alignment="bottom")
        c1.markdown(f"**{md(r['model'])}** ({md(r['roles'])} model)  \n:gray[{md(r['from'])}]")
        c2.number_input("Input (prompt)", min_value=0.0, value=float(r["input"] or 0.0), step=0.01, format="%.4f",
                        key=f"price_in_{i}")
        c3.number_input("Output (completion)", min_value=0.0, value=float(r["output"] or 0.0), step=0.01,
                        format="%.4f", key=f"price_out_{i}")
    st.button("Save these prices", key="save_prices", on_click=_save_prices,
              help="Saved to $GPO_HOME/prices.toml with today's date; they replace the dated default for these models.")


def _apply_caps() -> None:
    cost = float(st.session_state.get("run_max_cost") or 0.0)
    tokens = int(st.session_state.get("run_max_tokens") or 0)
    try:
        actions.set_spend_caps(cost or None, tokens or None)
    except (JobBusyError, GPOError) as e:
        actions.say("error", str(e))
    else:
        caps = " and ".join(x for x in (f"${cost:g}" if cost else "", f"{tokens:,} tokens" if tokens else "") if x)
        actions.say("success", f"This run's spend cap is now {caps or 'none'}; it is saved with the run. "
                               "Next step or Run N steps continues the run.")


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
        if runs.session is not None:
            spend_meter(runs.session)
        if with_stop and job.stoppable:
            st.button("Stop", key="stop_job", on_click=_stop)


def job_area(with_stop: bool = False) -> None:
    """Where the user looks after an action: the outcome of the last job (or action) and
    the running job."""
    outcome = actions.pop_outcome()
    if outcome is not None and busy:
        # the job ended while this page was being drawn (its buttons disabled): draw it again
        # idle, with the outcome, instead of leaving a page that waits for nothing
        actions.outcome = outcome
        st.rerun()
    if outcome is None and not busy:
        outcome = actions.last_job_outcome()  # still true until the next action, after a reload too
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
        c1, c2, c3, c4 = st.columns(4)
        use_budget = c1.toggle("State the budget in the meta-prompt", value=cfg.use_budget, key="cfg_use_budget")
        enforce = c2.toggle("Enforce budget (drop over-budget candidates unscored)", value=cfg.enforce_budget,
                            key="cfg_enforce")
        exemplars = c3.number_input("Task exemplars in the meta-prompt", min_value=0, max_value=10,
                                    value=cfg.n_exemplars,
                                    key="cfg_exemplars")
        feedback = c4.number_input(setting_label("failure_feedback"), min_value=0, max_value=50,
                                   value=int(cfg.failure_feedback), key="cfg_failure_feedback",
                                   help="Ours, after the reference code's feedback variant: show the optimizer model "
                                        "up to this many dev examples the current prompt gets wrong, with the task "
                                        "model's answers and the metric's reasons. 0 = off, the paper's setting; the "
                                        "embedded models' quick preset uses 3 (offline it helped and never hurt: "
                                        "benchmarks/results/offline_quality.md).")
        c1, c2, c3 = st.columns(3)
        policies = list(POLICIES)
        policy = c1.selectbox("Decision policy", policies, index=policies.index(cfg.policy), key="cfg_policy",
                              format_func=lambda v: choice_label("policy", v),
                              help="Which candidate becomes the next prompt in automatic steps and Accept best. "
                                   "paper: the best not chosen before, even when it scores below the current "
                                   "prompt; better: only one that scores higher; significant: only one that also "
                                   "wins an exact McNemar test on the same dev examples (p < alpha).")
        alpha = c2.number_input(setting_label("alpha"), min_value=0.001, max_value=0.5, value=float(cfg.alpha),
                                step=0.01, format="%.3f", key="cfg_alpha",
                                help="alpha of the exact McNemar test: the significant policy takes a candidate only "
                                     "when it beats the current prompt with p below it, and early stopping counts a "
                                     "step as a gain only then. 0.05 is the usual choice.")
        patience = c3.number_input(setting_label("patience"), min_value=0, max_value=200, value=cfg.patience,
                                   key="cfg_patience",
                                   help="Early stopping (ours): automatic steps stop once this many steps in a row "
                                        "brought no significant gain over the prompt before them. Every finished "
                                        "step is kept; Next step continues by hand.")
        c1, c2 = st.columns(2)
        blind = c1.toggle(setting_label("blind_test"), value=cfg.blind_test, key="cfg_blind",
                          help="Overfitting guard (ours): chosen prompts are still scored on test, but every test "
                               "number stays hidden until you press Reveal test scores (or export), so test "
                               "results cannot steer your choices.")
        drop_flagged = c2.toggle(setting_label("drop_flagged"), value=cfg.drop_flagged, key="cfg_drop_flagged",
                                 help="Candidates that copy exemplar or dev text word for word, or name an answer "
                                      "label (\"The answer is (D)\"), are always flagged on their card; with this "
                                      "on they are also dropped unscored (you can still accept one by hand).")
        c1, c2, c3 = st.columns(3)
        racing = c1.toggle(setting_label("racing"), value=cfg.racing, key="cfg_racing",
                           help="Racing (ours): score candidates on dev a few examples at a time and stop scoring "
                                "one once it cannot catch the leader at the chosen confidence. Saves task-model "
                                "calls; a raced-out candidate is scored in full if you accept it by hand.")
        racing_alpha = c2.number_input(setting_label("racing_alpha"), min_value=0.001, max_value=0.5,
                                       value=float(cfg.racing_alpha), step=0.01, format="%.3f", key="cfg_racing_alpha",
                                       disabled=not racing)
        racing_batch = c3.number_input(setting_label("racing_batch"), min_value=1, max_value=1000,
                                       value=cfg.racing_batch, key="cfg_racing_batch", disabled=not racing)
        c1, c2, c3 = st.columns(3)
        max_cost = c1.number_input(setting_label("max_cost"), min_value=0.0, max_value=100_000.0,
                                   value=float(cfg.max_cost or 0.0), step=0.01, format="%.2f", key="cfg_max_cost",
                                   help="A hard cap in US dollars (0 = no cap): the run stops at the next model call "
                                        "once it has spent this much, keeping every finished step; raise the cap to "
                                        "resume. Cached answers are free.")
        max_tokens = c2.number_input(setting_label("max_spend_tokens"), min_value=0, max_value=10**10,
                                     value=int(cfg.max_spend_tokens or 0), step=1000, key="cfg_max_tokens",
                                     help="A hard cap in tokens (prompt + completion, both models; 0 = no cap), "
                                          "same rules as the dollar cap.")
        try:
            studio.draft.update_optimizer(steps=int(steps), candidates=int(candidates), k=int(k), selection=selection,
                                 schedule=schedule, budget_initial=int(initial), budget_final=int(final),
                                 warmup=int(warmup), use_budget=use_budget, enforce_budget=enforce,
                                 n_exemplars=int(exemplars), epochs=int(epochs) or None, policy=policy,
                                 alpha=float(alpha), patience=int(patience), blind_test=blind,
                                 drop_flagged=drop_flagged, racing=racing, racing_alpha=float(racing_alpha),
                                 racing_batch=int(racing_batch), max_cost=float(max_cost) or None,
                                 max_spend_tokens=int(max_tokens) or None, failure_feedback=int(feedback),
                                 **method)
            if cfg.epochs:
                st.caption(f"T = {cfg.epochs} epochs x steps per epoch, from the train split when the run "
                           f"is created (a step per {cfg.batch_size} train examples).")
            if session is None:  # with a run open the step's own schedule plot is below; skip the draft's
                st.plotly_chart(charts.schedule_figure(studio.draft.budgets(), height=200), key="draft_schedule",
                                config={"displayModeBar": False})
            else:
                st.caption("Edit budget per step (words): " + " ".join(str(b) for b in studio.draft.budgets()))
            estimate = draft_estimate(studio.draft, studio.tasks, runs.root)
        except GPOError as e:
            st.error(md(str(e)))
            estimate = None
        if estimate is not None:
            with st.container(border=True, key="estimate_box"):
                st.markdown("**Estimate before you create the run**")
                with st.container(horizontal=True, gap="large"):
                    for name, value in cost_view.estimate_metrics(estimate).items():
                        st.metric(name, value)
                st.caption(md(cost_view.estimate_caption(estimate)))
                estimate_box = st.expander("How the estimate is made", key="estimate_details", on_change="rerun")
                with estimate_box:
                    if estimate_box.open:
                        st.dataframe(cost_view.estimate_frame(estimate), hide_index=True, width="stretch")
                        st.text("\n".join(estimate.lines()))
                prices_box = st.expander("Prices (US dollars per 1M tokens)", key="prices_box", on_change="rerun")
                with prices_box:
                    if prices_box.open:
                        price_editor()
        start_choice = st.selectbox(warm_start_choice.WIDGET, warm_start_choice.choices(studio), key="cfg_start_from",
                                    format_func=lambda c: c if c == warm_start_choice.FROM_TASK else f"final prompt "
                                                                                                     f"of run {c}",
                                    help="Warm start: begin from another run's final prompt, e.g. one found on "
                                         "another task model. The new run records where its start came from.")
        try:
            if warm_note := warm_start_choice.preview(studio, start_choice):
                st.info(md(warm_note))
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
st.caption(f"Run {state.run_id} · task {md(session.task_name)} · {md(run_view.policy_text(session.settings))}")
if state.task.start_from:
    st.info(md(warm_start_text(state.task.start_from)))
# Rows are horizontal containers, not st.columns: one element instead of one per column (a
# click redraws the page; fewer elements make it settle sooner in the browser).
with st.container(horizontal=True, gap="large"):
    for label, (value, interval) in run_view.run_summary(state, T).items():
        st.metric(label, value, interval, delta_color="off", delta_arrow="off")
st.caption(md(uncertainty.explainer(uncertainty.initial_accuracy(state, "dev"))))
if (baseline := class_report_view.dev_baseline_caption(state)) is not None:  # label tasks only (issue 12)
    st.caption(md(baseline))
spend_meter(session)
if state.stop_reason:
    st.warning(md(f"{state.stop_reason[:1].upper()}{state.stop_reason[1:]}. Every finished step is kept; raise the "
                  "cap below (or remove it) to continue."))
cfg_run = session.config
if cfg_run.max_cost or cfg_run.max_spend_tokens or state.stop_reason:
    caps_box = st.expander("Spend cap of this run", expanded=bool(state.stop_reason), key="caps_box",
                           on_change="rerun")
    with caps_box:
        if caps_box.open:
            c1, c2, c3 = st.columns([1, 1, 1], vertical_alignment="bottom")
            c1.number_input(setting_label("max_cost"), min_value=0.0, max_value=100_000.0,
                            value=float(cfg_run.max_cost or 0.0), step=0.01, format="%.2f", key="run_max_cost",
                            help="0 = no cap")
            c2.number_input(setting_label("max_spend_tokens"), min_value=0, max_value=10**10,
                            value=int(cfg_run.max_spend_tokens or 0), step=1000, key="run_max_tokens",
                            help="0 = no cap")
            c3.button("Apply to this run", key="apply_caps", disabled=busy, on_click=_apply_caps)
if session.stop_note:
    st.info(md(f"{session.stop_note[:1].upper()}{session.stop_note[1:]}. Every finished step is kept; Next step or "
               "Run N steps continues."))
if run_view.test_is_hidden(state):
    with st.container(horizontal=True, vertical_alignment="center"):
        st.info("Blind test: chosen prompts are scored on test, but every test number stays hidden until you "
                "reveal them (exporting reveals them too), so test results cannot steer your choices.")
        st.button("Reveal test scores", key="reveal_test", disabled=busy, on_click=_call, args=(actions.reveal_test,))
gap_warning = run_view.gap_warning(state)
if gap_warning:
    st.warning(md(gap_warning[:1].upper() + gap_warning[1:] + ". See the gap chart on the Results page."))
if cfg_run.racing:
    st.caption(f"Racing is on: it saved {cost_view.calls_saved(state):,} task-model calls so far.")
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
          help=f"Each step is decided by the run's {run_view.policy_text(session.settings).lower()}.")
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
    st.success(md(step_view.decision_text(step, state)))
for warning in step.warnings:  # what the step did other than asked: dropped candidates, failed calls, cache faults
    st.warning(md(warning))
if step.pending and step.unanswered:  # issue 15: not decided until its dev calls are answered
    st.error(md(f"{step.unanswered} dev call(s) of this step were not answered, so no policy decides it: send them "
                "again, reject the incomplete candidates, or accept a fully scored one by hand."))
    st.button("Send the unanswered calls again", key="complete_step", disabled=busy,
              on_click=_call, args=(actions.submit_complete_step,))
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
        if step.optimizer_system:
            st.caption("System message sent before the meta-prompt (embedded optimizer models only; ours, not the "
                       "paper's). Their replies are also held to a grammar: one tagged instruction of 4-40 words that "
                       "may not end on a prompt already tried.")
            st.code(step.optimizer_system, language=None, wrap_lines=True)
            st.caption("Meta-prompt")
        st.code(step.meta_prompt, language=None, wrap_lines=True)
        if step.failures:  # failure feedback (OptimizerSettings.failure_feedback)
            st.caption(f"Failure feedback: {len(step.failures)} wrong dev example(s) of the current prompt shown")
            st.dataframe(step.failures, hide_index=True, width="stretch")
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
alpha = session.config.alpha
asked = st.session_state.get("confirm_accept") if step.pending else None
if asked and asked["id"] not in {c.id for c in step.candidates}:
    asked = None  # a question about another step's candidate (undone, resampled) is moot


def accept_anyway(where: str) -> None:
    """The accept-anyway question (asked once), with its two answers."""
    assert asked is not None
    with st.container(border=True, key=f"confirm_box_{where}"):
        st.warning(md(asked["question"]))
        with st.container(horizontal=True):
            st.button("Accept anyway", key="confirm_yes", type="primary", disabled=busy, on_click=_confirm_accept,
                      args=(True,))
            st.button("Cancel", key="confirm_no", on_click=_confirm_accept, args=(False,))


for cand in step.candidates:
    with st.container(border=True, key=f"card_{cand.id}"):
        # two elements: id, state, budget badge, the change and the numbers; then the text
        header = f"**{cand.id}** · {md(step_view.candidate_state(cand, step))} · {step_view.budget_badge(cand, step)}"
        if cand.flags:
            header += " " + step_view.flag_badges(cand)
        if cand.rejected and step.pending:
            st.markdown(header)
            st.text(cand.text)
            st.button("Restore", key=f"restore_{cand.id}", disabled=busy, on_click=_call,
                      args=(actions.unreject, cand.id))
            continue
        st.markdown(f"{header}  \nChange vs the current prompt: "
                    + markup.diff_markdown(step_view.candidate_diff(step, cand))
                    + "  \n" + step_view.candidate_numbers_markdown(step, cand, alpha))
        st.code(cand.text, language=None, wrap_lines=True)
        if cand.fixed or cand.broken:
            box = st.expander(f"Fixed and broken dev examples ({cand.fixed} fixed, {cand.broken} broken), "
                              "both answers side by side", key=f"regress_{cand.id}", on_change="rerun")
            with box:
                if box.open:
                    st.dataframe(paired_view.regression_for(runs.records, state, step, cand), hide_index=True,
                                 width="stretch")
        if not step.pending:
            continue
        if asked and asked["id"] == cand.id and not asked["best"]:
            accept_anyway("card")
        with st.container(horizontal=True):
            st.button("Accept", key=f"accept_{cand.id}", type="primary", disabled=not decidable, on_click=_accept,
                      args=(cand.id,))
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
        st.button("Accept best", type="primary", key="accept_best", disabled=busy, on_click=_accept_best,
                  help=f"The candidate the run's {run_view.policy_text(session.settings).lower()} chooses.")
        st.button("Reject all and resample", key="reject_all", disabled=busy, on_click=_call,
                  args=(actions.submit_reject_all,))
    st.button("Undo last step", key="undo", disabled=busy or not state.steps, on_click=_undo)
if asked and asked["best"]:
    accept_anyway("best")
