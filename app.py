"""GPO Studio: the Streamlit entry point (``make run`` / ``streamlit run app.py``).

Sets up the per-session :class:`gpo_core.studio.studio.Studio` (in ``st.session_state``, so two
browser sessions never share a run), the process-wide model resources (``st.cache_resource``:
built once, loaded lazily on first call) and the page navigation. No model is loaded here.

The open run lives in the page address: ``?run=<run id>&sid=<lease token>``. A new browser
session (a reload, a bookmarked link) whose address names a run reopens it, as the same
lease owner, so the same browser never has to "take over" its own run. Long work runs in
background jobs (:mod:`gpo_core.studio.worker`) that outlive reloads and page changes; the
sidebar shows a running job on every page but Optimize, which shows it in full.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from gpo_core.models.demo import HashingEmbedder
from gpo_core.models.provider import ModelProvider
from gpo_core.studio.draft import demo_mode
from gpo_core.studio.studio import Studio
from gpo_core.studio.views import markup

#: Seconds between two looks at a running job (only while one runs).
POLL_S = 0.5


@st.cache_resource(show_spinner=False, max_entries=64)
def _resource(key: tuple, _build):
    # Heavy, immutable objects (the embedded model, SDK clients, the embedder, the response
    # cache), one per process. ``key`` holds a model's identity and at most a salted hash of
    # an API key; the builder (leading underscore) is not hashed, so no key reaches a cache key.
    return _build()


def _memo(key: tuple, build):
    if key == ("embedder",) and demo_mode():
        key = ("embedder", "demo")  # the demo's own embedder, never mixed up with the real one
    return _resource(key, build)


# Demo mode (scripted models) embeds with the demo's hashing embedder too: no model to load.
PROVIDER = ModelProvider(memo=_memo, embedder_factory=HashingEmbedder if demo_mode() else None)

# The tab icon ships in the repository (a ":material/...:" page icon makes the browser fetch it
# from Google's font CDN: no request leaves the machine for it).
ICON = Path(__file__).resolve().parent / "assets" / "icon.png"
st.set_page_config(page_title="GPO Studio", page_icon=str(ICON), layout="wide")

if "studio" not in st.session_state:
    studio = Studio(provider=PROVIDER, owner=st.query_params.get("sid"))
    st.session_state["studio"] = studio
    address_run = st.query_params.get("run")
    if address_run and not studio.runs.reopen_from_address(address_run):
        del st.query_params["run"]
studio: Studio = st.session_state["studio"]

# The address names this browser session's lease token and its open run (kept up to date on
# every full run: page changes may drop query parameters).
if st.query_params.get("sid") != studio.runs.owner:
    st.query_params["sid"] = studio.runs.owner
open_run = studio.runs.run_id
if open_run is not None and st.query_params.get("run") != open_run:
    st.query_params["run"] = open_run
elif open_run is None and "run" in st.query_params:  # the open run was deleted or closed
    del st.query_params["run"]

pages = {
    "home": st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    "task": st.Page("pages/task.py", title="Task", icon=":material/table_view:"),
    "models": st.Page("pages/models.py", title="Models", icon=":material/smart_toy:"),
    "optimize": st.Page("pages/optimize.py", title="Optimize", icon=":material/tune:"),
    "results": st.Page("pages/results.py", title="Results", icon=":material/monitoring:"),
    "evaluate": st.Page("pages/evaluate.py", title="Prompt × model", icon=":material/grid_on:"),
}
page = st.navigation(list(pages.values()))
goto = st.query_params.get("page")
if goto is not None:
    # A page reached before app.py ever ran (see the pages' first lines) came here to set the
    # session up; go back to it, keeping the address.
    del st.query_params["page"]
    if goto in pages and pages[goto] is not page:
        st.switch_page(pages[goto], query_params=st.query_params.to_dict())


@st.fragment(run_every=POLL_S)
def sidebar_job() -> None:
    """The open run's running job, in the sidebar; a full rerun when a step has finished
    since the page was drawn (the page shows it) and when the job ends."""
    job = studio.actions.job()
    if job is None or not job.running or st.session_state.get("job_seen") != (job.id, len(job.log)):
        st.rerun()
    st.caption("Working in the background")
    st.progress(markup.progress_fraction(job.done, job.total), text=job.label)
    st.caption(markup.escape_markdown(markup.job_progress_text(job.phase, job.done, job.total)))


with st.sidebar:
    # The Models page applies its widgets in on_change callbacks, before this script runs,
    # so these lines are current on the same rerun.
    st.caption("Active models")
    for m in studio.models.active():
        st.text(f"{m['role']}: {m['model']}\n({m['backend']})")
    if open_run is not None:
        st.caption("Run")
        st.text(open_run)
        job = studio.actions.job()
        if job is not None and job.running and page.title != "Optimize":
            st.session_state["job_seen"] = (job.id, len(job.log))
            sidebar_job()

page.run()
