"""Task: pick a sample task or upload a file, map its columns, set prompting and splits."""

import streamlit as st

from gpo_core.errors import GPOError
from gpo_core.studio.metric_setup import USER_CODE_CHOICE, MetricSetup
from gpo_core.studio.studio import Studio
from gpo_core.studio.views import markup, setup_view
from gpo_core.tasks.folders import FIRST_SAMPLE_TASK
from gpo_core.tasks.task import ANSWER_TYPES, INSTRUCTION_POSITIONS

if "studio" not in st.session_state:
    # A fresh server's first request straight to this page runs it without app.py (Streamlit
    # treats a pages/ folder as legacy multipage until st.navigation runs): go through app.py,
    # keeping the address (the open run, the owner token), and come back to this page.
    st.switch_page("app.py", query_params={**st.query_params.to_dict(), "page": "task"})
studio: Studio = st.session_state["studio"]
tasks = studio.tasks
md = markup.escape_markdown

st.title("Task")
for f in studio.pop_flashes():
    getattr(st, f.kind)(md(f.text))

AUTO = "auto (from the targets)"
source = st.radio("Source", ["Sample task", "Upload a file"], horizontal=True, key="task_source")

if source == "Sample task":
    samples = tasks.sample_tasks()
    names = [n for n, _, _ in samples]
    descriptions = {n: d for n, _, d in samples}
    first = names.index(FIRST_SAMPLE_TASK) if FIRST_SAMPLE_TASK in names else 0
    name = st.selectbox("Sample task", names, index=first, key="sample_name",
                        help=f"{FIRST_SAMPLE_TASK} is offered first: offline, GPO finds the date format its "
                             "starting instruction does not name.")
    if name:
        st.caption(md(descriptions.get(name, "")))
    if st.button("Load sample task", type="primary", disabled=not names):
        try:
            task = tasks.load_sample(name)
            st.success(md(f"Loaded sample task {task.name}: {setup_view.task_size(task)} examples."))
        except GPOError as e:
            st.error(md(str(e)))
else:
    up = st.file_uploader("Task file (CSV, TSV, JSONL or JSON; UTF-8; up to 20 MB)",
                          key="task_upload",
                          help="One labeled example per row: an input column and a target column.")
    preview = None
    if up is None:
        tasks.clear_upload()  # emptied or refused by the uploader: nothing of an earlier file stays loadable
    else:
        try:
            preview = tasks.preview_upload(up.getvalue(), up.name)
        except GPOError as e:
            st.error(md(str(e)))
            if tasks.task is not None:
                st.info(md(f"The previous task ({tasks.task.name}) stays loaded."))
    if preview is not None:
        st.caption(f"First rows of {md(preview.filename)}")
        st.dataframe(setup_view.preview_frame(preview.columns, preview.rows), hide_index=True, width="stretch")
        cols = preview.columns
        c1, c2, c3 = st.columns(3)
        in_col = c1.selectbox("Input column", cols, key=f"map_input_{preview.digest[:8]}",
                              index=cols.index(preview.guessed_input) if preview.guessed_input in cols else 0)
        tgt_default = cols.index(preview.guessed_target) if preview.guessed_target in cols else min(1, len(cols) - 1)
        tgt_col = c2.selectbox("Target column", cols, index=tgt_default, key=f"map_target_{preview.digest[:8]}")
        ans = c3.selectbox("Answer type", [AUTO, *ANSWER_TYPES], key=f"map_answer_{preview.digest[:8]}")
        if st.button("Load this file as the task", type="primary"):
            try:
                task = tasks.load_upload(in_col, tgt_col, None if ans == AUTO else ans)
                st.success(md(f"Loaded {setup_view.task_size(task)} examples from {preview.filename}."))
            except GPOError as e:
                st.error(md(str(e)))
                if tasks.task is not None:
                    st.info(md(f"The previous task ({tasks.task.name}) stays loaded."))

st.divider()
task = tasks.task
if task is None:
    st.info("No task loaded yet: load a sample task or upload a file above.")
    st.stop()

v = tasks.version
st.subheader(f"Loaded task: {md(task.name)}")
st.caption(f"{setup_view.task_size(task)} examples · {md(tasks.origin)}")
if task.description:
    st.text(task.description)
for warning in task.warnings:  # dropped duplicates / unparsed targets, leakage
    st.warning(md(warning))
with st.expander("Examples", expanded=False):
    st.dataframe(setup_view.examples_frame(task), hide_index=True, width="stretch")

st.markdown("**How to prompt and score it**")
c1, c2 = st.columns(2)
answer_type = c1.selectbox("Answer type", ANSWER_TYPES, index=ANSWER_TYPES.index(task.answer_type),
                           key=f"answer_type_{v}", help="How answers are extracted and compared with the target.")
position = c2.selectbox("Instruction position", INSTRUCTION_POSITIONS,
                        index=INSTRUCTION_POSITIONS.index(task.instruction_position), key=f"position_{v}",
                        help="Where the prompt goes: before the question, at its start or end, or after 'A:'.")
instruction = st.text_area("Starting instruction", value=task.initial_instruction, key=f"instruction_{v}", height=80)
try:
    tasks.update_task(answer_type=answer_type, instruction_position=position, initial_instruction=instruction)
except GPOError as e:
    st.error(md(str(e)))

st.markdown("**Metric** (how each answer is scored; accuracy is the mean score)")
metrics = MetricSetup(studio.draft)
task = tasks.task or task  # as update_task left it (answer type changed)
chosen, chosen_opts = metrics.current()
choices = metrics.choices()
if chosen not in choices:  # user code saved in a run, on a server that does not allow it
    choices.append(chosen)
mc1, mc2 = st.columns(2)
choice = mc1.selectbox("Metric", choices, index=choices.index(chosen), key=f"metric_{v}",
                       help="The answer type's exact rule (the paper's), or a metric with partial credit.")
code = ""
if choice == USER_CODE_CHOICE:
    code = mc2.text_input("User code (path.py:function)", value=studio.draft.settings.optimizer.metric,
                          key=f"metric_code_{v}", help="Called as function(output, target, input) -> score in [0, 1].")
values = {key: st.text_input(f"Metric option · {key}", value=chosen_opts.get(key, "") if choice == chosen else "",
                             help=why, key=f"metric_opt_{choice}_{key}_{v}")
          for key, why in metrics.option_fields(choice)}
try:
    metric = metrics.apply(task, metrics.setting(choice, code), values)
except GPOError as e:
    st.error(md(str(e)))
else:
    st.caption(md(metric.definition()))
    pc1, pc2 = st.columns([1, 3])
    index = pc1.number_input("Preview example", min_value=1, value=1, step=1, key=f"metric_example_{v}")
    typed = pc2.text_input("Output to score (empty: the example's own target)", key=f"metric_output_{v}")
    try:
        shown = metrics.preview(task, metric, int(index) - 1, typed or None)
        st.text(f"Target: {shown.target}")
        if shown.judge_prompt is not None:  # the LLM judge: no model call on this page
            st.info(md(shown.text()))
            st.code(shown.judge_prompt, language=None, wrap_lines=True)
        else:
            (st.success if shown.score == 1.0 else st.warning)(md(shown.text()))
    except GPOError as e:
        st.error(md(str(e)))

st.markdown("**Splits** (dev scores every candidate; test is only reported)")
s = studio.draft.settings.splits
c1, c2, c3, c4 = st.columns(4)
dev = c1.number_input("Dev examples", min_value=1, value=s.dev_size or 1, step=1, key=f"dev_size_{v}")
test = c2.number_input("Test examples", min_value=0, value=s.test_size or 0, step=1, key=f"test_size_{v}")
train = c3.number_input("Train cap (0 = all the rest)", min_value=0, value=s.train_size or 0, step=1,
                        key=f"train_size_{v}")
seed = c4.number_input("Seed", min_value=0, value=s.seed, step=1, key=f"seed_{v}")
try:
    splits = tasks.update_splits(dev_size=int(dev), test_size=int(test), train_size=int(train) or None, seed=int(seed))
    counts = setup_view.split_counts(splits)
    st.text(f"train {counts['train']} (exemplar pool) · dev {counts['dev']} · test {counts['test']}")
except GPOError as e:
    st.error(md(str(e)))

if studio.runs.session is not None:
    st.caption("These settings apply to the next new run; the current run keeps its own.")
st.page_link("pages/models.py", label="Next: Models", icon=":material/smart_toy:")
