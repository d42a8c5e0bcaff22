"""Models: the task model (scorer) and the optimizer model, each embedded, OpenAI or compatible."""

import streamlit as st

from gpo_core.errors import GPOError
from gpo_core.settings import EMBEDDED_MODELS, LOCAL_DEFAULT_MODEL, MODEL_PRESETS, ROLES, default_model_settings
from gpo_core.studio.model_config import (
    BACKEND_LABELS,
    DEFAULT_OPENAI_MODEL,
    EMBEDDED_INFO,
    OTHER_GGUF,
    USER_BACKENDS,
)
from gpo_core.studio.studio import Studio
from gpo_core.studio.views import markup, setup_view

if "studio" not in st.session_state:
    # A fresh server's first request straight to this page runs it without app.py (Streamlit
    # treats a pages/ folder as legacy multipage until st.navigation runs): go through app.py,
    # keeping the address (the open run, the owner token), and come back to this page.
    st.switch_page("app.py", query_params={**st.query_params.to_dict(), "page": "models"})
studio: Studio = st.session_state["studio"]
models = studio.models
md = markup.escape_markdown

st.title("Models")
for f in studio.pop_flashes():
    getattr(st, f.kind)(md(f.text))
st.markdown(
    "The **task model** answers the task's questions with each candidate prompt (it is the scorer); "
    "the **optimizer model** reads the meta-prompt and writes candidate prompts. The embedded models "
    "(Qwen2.5-Coder-1.5B-Instruct and SmolLM2-135M-Instruct, on this CPU) need no network; OpenAI or any "
    "OpenAI-compatible server (vLLM, llama.cpp server, Ollama, …) is much stronger."
)

CUSTOM = "custom"


def preset_label(name: str) -> str:
    if name == CUSTOM:
        return "Custom (set each role below)"
    p = MODEL_PRESETS[name]
    return (f"{p.label}: task model {EMBEDDED_INFO[p.task_model]['label']}, optimizer model "
            f"{EMBEDDED_INFO[p.optimizer_model]['label']} · about {p.step_seconds:.0f} s a step")


def apply_preset() -> None:
    """on_change of the preset radio: both roles on the preset's embedded models."""
    name = st.session_state.get("model_preset")
    if name in MODEL_PRESETS:
        models.apply_preset(name)
        ERRORS.clear()
        for role in ROLES:
            st.session_state[f"{role}_wants_gguf"] = False


ERRORS = st.session_state.setdefault("model_errors", {})
st.session_state["model_preset"] = models.current_preset() or CUSTOM
st.radio("Embedded models (offline presets)", [*MODEL_PRESETS, CUSTOM], key="model_preset", format_func=preset_label,
         on_change=apply_preset,
         help="Step times were measured on 2 shared CPU cores with the app's default sizes (4 candidates x 12 dev "
              "examples); the Optimize page shows the estimate for your run.")

key = st.text_input("OpenAI API key", type="password", value=models.api_key or "", key="api_key_input",
                    help="Kept in this browser session only: never saved to disk, logs, caches or exports.")
models.set_api_key(key)
if models.api_key:
    st.caption("Using the key typed above (this browser session only).")
elif models.env_key_present():
    st.caption("Using OPENAI_API_KEY from the environment.")
else:
    st.caption("No key: set OPENAI_API_KEY or type one above to use OpenAI. Local compatible servers often need none.")

TITLES = {"task": "Task model (scorer)", "optimizer": "Optimizer model"}


def backends_for(role: str) -> tuple[str, ...]:
    """The backends offered for ``role``: the user's three, plus the demo backend when the
    role is on it (demo mode), so the page shows what the run really uses."""
    current = studio.draft.settings.model(role).backend
    return USER_BACKENDS + (("demo",) if current == "demo" else ())


def defaults(role: str, backend: str) -> tuple[str, str]:
    """(model, base URL) a role's fields start with for ``backend``: the current settings when
    the role is on that backend, else the backend's default."""
    spec = studio.draft.settings.model(role)
    if spec.backend == backend:
        return spec.model, spec.base_url or ""
    if backend == "local":
        return default_model_settings(role, "local").model, ""
    if backend == "demo":
        return "scripted-task" if role == "task" else "scripted-optimizer", ""
    return DEFAULT_OPENAI_MODEL, ""


def apply(role: str) -> None:
    """on_change of every model widget of ``role``: validate and keep its settings now, before
    the page (and the sidebar's "Active models") is drawn. A bad value keeps the previous
    settings and its error is shown under the role's fields."""
    ss = st.session_state
    spec = studio.draft.settings.model(role)
    backend = ss.get(f"{role}_backend", spec.backend)
    model, base_url = defaults(role, backend)
    model = ss.get(f"{role}_model_{backend}", model)
    if backend == "local":
        choice = ss.get(f"{role}_embedded", model if model in EMBEDDED_MODELS else OTHER_GGUF)
        ss[f"{role}_wants_gguf"] = choice == OTHER_GGUF
        model = choice if choice in EMBEDDED_MODELS else (ss.get(f"{role}_gguf_path") or "").strip()
        if not model:  # "a .gguf file" chosen, no path typed yet: keep the settings until one is
            ERRORS.pop(role, None)
            return
    base_url = ss.get(f"{role}_base_url_{backend}", base_url) if backend not in ("local", "demo") else None
    concurrency = ss.get(f"{role}_concurrency_{backend == 'local'}", spec.concurrency)
    try:
        models.set_model(role, backend=backend, model=model, base_url=base_url,
                         temperature=float(ss.get(f"{role}_temperature", spec.temperature)),
                         max_tokens=int(ss.get(f"{role}_max_tokens", spec.max_tokens)),
                         concurrency=int(concurrency), timeout_s=float(ss.get(f"{role}_timeout", spec.timeout_s)))
    except GPOError as e:
        ERRORS[role] = str(e)
    else:
        ERRORS.pop(role, None)


def use_in_current_run() -> None:
    if ERRORS:
        st.session_state["use_models_result"] = ("error", "Fix the model settings above first.")
        return
    try:
        studio.actions.use_draft_models()
    except GPOError as e:
        st.session_state["use_models_result"] = ("error", str(e))
    else:
        st.session_state["use_models_result"] = ("success", "The current run now uses these models: every later "
                                                            "request has their temperature and max tokens.")


columns = st.columns(2)
for role, col in zip(ROLES, columns):
    spec = studio.draft.settings.model(role)
    options = backends_for(role)
    with col:
        st.subheader(TITLES[role])
        backend = st.radio("Backend", options, index=options.index(spec.backend) if spec.backend in options else 0,
                           key=f"{role}_backend", format_func=BACKEND_LABELS.get, on_change=apply, args=(role,))
        default_model, default_url = defaults(role, backend)
        if backend == "local":
            current = default_model or LOCAL_DEFAULT_MODEL
            wants_gguf = current not in EMBEDDED_MODELS or st.session_state.get(f"{role}_wants_gguf", False)
            st.session_state[f"{role}_embedded"] = OTHER_GGUF if wants_gguf else current
            st.selectbox("Model", [*EMBEDDED_MODELS, OTHER_GGUF], key=f"{role}_embedded", on_change=apply,
                         args=(role,), format_func=lambda n: EMBEDDED_INFO[n]["label"] if n in EMBEDDED_INFO else n,
                         help="An embedded model, or any .gguf file on this computer.")
            if wants_gguf:
                st.text_input("Path to a .gguf file", value="" if current in EMBEDDED_MODELS else current,
                              key=f"{role}_gguf_path", on_change=apply, args=(role,),
                              placeholder="/path/to/model.gguf")
        else:
            st.text_input("Model", value=default_model, key=f"{role}_model_{backend}", on_change=apply, args=(role,),
                          disabled=backend == "demo", help="The model name the server knows.")
        if backend not in ("local", "demo"):
            st.text_input("Base URL" + (" (optional)" if backend == "openai" else ""), value=default_url,
                          key=f"{role}_base_url_{backend}", on_change=apply, args=(role,),
                          placeholder="http://localhost:8000/v1" if backend == "compatible"
                          else "blank: OPENAI_BASE_URL or api.openai.com")
        c1, c2 = st.columns(2)
        c1.number_input("Temperature", min_value=0.0, max_value=2.0, value=float(spec.temperature),
                        step=0.1, key=f"{role}_temperature", on_change=apply, args=(role,))
        c2.number_input("Max tokens", min_value=1, max_value=32768, value=int(spec.max_tokens), step=16,
                        key=f"{role}_max_tokens", help="Completion cap per call (tokens).", on_change=apply,
                        args=(role,))
        c3, c4 = st.columns(2)
        c3.number_input("Concurrency", min_value=1, max_value=64,
                        value=int(spec.concurrency) if backend != "local" else 1,
                        disabled=backend == "local", key=f"{role}_concurrency_{backend == 'local'}",
                        help="Calls in flight at once (the embedded model runs one at a time).", on_change=apply,
                        args=(role,))
        c4.number_input("Timeout (s)", min_value=1.0, max_value=600.0, value=float(spec.timeout_s), step=5.0,
                        key=f"{role}_timeout", help="Per-request timeout in seconds.", on_change=apply, args=(role,))
        if role in ERRORS:
            st.error(md(ERRORS[role]))
        if st.button("Test connection", key=f"{role}_test"):
            with st.spinner("Sending one short request…"):
                ok, message, seconds = models.test_connection(role)
            if ok:
                st.success(md(message))
            else:
                st.error(md(f"Failed after {seconds:.1f} s: {message}"))

def _set_judge() -> None:
    """The judge model choice (a callback); a bad spec is shown under the field."""
    choice = st.session_state.get("judge_choice", models.JUDGE_IS_TASK)
    spec = st.session_state.get("judge_spec", "") if choice == JUDGE_OTHER else choice
    try:
        models.set_judge(str(spec))
    except GPOError as e:
        ERRORS["judge"] = str(e)
    else:
        ERRORS.pop("judge", None)


st.subheader("Judge model")
JUDGE_OTHER = "another model (backend:model)"
if not studio.draft.settings.uses_judge:
    st.caption("Only the LLM judge metric calls a judge model: pick it on the Task page (Metric: llm_judge) to "
               "choose the judge here.")
else:
    st.caption("The LLM judge grades every answer against your rubric: one extra call per scored example, cached "
               "and counted in tokens and cost like the other roles. By default the task model judges, at "
               "temperature 0.")
    current = models.judge_spec()
    judge_options = [models.JUDGE_IS_TASK, *EMBEDDED_MODELS, JUDGE_OTHER]
    j1, j2 = st.columns([1, 2])
    j1.selectbox("Judge model", judge_options,
                 index=judge_options.index(current) if current in judge_options else len(judge_options) - 1,
                 key="judge_choice", on_change=_set_judge,
                 format_func=lambda n: ("the task model (temperature 0)" if n == models.JUDGE_IS_TASK
                                        else EMBEDDED_INFO[n]["label"] if n in EMBEDDED_INFO else n))
    if st.session_state.get("judge_choice", current) == JUDGE_OTHER or current not in judge_options:
        j2.text_input("Judge model spec", value=current if current not in judge_options else "", key="judge_spec",
                      on_change=_set_judge, placeholder="openai:gpt-4o-mini · compatible:NAME · local:/path.gguf",
                      help="The key comes from the API key above or OPENAI_API_KEY; a compatible server's URL from "
                           "OPENAI_BASE_URL.")
    if "judge" in ERRORS:
        st.error(md(ERRORS["judge"]))

st.divider()
st.subheader("Embedded models")
embedded = models.embedded_models()
st.dataframe(setup_view.embedded_frame(embedded), hide_index=True, width="stretch")
for row in embedded:
    if row["status"].startswith("joined from its parts"):
        if st.button(f"Prepare {row['model']} now", key=f"prepare_{row['name']}",
                     help="Join its part files into one verified model file (once; about 10 s)."):
            bar, label = st.progress(0.0, text=f"Joining {row['model']}…"), row["model"]

            def show(done: int, total: int, bar=bar, label=label) -> None:
                bar.progress(done / max(1, total), text=f"Joining {label}: {done / 1e9:.2f} of {total / 1e9:.2f} GB")

            try:
                path = models.prepare_embedded(row["name"], show)
            except GPOError as e:
                st.error(md(str(e)))
            else:
                bar.progress(1.0, text="Ready")
                st.success(md(f"{row['model']} is ready: {path}"))
models.use_cache = st.checkbox("Reuse cached responses (same request, same model: answered from the local cache)",
                               value=models.use_cache, key="use_cache")
st.dataframe(setup_view.models_frame(models.active()), hide_index=True, width="stretch")
if studio.runs.session is not None:
    busy = studio.actions.busy()
    st.button("Use these models in the current run", key="use_models", on_click=use_in_current_run,
              disabled=busy, help="Wait for the running work to end first." if busy else None)
    result = st.session_state.pop("use_models_result", None)
    if result is not None:
        getattr(st, result[0])(md(result[1]))
st.page_link("pages/optimize.py", label="Next: Optimize", icon=":material/tune:")
