"""Prompt × model: score prompts (a run's start, final and trajectory prompts, or typed ones) on
several task models and splits; a heatmap of accuracy with 95% intervals, saved and exported.

The scoring runs in a background job (gpo_core.studio.matrix_work); this page submits it from
a button callback and observes it in a fragment while it runs. Saved matrices are listed
from $GPO_HOME/matrices, so a reload shows the last one.
"""

import pandas as pd
import streamlit as st

from gpo_core.errors import GPOError
from gpo_core.runs.matrix import MATRIX_CSV, MATRIX_PNG
from gpo_core.studio.matrix_chart import matrix_figure
from gpo_core.studio.matrix_work import LOADED_TASK, MatrixRequest, MatrixWork
from gpo_core.studio.studio import Studio
from gpo_core.studio.views import markup
from gpo_core.studio.worker import JobBusyError

if "studio" not in st.session_state:
    st.switch_page("app.py", query_params={**st.query_params.to_dict(), "page": "evaluate"})
studio: Studio = st.session_state["studio"]
if "matrix_work" not in st.session_state:
    st.session_state["matrix_work"] = MatrixWork(studio)
work: MatrixWork = st.session_state["matrix_work"]
md = markup.escape_markdown
POLL_S = 0.5

st.title("Prompt × model")
st.caption("Score prompts on several task models and splits. Every cell is the accuracy over the answered "
           "examples with its 95% Wilson interval; failed calls are sent once more, then left out and counted. "
           "Calls go through the response cache, like a run's.")


def _submit() -> None:
    ss = st.session_state
    run = ss.get("mx_prompts_run")
    req = MatrixRequest(source=ss.get("mx_source") or "", run_prompts=ss.get(f"mx_run_prompts_{run}") or [],
                        typed=ss.get("mx_typed") or "", models=ss.get("mx_models") or [],
                        specs=ss.get("mx_specs") or "", splits=ss.get("mx_splits") or [], prompts_run=run)
    try:
        work.submit(req)
        ss.pop("mx_error", None)
    except (GPOError, JobBusyError) as e:
        ss["mx_error"] = str(e)


outcome = work.collect()
if outcome is not None:
    if outcome.error:
        st.error(md(f"Scoring failed: {outcome.error}"))
    elif outcome.state == "stopped":
        st.warning("Scoring stopped: no matrix was saved.")
    elif outcome.message:
        st.success(md(outcome.message))
        if work.saved():
            st.session_state["mx_shown"] = work.saved()[0]  # show the matrix just scored (newest first)
    for line in outcome.log:
        st.info(md(line))

running = work.job() is not None and work.job().running  # type: ignore[union-attr]
sources = work.sources()
c1, c2 = st.columns(2)
with c1:
    st.subheader("Examples")
    if not sources:
        st.info("Load a task on the Task page, or finish a run, to have examples to score on.")
    st.selectbox("Examples", sources, key="mx_source", format_func=lambda s: s if s == LOADED_TASK else f"run {s}",
                 help="The loaded task is split as the next run would split it (Task page); a run's own dev and "
                      "test examples score its prompts as the run scored them.")
    st.multiselect("Splits", ["dev", "test"], default=["dev", "test"], key="mx_splits")
with c2:
    st.subheader("Task models")
    st.multiselect("Task models", list(work.model_choices()), key="mx_models",
                   default=list(work.model_choices())[:1])
    st.text_area("Other models", key="mx_specs", height=80, placeholder="openai:gpt-4o-mini\nlocal:/path/model.gguf",
                 help="One spec a line: backend:model (openai, compatible, local, demo), an embedded model's name "
                      "or a .gguf path. API keys come from the Models page or OPENAI_API_KEY, never from here.")

st.subheader("Prompts")
runs = work.runs()
run = st.selectbox("Prompts of a run", [None, *runs], key="mx_prompts_run",
                   format_func=lambda r: "(none)" if r is None else f"run {r}")
if run is not None:
    try:
        items = work.run_prompts(run)
    except GPOError as e:
        st.error(md(str(e)))
        items = []
    st.multiselect("Run prompts", [p.label for p in items], default=[p.label for p in items][:6],
                   key=f"mx_run_prompts_{run}", help="start, final (the run's final prompt) and every trajectory "
                                                     "prompt, by step and candidate id")
st.text_area("Typed prompts", key="mx_typed", height=100,
             help="Prompts separated by blank lines (a prompt may span lines); with no blank line, one per line.")

st.button("Score the matrix", type="primary", on_click=_submit, disabled=running or not sources, key="mx_score")
if st.session_state.get("mx_error"):
    st.error(md(st.session_state["mx_error"]))


@st.fragment(run_every=POLL_S)
def _progress() -> None:
    job = work.job()
    if job is None or not job.running:
        st.rerun()
    st.progress(markup.progress_fraction(job.done, job.total), text=job.label)
    st.caption(md(f"{job.phase or 'starting'}: {job.done} of {job.total} calls"))
    st.button("Stop", key="mx_stop", on_click=work.stop)


if running:
    _progress()

st.divider()
st.subheader("Saved matrices")
saved = work.saved()
if not saved:
    st.info("No matrix yet.")
else:
    folder = st.selectbox("Matrix", saved, key="mx_shown", format_func=lambda p: p.name)
    try:
        result = work.load(folder)
    except GPOError as e:
        st.error(md(str(e)))
    else:
        st.caption(md(f"Task {result.task} ({result.source}); answer type {result.answer_type}, position "
                      f"{result.position}, metric {result.metric}, protocol {result.protocol}; "
                      f"{result.created_at}, {result.seconds:.1f} s."))
        for note in result.notes:
            st.warning(md(note))
        for split, line in result.baselines.items():  # label tasks (issue 12)
            st.caption(md(f"{split}: {line}"))
        st.plotly_chart(matrix_figure(result), key="mx_chart")
        st.dataframe(pd.DataFrame([{"prompt": c.prompt, "model": c.model, "split": c.split, "accuracy": c.text(),
                                    "answered": f"{c.answered}/{c.n}", "failed calls": c.errors,
                                    "error": c.first_error or ""} for c in result.cells]),
                     hide_index=True, width="stretch")
        with st.expander("Prompt texts"):
            for p in result.prompts:
                st.markdown(f"**{md(p.label)}**")
                st.code(p.text, language=None, wrap_lines=True)
        d1, d2 = st.columns(2)
        d1.download_button("Download CSV", (folder / MATRIX_CSV).read_bytes(), file_name=f"matrix-{folder.name}.csv",
                           mime="text/csv", key="mx_dl_csv")
        png = folder / MATRIX_PNG
        if png.exists():
            d2.download_button("Download PNG", png.read_bytes(), file_name=f"matrix-{folder.name}.png",
                               mime="image/png", key="mx_dl_png")
        else:
            d2.caption("No PNG (kaleido or Chromium was missing when it was scored); the CSV has every number.")
