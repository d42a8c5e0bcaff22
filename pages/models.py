"""Models: the task model (scorer) and the optimizer model, each embedded, OpenAI or compatible."""

import streamlit as st

from gpo_core.studio import views
from gpo_core.errors import GPOError
from gpo_core.settings import LOCAL_DEFAULT_MODEL, ROLES
from gpo_core.studio.studio import BACKEND_LABELS, DEFAULT_OPENAI_MODEL, USER_BACKENDS, Studio

if "studio" not in st.session_state:
    # A fresh server's first request straight to this page runs it without app.py (Streamlit
    # treats a pages/ folder as legacy multipage until st.navigation runs): go through app.py.
    st.switch_page("app.py")
studio: Studio = st.session_state["studio"]

st.title("Models")
st.markdown(
    "The **task model** answers the task's questions with each candidate prompt (it is the scorer); "
    "the **optimizer model** reads the meta-prompt and writes candidate prompts. The embedded model "
    "(SmolLM2-135M-Instruct, on this CPU) needs no network; OpenAI or any OpenAI-compatible server "
    "(vLLM, llama.cpp server, Ollama, …) is much stronger."
)

key = st.text_input("OpenAI API key", type="password", value=studio.api_key or "", key="api_key_input",
                    help="Kept in this browser session only: never saved to disk, logs, caches or exports.")
studio.set_api_key(key)
if studio.api_key:
    st.caption("Using the key typed above (this browser session only).")
elif studio.env_key_present():
    st.caption("Using OPENAI_API_KEY from the environment.")
else:
    st.caption("No key: set OPENAI_API_KEY or type one above to use OpenAI. Local compatible servers often need none.")

TITLES = {"task": "Task model (scorer)", "optimizer": "Optimizer model"}
columns = st.columns(2)
for role, col in zip(ROLES, columns):
    spec = studio.settings.model(role)
    with col:
        st.subheader(TITLES[role])
        backend = st.radio("Backend", USER_BACKENDS, index=USER_BACKENDS.index(spec.backend) if spec.backend in USER_BACKENDS else 0, key=f"{role}_backend",
                           format_func=BACKEND_LABELS.get)
        if backend == "local":
            default_model = spec.model if spec.backend == "local" else LOCAL_DEFAULT_MODEL
        else:
            default_model = spec.model if spec.backend == backend else DEFAULT_OPENAI_MODEL
        model = st.text_input("Model", value=default_model, key=f"{role}_model_{backend}",
                              help="Embedded: the bundled model or a path to a .gguf file. "
                                   "Otherwise the model name the server knows.")
        base_url = None
        if backend != "local":
            base_url = st.text_input("Base URL" + (" (optional)" if backend == "openai" else ""),
                                     value=(spec.base_url or "") if spec.backend == backend else "",
                                     key=f"{role}_base_url_{backend}",
                                     placeholder="http://localhost:8000/v1" if backend == "compatible"
                                     else "blank: OPENAI_BASE_URL or api.openai.com")
        c1, c2 = st.columns(2)
        temperature = c1.number_input("Temperature", min_value=0.0, max_value=2.0, value=float(spec.temperature),
                                      step=0.1, key=f"{role}_temperature")
        max_tokens = c2.number_input("Max tokens", min_value=1, max_value=32768, value=int(spec.max_tokens), step=16,
                                     key=f"{role}_max_tokens", help="Completion cap per call (tokens).")
        c3, c4 = st.columns(2)
        concurrency = c3.number_input("Concurrency", min_value=1, max_value=64,
                                      value=int(spec.concurrency) if backend != "local" else 1,
                                      disabled=backend == "local", key=f"{role}_concurrency_{backend == 'local'}",
                                      help="Calls in flight at once (the embedded model runs one at a time).")
        timeout = c4.number_input("Timeout (s)", min_value=1.0, max_value=600.0, value=float(spec.timeout_s), step=5.0,
                                  key=f"{role}_timeout", help="Per-request timeout in seconds.")
        try:
            studio.set_model(role, backend=backend, model=model, base_url=base_url, temperature=temperature,
                             max_tokens=int(max_tokens), concurrency=int(concurrency), timeout_s=float(timeout))
        except GPOError as e:
            st.error(views.escape_markdown(str(e)))
        if st.button("Test connection", key=f"{role}_test"):
            with st.spinner("Sending one short request…"):
                ok, message, seconds = studio.test_connection(role)
            if ok:
                st.success(views.escape_markdown(message))
            else:
                st.error(views.escape_markdown(f"Failed after {seconds:.1f} s: {message}"))

st.divider()
studio.use_cache = st.checkbox("Reuse cached responses (same request, same model: answered from the local cache)",
                               value=studio.use_cache, key="use_cache")
st.dataframe(views.models_frame(studio.active_models()), hide_index=True, width="stretch")
if studio.session is not None:
    if st.button("Use these models in the current run"):
        studio.use_models_in_current_run()
        st.success("The current run now uses these models.")
st.page_link("pages/optimize.py", label="Next: Optimize", icon=":material/tune:")
