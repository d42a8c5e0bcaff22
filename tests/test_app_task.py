"""Task page: sample tasks, uploads with column mapping, upload errors, splits."""

from __future__ import annotations

from app_support import app_for, arithmetic_csv, make_studio, no_exception, texts


def _load_sample(at, name="object_counting"):
    at.selectbox(key="sample_name").set_value(name)
    at.button[0].click().run()  # "Load sample task"
    return at


def test_load_a_sample_task_shows_it_and_its_split(tmp_path):
    studio = make_studio(tmp_path)
    at = _load_sample(app_for(studio, "pages/task.py"))
    no_exception(at)
    assert texts(at.subheader) == ["Loaded task: object_counting"]
    assert any("Loaded sample task object_counting" in t for t in texts(at.success))
    split_line = next(t.value for t in at.text if t.value.startswith("train "))
    splits = studio.draft.settings.splits
    assert f"dev {splits.dev_size}" in split_line and f"test {splits.test_size}" in split_line
    assert at.selectbox(key=f"answer_type_{studio.tasks.version}").value == "number"


def test_upload_csv_preview_map_columns_and_load(tmp_path):
    studio = make_studio(tmp_path)
    at = app_for(studio, "pages/task.py")
    at.radio(key="task_source").set_value("Upload a file").run()
    at.file_uploader[0].set_value(("arith.csv", arithmetic_csv(20), "text/csv")).run()
    no_exception(at)
    preview = at.dataframe[0].value
    assert list(preview.columns) == ["question", "answer"] and len(preview) == 5
    # columns guessed from their names
    digest = studio.tasks.upload.digest[:8]
    assert at.selectbox(key=f"map_input_{digest}").value == "question"
    assert at.selectbox(key=f"map_target_{digest}").value == "answer"
    next(b for b in at.button if b.label == "Load this file as the task").click().run()
    no_exception(at)
    assert texts(at.subheader) == ["Loaded task: arith"]
    assert studio.tasks.task.answer_type == "number"  # inferred from the targets
    assert len(studio.tasks.task.examples) == 20
    assert studio.tasks.task.examples[0].input == "What is 3 + 11?"


def test_upload_error_names_file_line_field_and_keeps_previous_task(tmp_path):
    studio = make_studio(tmp_path)
    at = _load_sample(app_for(studio, "pages/task.py"), "navigation")
    at.radio(key="task_source").set_value("Upload a file").run()
    bad = b"question,answer\nWhat is 1 + 1?,2\nWhat is 2 + 2?,\nWhat is 3 + 3?,6\n"
    at.file_uploader[0].set_value(("bad.csv", bad, "text/csv")).run()
    next(b for b in at.button if b.label == "Load this file as the task").click().run()
    no_exception(at)
    errors = texts(at.error)
    assert len(errors) == 1
    assert errors[0].startswith("bad.csv, line 3, field 'answer':"), errors
    assert "previous task (navigation) stays loaded" in " ".join(texts(at.info))
    assert studio.tasks.task.name == "navigation"
    assert texts(at.subheader) == ["Loaded task: navigation"]


def test_unparseable_upload_shows_the_parser_message(tmp_path):
    studio = make_studio(tmp_path)
    at = app_for(studio, "pages/task.py")
    at.radio(key="task_source").set_value("Upload a file").run()
    at.file_uploader[0].set_value(("broken.jsonl", b'{"input": "a", "target": "b"}\n{"input": oops}\n',
                                   "application/json")).run()
    no_exception(at)
    errors = texts(at.error)
    assert len(errors) == 1 and errors[0].startswith("broken.jsonl, line 2"), errors
    assert studio.tasks.task is None and studio.tasks.upload is None
    assert "No task loaded yet" in " ".join(texts(at.info))


def test_split_sizes_too_large_are_reported_by_setting(tmp_path):
    studio = make_studio(tmp_path)
    studio.tasks.preview_upload(arithmetic_csv(10), "arith.csv")
    studio.tasks.load_upload("question", "answer")
    at = app_for(studio, "pages/task.py")
    v = studio.tasks.version
    at.number_input(key=f"dev_size_{v}").set_value(8)
    at.number_input(key=f"test_size_{v}").set_value(5).run()
    errors = texts(at.error)
    assert len(errors) == 1 and "setting 'dev_size'" in errors[0] and "exceeds the 10 examples" in errors[0]


def test_prompt_settings_change_the_task(tmp_path):
    studio = make_studio(tmp_path)
    at = _load_sample(app_for(studio, "pages/task.py"), "word_sorting")
    v = studio.tasks.version
    at.selectbox(key=f"position_{v}").set_value("before_Q")
    at.text_area(key=f"instruction_{v}").set_value("Sort the words.").run()
    no_exception(at)
    assert studio.tasks.task.instruction_position == "before_Q"
    assert studio.tasks.task.initial_instruction == "Sort the words."


def test_a_one_column_upload_says_the_file_has_one_column_and_needs_two(tmp_path):
    """Defect 11: a one-column file (here: ';'-separated) preselected that column as both
    input and target, then blamed the input column. Now: one error naming the file and its
    only column, saying a task needs an input and a target column; no mapping to fill in."""
    studio = make_studio(tmp_path)
    at = app_for(studio, "pages/task.py")
    at.radio(key="task_source").set_value("Upload a file").run()
    at.file_uploader[0].set_value(("semi.csv", b"question;answer\nWhat is 1 + 1?;2\nWhat is 2 + 2?;4\n",
                                   "text/csv")).run()
    no_exception(at)
    errors = texts(at.error)
    assert len(errors) == 1, errors
    assert errors[0].startswith("semi.csv, line 1, field 'question;answer': the file has only one column "
                                "('question;answer'); a task needs two: an input column and a target column."), errors
    assert "';'" in errors[0]  # the likely cause: the delimiter
    assert "input column found" not in errors[0]
    assert not [s for s in at.selectbox if str(s.key).startswith("map_")]  # no column mapping offered
    assert not any(b.label == "Load this file as the task" for b in at.button)
    assert studio.tasks.task is None


def test_the_same_column_for_input_and_target_is_refused_by_name(tmp_path):
    studio = make_studio(tmp_path)
    at = app_for(studio, "pages/task.py")
    at.radio(key="task_source").set_value("Upload a file").run()
    at.file_uploader[0].set_value(("arith.csv", arithmetic_csv(8), "text/csv")).run()
    digest = studio.tasks.upload.digest[:8]
    at.selectbox(key=f"map_target_{digest}").set_value("question")
    next(b for b in at.button if b.label == "Load this file as the task").click().run()
    errors = texts(at.error)
    assert errors == ["setting 'Target column': the input and target columns are both 'question'; "
                      "choose two different columns"], errors


def test_a_refused_upload_clears_the_previous_files_preview(tmp_path):
    """Issue 15, item 9: a file over the 20 MB limit was refused, but "Load" then loaded the
    previous file's preview. Now the refusal names the file and the limit, no mapping or
    Load button is offered, and nothing of the previous upload stays loadable."""
    studio = make_studio(tmp_path)
    at = app_for(studio, "pages/task.py")
    at.radio(key="task_source").set_value("Upload a file").run()
    at.file_uploader[0].set_value(("arith.csv", arithmetic_csv(20), "text/csv")).run()
    assert studio.tasks.upload is not None and any(b.label == "Load this file as the task" for b in at.button)
    big = b"question,answer\n" + b"What is 1 + 1?,2\n" * 1_300_000  # 22.1 MB
    at.file_uploader[0].set_value(("big.csv", big, "text/csv")).run()
    no_exception(at)
    errors = texts(at.error)
    assert len(errors) == 1 and errors[0].startswith("big.csv, line -, field -: file is 22.1 MB"), errors
    assert "the limit is 20,971,520 bytes per file" in errors[0]
    assert studio.tasks.upload is None
    assert not any(b.label == "Load this file as the task" for b in at.button)
    assert not [s for s in at.selectbox if str(s.key).startswith("map_")]
    assert studio.tasks.task is None  # nothing was loaded


def test_an_emptied_uploader_forgets_the_previous_upload(tmp_path):
    studio = make_studio(tmp_path)
    at = app_for(studio, "pages/task.py")
    at.radio(key="task_source").set_value("Upload a file").run()
    at.file_uploader[0].set_value(("arith.csv", arithmetic_csv(20), "text/csv")).run()
    assert studio.tasks.upload is not None
    at.file_uploader[0].set_value(None).run()  # removed, or refused by the uploader in the browser
    no_exception(at)
    assert studio.tasks.upload is None


def test_streamlit_lets_a_too_large_file_reach_the_app_which_refuses_it():
    """A file Streamlit's uploader refuses in the browser never reaches the app, and the
    previous file stays selected: the server's upload limit must exceed the engine's 20 MB,
    so the engine is the one that refuses (and clears the previous preview)."""
    import tomllib

    from gpo_core.tasks.decoding import DEFAULT_MAX_BYTES

    from app_support import ROOT

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * 1024 * 1024 >= 5 * DEFAULT_MAX_BYTES


def test_the_task_page_offers_a_task_gpo_measurably_improves_first(tmp_path):
    # a new user's first click loads date_normalization (offline GPO 0/12 -> 12/12), not the
    # alphabetically first sample
    from gpo_core.tasks.folders import FIRST_SAMPLE_TASK

    from app_support import app_for, make_studio, no_exception

    studio = make_studio(tmp_path)
    at = app_for(studio, "pages/task.py")
    no_exception(at)
    assert at.selectbox(key="sample_name").value == FIRST_SAMPLE_TASK == "date_normalization"
    next(b for b in at.button if b.label == "Load sample task").click().run()
    no_exception(at)
    assert studio.tasks.task is not None and studio.tasks.task.name == "date_normalization"
