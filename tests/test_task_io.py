"""Task loading: formats, column mapping, folders (BBH layout, task.json), sample tasks."""

from __future__ import annotations

import ast
import datetime as dt
import functools
import importlib.util
import json
import re
from pathlib import Path

import pytest

from gpo_core.errors import ConfigError, TaskFormatError
from gpo_core.tasks.io import (
    guess_columns,
    infer_answer_type,
    list_sample_tasks,
    load_task,
    load_task_bytes,
    neutralize_formula,
    preview_columns,
)
from gpo_core.tasks.task import ANSWER_TYPES, DEFAULT_INSTRUCTION, Task

REPO = Path(__file__).resolve().parent.parent
BBH = REPO.parent / "shared" / "data" / "bbh"
SAMPLES = REPO / "sample_tasks"

ROWS = [("What is 2 + 2?", "4"), ("What is 3 + 5?", "8"), ("What is 10 - 7?", "3")]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _csv(rows=ROWS, header="input,target", sep=",") -> str:
    return header + "\n" + "".join(f"{a}{sep}{b}\n" for a, b in rows)


def _jsonl(rows=ROWS, keys=("input", "target")) -> str:
    return "".join(json.dumps({keys[0]: a, keys[1]: b}) + "\n" for a, b in rows)


# ------------------------------------------------------------------ formats


@pytest.mark.parametrize(
    "filename, text",
    [
        ("t.csv", _csv()),
        ("t.tsv", _csv(header="input\ttarget", sep="\t")),
        ("t.jsonl", _jsonl()),
        ("t.json", json.dumps([{"input": a, "target": b} for a, b in ROWS])),
        ("t.json", json.dumps({"examples": [{"input": a, "target": b} for a, b in ROWS]})),
    ],
)
def test_each_format_loads_same_examples_from_path_and_bytes(tmp_path, filename, text):
    path = _write(tmp_path / filename, text)
    for task in (load_task(path), load_task_bytes(text.encode(), filename)):
        assert [(e.input, e.target) for e in task.examples] == ROWS
        assert task.name == "t"
        assert task.answer_type == "number"
        assert task.instruction_position == "Q_end"
        assert task.initial_instruction == DEFAULT_INSTRUCTION
        assert task.explicit_splits == {}


def test_line_numbers_follow_the_file(tmp_path):
    csv_task = load_task(_write(tmp_path / "a.csv", _csv()))
    assert [e.line for e in csv_task.examples] == [2, 3, 4]
    jsonl_task = load_task(_write(tmp_path / "a.jsonl", "\n" + _jsonl()))
    assert [e.line for e in jsonl_task.examples] == [2, 3, 4]
    pretty = json.dumps([{"input": a, "target": b} for a, b in ROWS], indent=2)
    json_task = load_task(_write(tmp_path / "a.json", pretty))
    lines = pretty.split("\n")
    assert [lines[e.line - 1].strip() for e in json_task.examples] == ["{"] * 3
    assert [e.line for e in json_task.examples] == [2, 6, 10]


def test_source_is_the_loaded_path_or_upload_name(tmp_path):
    path = _write(tmp_path / "a.csv", _csv())
    assert load_task(path).source == str(path)
    assert load_task_bytes(path.read_bytes(), "upload.csv").source == "upload.csv"


def test_overrides_win(tmp_path):
    path = _write(tmp_path / "a.csv", _csv())
    task = load_task(
        path,
        name="Arithmetic",
        answer_type="exact_match",
        instruction_position="A_begin",
        initial_instruction="Compute.",
        description="sums",
    )
    assert (task.name, task.answer_type, task.instruction_position, task.initial_instruction, task.description) == (
        "Arithmetic",
        "exact_match",
        "A_begin",
        "Compute.",
        "sums",
    )


def test_invalid_settings_raise_config_error(tmp_path):
    path = _write(tmp_path / "a.csv", _csv())
    with pytest.raises(ConfigError) as info:
        load_task(path, answer_type="fuzzy")
    assert info.value.setting == "answer_type" and "fuzzy" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_task_bytes(path.read_bytes(), "a.csv", instruction_position="middle")
    assert info.value.setting == "instruction_position"


def test_missing_path_names_it(tmp_path):
    with pytest.raises(TaskFormatError, match="not found") as info:
        load_task(tmp_path / "nope.csv")
    assert "nope.csv" in str(info.value)


# ------------------------------------------------------------------ columns


def test_explicit_columns_case_insensitive_and_extra_columns_ignored(tmp_path):
    text = "id,Q,A,notes\n" + "".join(f"{i},{a},{b},x\n" for i, (a, b) in enumerate(ROWS))
    path = _write(tmp_path / "a.csv", text)
    task = load_task(path, input_column="q", target_column="A")
    assert [(e.input, e.target) for e in task.examples] == ROWS


def test_missing_mapped_column_lists_existing_columns(tmp_path):
    path = _write(tmp_path / "a.csv", _csv(header="question,answer"))
    with pytest.raises(TaskFormatError) as info:
        load_task(path, target_column="label")
    err = info.value
    assert (err.line, err.field) == (1, "label")
    assert "'question', 'answer'" in str(err)


def test_same_column_for_input_and_target_is_an_error(tmp_path):
    path = _write(tmp_path / "a.csv", _csv())
    with pytest.raises(TaskFormatError, match="same column"):
        load_task(path, input_column="input", target_column="input")


@pytest.mark.parametrize(
    "columns, expected",
    [
        (["input", "target"], ("input", "target")),
        (["Question", "Answer"], ("Question", "Answer")),
        (["id", "PROMPT", "gold"], ("PROMPT", "gold")),
        (["text", "label"], ("text", "label")),
        (["sentence", "expected"], ("sentence", "expected")),
        (["x", "y"], ("x", "y")),
        (["query", "output"], ("query", "output")),
        (["question", "input", "answer", "target"], ("input", "target")),  # priority order
        (["foo", "bar"], (None, None)),
        (["question", "notes"], ("question", None)),
        ([" Input ", "Target"], (" Input ", "Target")),
    ],
)
def test_guess_columns(columns, expected):
    assert guess_columns(columns) == expected


def test_preview_columns_for_mapping():
    data = _jsonl([(f"q{i}", f"a{i}") for i in range(10)], keys=("prompt", "gold")).encode()
    data += json.dumps({"prompt": "q10", "gold": "a10", "meta": {"k": 1}}).encode() + b"\n"
    cols, rows = preview_columns(data, "up.jsonl", n_rows=3)
    assert cols == ["prompt", "gold", "meta"]
    assert rows == [{"prompt": f"q{i}", "gold": f"a{i}"} for i in range(3)]
    cols, rows = preview_columns(data, "up.jsonl", n_rows=20)
    assert rows[-1]["meta"] == '{"k": 1}'
    assert guess_columns(cols) == ("prompt", "gold")


def test_preview_csv_and_errors_name_the_upload():
    cols, rows = preview_columns(b"Question,Answer,extra\nq1,a1,e\n", "mine.csv")
    assert cols == ["Question", "Answer", "extra"]
    assert rows == [{"Question": "q1", "Answer": "a1", "extra": "e"}]
    with pytest.raises(TaskFormatError) as info:
        preview_columns(b"a,b\n1,2,3\n", "mine.csv")
    assert str(info.value).startswith("mine.csv, line 2")


# ------------------------------------------------------------------ answer types


@pytest.mark.parametrize(
    "targets, kind",
    [
        (["(A)", "(B)", "(R)"], "multiple_choice"),
        (["3", "-2", "4.5", "1,000"], "number"),
        (["Yes", "no", "YES"], "yes_no"),
        (["True", "false"], "true_false"),
        (["valid", "Invalid"], "valid_invalid"),
        (["(A)", "3"], "exact_match"),
        (["(S)"], "exact_match"),
        (["yes", "true"], "exact_match"),
        (["apple banana"], "exact_match"),
        ([], "exact_match"),
    ],
)
def test_infer_answer_type(targets, kind):
    assert infer_answer_type(targets) == kind
    assert kind in ANSWER_TYPES


def test_neutralize_formula():
    for cell in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"]:
        assert neutralize_formula(cell) == "'" + cell
    for cell in ["", "plain", " =not first", "'already"]:
        assert neutralize_formula(cell) == cell


# ------------------------------------------------------------------ folders


def test_bbh_folder_gives_explicit_splits():
    folder = BBH / "navigate"
    if not folder.is_dir():
        pytest.skip(f"BBH data not present at {folder}")
    task = load_task(folder)
    assert task.name == "navigate"
    assert task.examples == []
    assert set(task.explicit_splits) == {"train", "eval", "test"}
    for split, fname in (("train", "train.jsonl"), ("eval", "eval.jsonl"), ("test", "test.jsonl")):
        rows = [json.loads(x) for x in (folder / fname).read_text(encoding="utf-8").splitlines() if x.strip()]
        assert [(e.input, e.target) for e in task.explicit_splits[split]] == [(r["input"], r["target"]) for r in rows]
    fmt_rows = (folder / "format.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(task.format_examples) == len([x for x in fmt_rows if x.strip()])
    assert task.answer_type == "yes_no"
    assert task.source == str(folder)


def test_folder_with_dev_alias_csv_and_task_json(tmp_path):
    _write(tmp_path / "train.csv", _csv([("a", "(A)"), ("b", "(B)")]))
    _write(tmp_path / "dev.jsonl", _jsonl([("c", "(A)")]))
    _write(tmp_path / "test.json", json.dumps([{"input": "d", "target": "(C)"}]))
    _write(tmp_path / "format.jsonl", _jsonl([("f", "(A)")]))
    meta = {"name": "Letters", "description": "pick", "instruction_position": "Q_begin"}
    _write(tmp_path / "task.json", json.dumps(meta))
    task = load_task(tmp_path)
    assert task.name == "Letters" and task.description == "pick" and task.instruction_position == "Q_begin"
    assert [e.input for e in task.explicit_splits["eval"]] == ["c"]
    assert [e.input for e in task.explicit_splits["test"]] == ["d"]
    assert [e.input for e in task.format_examples] == ["f"]
    assert task.answer_type == "multiple_choice"
    assert load_task(tmp_path, name="Other").name == "Other"


def test_folder_missing_a_split_file(tmp_path):
    _write(tmp_path / "train.jsonl", _jsonl())
    _write(tmp_path / "eval.jsonl", _jsonl())
    with pytest.raises(TaskFormatError, match="no test file") as info:
        load_task(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_folder_error_names_the_inner_file(tmp_path):
    _write(tmp_path / "train.jsonl", _jsonl())
    _write(tmp_path / "eval.jsonl", _jsonl() + '{"input": "x"}\n')
    _write(tmp_path / "test.jsonl", _jsonl())
    with pytest.raises(TaskFormatError) as info:
        load_task(tmp_path)
    assert info.value.path == str(tmp_path / "eval.jsonl")
    assert (info.value.line, info.value.field) == (4, "target")


def test_folder_with_several_data_files_is_ambiguous(tmp_path):
    _write(tmp_path / "a.csv", _csv())
    _write(tmp_path / "b.jsonl", _jsonl())
    with pytest.raises(TaskFormatError, match="several data files"):
        load_task(tmp_path)
    _write(tmp_path / "examples.jsonl", _jsonl())
    assert len(load_task(tmp_path).examples) == 3


def test_task_json_errors_name_the_key(tmp_path):
    _write(tmp_path / "examples.csv", _csv())
    _write(tmp_path / "task.json", json.dumps({"name": "x", "answr_type": "number"}))
    with pytest.raises(TaskFormatError) as info:
        load_task(tmp_path)
    assert info.value.field == "answr_type" and "task.json" in str(info.value)
    _write(tmp_path / "task.json", json.dumps({"answer_type": "fuzzy"}))
    with pytest.raises(TaskFormatError) as info:
        load_task(tmp_path)
    assert info.value.field == "answer_type"


def test_task_json_column_mapping(tmp_path):
    _write(tmp_path / "examples.csv", _csv(header="q,a"))
    _write(tmp_path / "task.json", json.dumps({"input_column": "q", "target_column": "a"}))
    assert [(e.input, e.target) for e in load_task(tmp_path).examples] == ROWS


# ------------------------------------------------------------------ sample tasks


@functools.lru_cache(maxsize=1)
def _load_generator():
    spec = importlib.util.spec_from_file_location("sample_generate", SAMPLES / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _samples() -> dict[str, Task]:
    return {name: load_task(path) for name, path, _ in list_sample_tasks()}


def test_sample_tasks_are_listed_and_load():
    listed = list_sample_tasks()
    assert len(listed) >= 4
    tasks = _samples()
    kinds = {t.answer_type for t in tasks.values()}
    assert len(kinds) >= 4
    suffixes = {next(p for p in path.iterdir() if p.name != "task.json").suffix for _, path, _ in listed}
    assert {".csv", ".jsonl", ".json"} <= suffixes
    for name, path, description in listed:
        task = tasks[name]
        meta = json.loads((path / "task.json").read_text(encoding="utf-8"))
        assert description == meta["description"] != ""
        assert task.answer_type == meta["answer_type"] == infer_answer_type([e.target for e in task.examples])
        assert task.instruction_position == "Q_end"
        assert task.initial_instruction == meta["initial_instruction"] != ""
        assert "generate.py" in meta["source"]
        assert 150 <= len(task.examples) <= 200
        assert max(len(e.input.split()) for e in task.examples) < 60


def test_sample_readme_lists_every_task():
    readme = (SAMPLES / "README.md").read_text(encoding="utf-8")
    for name, _, _ in list_sample_tasks():
        assert re.search(rf"^\| {name} \|.*generate\.py", readme, re.M), name


def test_generator_is_deterministic(tmp_path):
    _load_generator().main(tmp_path)
    for _, path, _ in list_sample_tasks():
        for f in path.iterdir():
            assert (tmp_path / path.name / f.name).read_bytes() == f.read_bytes(), f


def test_list_sample_tasks_custom_root(tmp_path):
    (tmp_path / "b_task").mkdir()
    _write(tmp_path / "b_task" / "examples.csv", _csv())
    (tmp_path / "a_task").mkdir()
    _write(tmp_path / "a_task" / "examples.jsonl", _jsonl())
    _write(tmp_path / "a_task" / "task.json", json.dumps({"name": "Zed", "description": "last"}))
    (tmp_path / "empty").mkdir()
    assert list_sample_tasks(tmp_path) == [("Zed", tmp_path / "a_task", "last"), ("b_task", tmp_path / "b_task", "")]
    assert list_sample_tasks(tmp_path / "missing") == []


def _safe_bool_eval(expr: str) -> bool:
    assert set(expr.split()) <= {"True", "False", "not", "and", "or", "(", ")"}, expr
    return eval(compile(ast.parse(expr, mode="eval"), "<expr>", "eval"), {"__builtins__": {}})


def test_sample_gold_answers_are_correct():
    tasks = _samples()
    for e in tasks["boolean_expressions"].examples:
        assert e.input.endswith(" is")
        assert str(_safe_bool_eval(e.input[: -len(" is")])) == e.target, e
    for e in tasks["word_sorting"].examples:
        words = e.input.split("List: ")[1].split()
        assert e.target == " ".join(sorted(words))
    for e in tasks["navigation"].examples:
        assert e.target == ("Yes" if _walk(e.input) == 0 else "No"), e.input
    for e in tasks["date_arithmetic"].examples:
        assert e.target == _date_answer(e.input), e.input
    for e in tasks["object_counting"].examples:
        assert e.target == str(_count(e.input)), e.input


def _walk(question: str) -> complex:
    """Independent re-simulation with complex numbers: position, heading (north = 1j)."""
    body = question.split("?", 1)[1].split("\nOptions:")[0]
    pos, heading = 0j, 1j
    for sent in [s.strip() for s in body.split(".") if s.strip()]:
        m = re.fullmatch(r"Take (\d+) steps?(?: (forward|backward|left|right))?", sent)
        if m:
            n = int(m.group(1))
            if m.group(2):
                pos += n * {"forward": 1j, "backward": -1j, "left": -1, "right": 1}[m.group(2)]
            else:
                pos += n * heading
        elif sent != "Always face forward":
            heading *= {"Turn left": 1j, "Turn right": -1j, "Turn around": -1}[sent]
    return pos


_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"]


def _date_answer(question: str) -> str:
    m = re.match(r"Today is (.+?)\. What is the date (.+?) in MM/DD/YYYY\?", question)
    said, ask = m.group(1), m.group(2)
    if "/" in said:
        today = dt.datetime.strptime(said, "%m/%d/%Y").date()
    else:
        month, day, year = re.match(r"(\w+) (\d+), (\d+)", said).groups()
        today = dt.date(int(year), _MONTHS.index(month) + 1, int(day))
    fixed = {"tomorrow": 1, "yesterday": -1, "one week from today": 7, "one week ago": -7}
    if ask in fixed:
        days = fixed[ask]
    else:
        n, direction = re.match(r"(\d+) days (from today|ago)", ask).groups()
        days = int(n) if direction == "from today" else -int(n)
    answer = (today + dt.timedelta(days=days)).strftime("%m/%d/%Y")
    options = dict(re.findall(r"^\(([A-E])\) (\S+)$", question, re.M))
    letters = [k for k, v in options.items() if v == answer]
    assert len(options) == 5 and len(set(options.values())) == 5 and len(letters) == 1
    return f"({letters[0]})"


def _count(question: str) -> int:
    categories = _load_generator()._CATEGORIES
    listing, asked = re.match(r"I have (.+)\. How many (.+) do I have\?", question).groups()
    numbers = {"a": 1, "an": 1, "two": 2, "three": 3, "four": 4, "five": 5}
    total = 0
    for part in re.split(r", (?:and )?", listing):
        word, item = part.split(" ", 1)
        names = {n for pair in categories[asked] for n in pair}
        total += numbers[word] if item in names else 0
    return total
