"""Home: what GPO does, where to start, which models are active."""

import streamlit as st

from gpo_core.studio.studio import Studio
from gpo_core.studio.views import markup, setup_view

if "studio" not in st.session_state:
    # A fresh server's first request straight to this page runs it without app.py (Streamlit
    # treats a pages/ folder as legacy multipage until st.navigation runs): go through app.py,
    # keeping the address (the open run, the owner token), and come back to this page.
    st.switch_page("app.py", query_params={**st.query_params.to_dict(), "page": "home"})
studio: Studio = st.session_state["studio"]

st.title("GPO Studio")
for f in studio.pop_flashes():
    getattr(st, f.kind)(markup.escape_markdown(f.text))
st.markdown(
    "GPO (Tang et al. 2024, [arXiv 2402.17564](https://arxiv.org/abs/2402.17564); not the unrelated 2023 "
    "\"GPO\") optimizes a prompt the way gradient descent optimizes weights. Each **step** shows an *optimizer model* "
    "a few earlier prompts with their scores (the **update direction**), the current prompt and an "
    "**edit budget** (\"change at most N words\", decaying like a learning rate). It writes candidate "
    "prompts; the *task model* answers your dev examples with each one, and the best becomes the next prompt. "
    "Here you can watch every step, edit candidates, and accept or reject them by hand. The defaults follow "
    "the paper's reference code; the run settings mark each choice *paper* or *ours*."
)

st.subheader("Where to start")
st.markdown(
    "1. **Task**: pick a sample task or upload a CSV / JSONL / JSON file of labeled examples.\n"
    "2. **Models**: keep the embedded offline model, or use OpenAI or any OpenAI-compatible server.\n"
    "3. **Optimize**: score the starting prompt, then run steps one at a time or automatically.\n"
    "4. **Results**: curves, per-example answers, exports, and saved runs to reopen."
)
st.page_link("pages/task.py", label="Go to Task", icon=":material/table_view:")

st.subheader("Active models")
st.dataframe(setup_view.models_frame(studio.models.active()), hide_index=True, width="stretch")

st.subheader("Now")
task = studio.tasks.task
if task is None:
    st.info("No task loaded yet.")
else:
    st.text(f"Task: {task.name} ({setup_view.task_size(task)} examples, {studio.tasks.origin})")
s = studio.runs.session
if s is not None:
    st.text(f"Run {s.state.run_id}: {len(s.state.decided_steps)} of {s.config.steps} steps done")
