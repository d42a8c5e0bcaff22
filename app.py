"""GPO Studio: the Streamlit entry point (``make run`` / ``streamlit run app.py``).

Sets up the per-session :class:`gpo_core.studio.studio.Studio` (in ``st.session_state``, so two
browser sessions never share a run), the process-wide model resources (``st.cache_resource``:
built once, loaded lazily on first call) and the page navigation. No model is loaded here.
"""

from __future__ import annotations

import streamlit as st

from gpo_core.models.provider import ModelProvider
from gpo_core.studio.studio import Studio


@st.cache_resource(show_spinner=False, max_entries=64)
def _resource(key: tuple, _build):
    # Heavy, immutable objects (the embedded model, SDK clients, the embedder, the response
    # cache), one per process. ``key`` holds a model's identity and at most a salted hash of
    # an API key; the builder (leading underscore) is not hashed, so no key reaches a cache key.
    return _build()


PROVIDER = ModelProvider(memo=lambda key, build: _resource(key, build))

st.set_page_config(page_title="GPO Studio", page_icon=":material/explore:", layout="wide")

if "studio" not in st.session_state:
    st.session_state["studio"] = Studio(provider=PROVIDER)
studio: Studio = st.session_state["studio"]

pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/task.py", title="Task", icon=":material/table_view:"),
    st.Page("pages/models.py", title="Models", icon=":material/smart_toy:"),
    st.Page("pages/optimize.py", title="Optimize", icon=":material/tune:"),
    st.Page("pages/results.py", title="Results", icon=":material/monitoring:"),
]
page = st.navigation(pages)

with st.sidebar:
    st.caption("Active models")
    for m in studio.active_models():
        st.text(f"{m['role']}: {m['model']}\n({m['backend']})")
    if studio.session is not None:
        st.caption("Run")
        st.text(studio.session.state.run_id)

page.run()
