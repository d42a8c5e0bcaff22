"""Table-driven test over tests/data/malformed/: each file either loads with the values a user
would check, or raises TaskFormatError naming the file, the line and the field.

The table below is the machine-readable list of cases (tests/data/malformed/CASES.md explains
them for people). Every file in the folder must have a row and every row a file.
Each case is run twice: from the path (load_task) and from uploaded bytes (load_task_bytes).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from gpo_core.errors import TaskFormatError
from gpo_core.tasks.io import (
    MAX_FIELD_CHARS,
    load_task,
    load_task_bytes,
    neutralize_formula,
    preview_columns,
)
from gpo_core.tasks.task import Task

CORPUS = Path(__file__).parent / "data" / "malformed"


@dataclass(frozen=True)
class Fails:
    line: int | None  # expected line (None: the whole file)
    field: str | None  # expected field (None: no single field)
    says: str  # text the message must contain (case-insensitive)


@dataclass(frozen=True)
class Loads:
    check: Callable[[Task, bytes], None]


# ---------------------------------------------------------------- checks for files that load


def _inputs(t: Task) -> list[str]:
    return [e.input for e in t.examples]


def _targets(t: Task) -> list[str]:
    return [e.target for e in t.examples]


def check_bbh_object(t: Task, raw: bytes) -> None:
    assert _inputs(t) == ["q1", "q2"]
    assert _targets(t) == ["(A)", "(C)"]
    assert [e.line for e in t.examples] == [4, 5]
    assert t.answer_type == "multiple_choice"


def check_bom(t: Task, raw: bytes) -> None:
    assert _inputs(t) == ["Is the sky blue?", "Is grass red?"]
    cols, rows = preview_columns(raw, "bom.csv")
    assert cols == ["input", "target"]  # no U+FEFF glued to the first column name
    assert rows[0] == {"input": "Is the sky blue?", "target": "yes"}


def check_bom_jsonl(t: Task, raw: bytes) -> None:
    assert [(e.input, e.target, e.line) for e in t.examples] == [("q1", "a", 1), ("q2", "b", 2)]


def check_crlf_csv(t: Task, raw: bytes) -> None:
    assert _inputs(t) == ["Is the sky blue?", "Pick one:\n(A) red\n(B) blue", "Is grass red?"]
    assert _targets(t) == ["yes", "(B)", "no"]
    assert not any("\r" in e.input or "\r" in e.target for e in t.examples)
    assert [e.line for e in t.examples] == [2, 3, 6]


def check_crlf_jsonl(t: Task, raw: bytes) -> None:
    assert _targets(t) == ["a", "b"]
    assert [e.line for e in t.examples] == [1, 2]


def check_mixed_types(t: Task, raw: bytes) -> None:
    # numbers become text, booleans "True"/"False", integral floats lose ".0"
    assert _targets(t) == ["4", "2.5", "True", "twelve", "3"]
    assert _inputs(t)[3] == "12"


def check_extra_columns(t: Task, raw: bytes) -> None:
    assert _inputs(t) == ["Is the sky blue?", "Is grass red?"]
    assert _targets(t) == ["yes", "no"]
    assert t.answer_type == "yes_no"


def check_unicode_rtl(t: Task, raw: bytes) -> None:
    expected = [json.loads(line) for line in raw.decode("utf-8").splitlines()]
    assert [e.input.encode("utf-8") for e in t.examples] == [r["input"].encode("utf-8") for r in expected]
    assert t.examples[0].input == "ما هي عاصمة فرنسا؟"
    assert t.examples[1].input.startswith("\u200f")  # right-to-left mark kept
    assert "e\u0301" in t.examples[2].input and "é" in t.examples[2].input  # not normalized
    assert _targets(t)[1] == "שתים עשרה"


def check_html(t: Task, raw: bytes) -> None:
    assert _inputs(t)[0] == "<script>alert('x')</script> What is 2 + 2?"
    assert _inputs(t)[1] == "<b>Bold</b> &amp; <i>italic</i>?"  # entities not decoded
    assert _targets(t)[1] == "<em>yes</em>"


def check_formula(t: Task, raw: bytes) -> None:
    assert _inputs(t) == ["=cmd|' /C calc'!A0", "+SUM(A1:A2)", "@risky"]
    assert _targets(t) == ["=1+1", "-2", "ok"]
    assert [neutralize_formula(c) for c in _inputs(t)] == ["'=cmd|' /C calc'!A0", "'+SUM(A1:A2)", "'@risky"]
    assert neutralize_formula("ok") == "ok"


def check_blank_lines(t: Task, raw: bytes) -> None:
    assert _targets(t) == ["yes", "no"]
    assert [e.line for e in t.examples] == [3, 5]


def check_tsv(t: Task, raw: bytes) -> None:
    assert _inputs(t) == ["What is 2 + 2?", "What is 3, 5 and 7 summed?"]
    assert _targets(t) == ["4", "15"]
    assert t.answer_type == "number"


def check_question_answer(t: Task, raw: bytes) -> None:
    assert _inputs(t) == ["What is 2 + 2?", "What is 3 + 5?"]
    assert _targets(t) == ["4", "8"]


def check_whitespace_target(t: Task, raw: bytes) -> None:
    assert _targets(t) == ["yes", "no"]
    assert _inputs(t)[0] == "  padded question  "  # input kept as written


def check_number_targets(t: Task, raw: bytes) -> None:
    assert _targets(t) == ["4", "-3", "1,234"]
    assert t.answer_type == "number"


def check_multiline(t: Task, raw: bytes) -> None:
    assert _inputs(t)[0] == "Which is a fruit?\nOptions:\n(A) apple\n(B) brick"
    assert [e.line for e in t.examples] == [2, 6]


def check_duplicate_rows(t: Task, raw: bytes) -> None:
    # an exact duplicate (same input and target) is dropped, not refused; the warning names it
    assert _inputs(t) == ["What is 2 + 2?", "What is 3 + 5?"]
    assert [e.line for e in t.examples] == [2, 3]
    assert len(t.warnings) == 1
    assert "duplicate_rows.csv: dropped 1 duplicate row" in t.warnings[0]
    assert "line 4 (same as line 2)" in t.warnings[0]


CASES: dict[str, Fails | Loads] = {
    # --- errors
    "empty.csv": Fails(None, None, "empty"),
    "blank_lines_only.jsonl": Fails(None, None, "empty"),
    "bom_only.csv": Fails(None, None, "empty"),
    "header_only.csv": Fails(None, None, "no data rows"),
    "semicolon_delimiter.csv": Fails(1, "input", "';' as delimiter"),
    "tab_delimited_named_csv.csv": Fails(1, "input", "tab as delimiter"),
    "missing_target_column.csv": Fails(1, "target", "'question', 'notes'"),
    "unknown_columns.csv": Fails(1, "input", "'foo', 'bar'"),
    "blank_target.csv": Fails(3, "target", "blank"),
    "blank_input.jsonl": Fails(2, "input", "blank"),
    "null_target.json": Fails(3, "target", "null"),
    "latin1.csv": Fails(3, "input", "not valid UTF-8"),
    "utf16.csv": Fails(None, None, "UTF-16"),
    "nul_bytes.csv": Fails(1, None, "NUL"),
    "bad_json_line.jsonl": Fails(3, None, "not valid JSON"),
    "jsonl_array_line.jsonl": Fails(2, None, "got a list"),
    "json_object.json": Fails(None, None, "JSON object"),
    "json_scalar.json": Fails(None, None, "a number"),
    "json_list_of_strings.json": Fails(2, None, "record 1 is a string"),
    "json_syntax_error.json": Fails(4, None, "not valid JSON"),
    "nested_value.jsonl": Fails(2, "input", "nested"),
    "nested_list_target.json": Fails(4, "target", "nested"),
    "conflicting_labels.jsonl": Fails(3, "target", "conflicting labels: lines 1 and 3"),
    "ragged_row.csv": Fails(3, None, "3 fields"),
    "unclosed_quote.csv": Fails(3, None, "never closed"),
    "stray_quote.csv": Fails(2, None, "CSV syntax error"),
    "duplicate_header.csv": Fails(1, "input", "appears twice"),
    "missing_key_in_record.jsonl": Fails(3, "target", "'input', 'answer_text'"),
    "unsupported.xlsx": Fails(None, None, "unsupported file type .xlsx"),
    "nan_target.json": Fails(3, "target", "not a finite number"),
    "multiline_then_blank.csv": Fails(5, "target", "blank"),
    # --- loads
    "bbh_examples_object.json": Loads(check_bbh_object),
    "bom.csv": Loads(check_bom),
    "bom.jsonl": Loads(check_bom_jsonl),
    "crlf.csv": Loads(check_crlf_csv),
    "crlf.jsonl": Loads(check_crlf_jsonl),
    "mixed_types.json": Loads(check_mixed_types),
    "extra_columns.csv": Loads(check_extra_columns),
    "unicode_rtl.jsonl": Loads(check_unicode_rtl),
    "html_script.csv": Loads(check_html),
    "formula_cells.csv": Loads(check_formula),
    "trailing_blank_lines.csv": Loads(check_blank_lines),
    "tab_separated.tsv": Loads(check_tsv),
    "question_answer_columns.csv": Loads(check_question_answer),
    "whitespace_target.csv": Loads(check_whitespace_target),
    "number_targets.jsonl": Loads(check_number_targets),
    "multiline_quoted.csv": Loads(check_multiline),
    "duplicate_rows.csv": Loads(check_duplicate_rows),
}


def test_every_corpus_file_has_a_case_and_every_case_a_file():
    files = {p.name for p in CORPUS.iterdir() if not p.name.startswith(".") and p.name != "CASES.md"}
    assert files == set(CASES)
    assert len(files) >= 25


def test_cases_md_lists_every_file():
    doc = (CORPUS / "CASES.md").read_text(encoding="utf-8")
    missing = [name for name in CASES if f"`{name}`" not in doc]
    assert missing == []


def _load(mode: str, name: str) -> tuple[Task, str]:
    path = CORPUS / name
    if mode == "path":
        return load_task(path), str(path)
    return load_task_bytes(path.read_bytes(), name), name


@pytest.mark.parametrize("mode", ["path", "bytes"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_case(name: str, mode: str):
    case = CASES[name]
    if isinstance(case, Loads):
        task, _ = _load(mode, name)
        case.check(task, (CORPUS / name).read_bytes())
        return
    with pytest.raises(TaskFormatError) as info:
        _load(mode, name)
    err = info.value
    shown = str(CORPUS / name) if mode == "path" else name
    message = str(err)
    assert message.startswith(shown)
    assert (err.line, err.field) == (case.line, case.field), message
    if case.line is not None:
        assert f"line {case.line}" in message
    if case.field is not None:
        assert f"field '{case.field}'" in message
    assert case.says.lower() in message.lower(), message


# ---------------------------------------------------------------- generated at test time


def test_ten_megabyte_field_names_line_and_field(tmp_path):
    big = "x" * (10 * 1024 * 1024)
    path = tmp_path / "huge_field.csv"
    path.write_text(f"input,target\nsmall question,yes\n{big},no\n", encoding="utf-8")
    with pytest.raises(TaskFormatError) as info:
        load_task(path)
    err = info.value
    assert (err.line, err.field) == (3, "input")
    assert f"{MAX_FIELD_CHARS:,}" in str(err) and "huge_field.csv" in str(err)


def test_ten_megabyte_field_in_jsonl(tmp_path):
    data = (json.dumps({"input": "q", "target": "y" * (10 * 1024 * 1024)}) + "\n").encode()
    with pytest.raises(TaskFormatError) as info:
        load_task_bytes(data, "huge.jsonl")
    assert (info.value.line, info.value.field) == (1, "target")


def test_file_over_size_limit_is_rejected_before_parsing(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("input,target\n" + "".join(f"question {i},yes\n" for i in range(200)), encoding="utf-8")
    with pytest.raises(TaskFormatError) as info:
        load_task(path, max_bytes=1000)
    assert "big.csv" in str(info.value) and "limit is 1,000 bytes" in str(info.value)
    with pytest.raises(TaskFormatError, match="limit"):
        load_task_bytes(path.read_bytes(), "big.csv", max_bytes=1000)
    assert len(load_task(path).examples) == 200  # fine under the default 20 MB limit
