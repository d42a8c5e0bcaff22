"""GPO Studio: the Streamlit entry point (``make run`` / ``streamlit run app.py``).

Sets up the per-session :class:`gpo_core.studio.Studio` (in ``st.session_state``, so two
browser sessions never share a run), the process-wide model resources (``st.cache_resource``:
built once, loaded lazily on first call) and the page navigation. No model is loaded here.
"""

from __future__ import annotations

import streamlit as st

from gpo_core.embeddings import CachedEmbedder, SentenceTransformerEmbedder
from gpo_core.models.cache import CachedChatModel, ResponseCache, default_cache_path
from gpo_core.models.factory import ModelSpec, build_chat_model
from gpo_core.studio import Studio, key_fingerprint, models_override_from_env, resource_spec


@st.cache_resource(show_spinner=False)
def _response_cache(path: str) -> ResponseCache:
    return ResponseCache(path)


@st.cache_resource(show_spinner=False, max_entries=32)
def _chat_model(spec: dict, key_id: str, _api_key: str | None):
    # Keyed by the model's identity and a fingerprint of the key; the key itself is an
    # unhashed argument (leading underscore), so it never becomes part of a cache key.
    return build_chat_model(ModelSpec(**spec), api_key=_api_key)


@st.cache_resource(show_spinner=False)
def _embedder():
    return CachedEmbedder(SentenceTransformerEmbedder())


class StreamlitResources:
    """Models and the embedder from st.cache_resource: one of each per process."""

    def chat_model(self, spec: ModelSpec, api_key: str | None, use_cache: bool = True):
        ident = resource_spec(spec)
        if spec.backend == "local":
            # one embedded model object per process, shared by both roles and all sessions
            model = _chat_model(ident.to_dict(), "none", None)
        else:
            model = _chat_model(ident.to_dict(), key_fingerprint(api_key), api_key)
        if use_cache:  # the SQLite response cache wrapper is cheap; the cache file is shared
            model = CachedChatModel(model, _response_cache(str(default_cache_path())), namespace=ident.cache_namespace())
        return model

    def embedder(self):
        return _embedder()


st.set_page_config(page_title="GPO Studio", page_icon=":material/explore:", layout="wide")

if "studio" not in st.session_state:
    st.session_state["studio"] = Studio(models_override=models_override_from_env())
studio: Studio = st.session_state["studio"]
studio.resources = StreamlitResources()

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
