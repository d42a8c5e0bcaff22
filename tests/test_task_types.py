"""Answer types inferred from most targets with the scoring grammar (tracker issue 10, item 4),
and duplicates / leakage as warnings, not refusals (item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpo_core.errors import TaskFormatError
from gpo_core.scoring.answers import extract_answer, is_correct, normalize_target, target_parses
from gpo_core.tasks.infer import INFERABLE_TYPES, infer_answer_type
from gpo_core.tasks.io import load_task, load_task_bytes
from gpo_core.tasks.splits import split_task

BBH = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "bbh"

#: The answer types listed in ../shared/data/bbh/README.md ("boolean/yes-no/valid-invalid"
#: split by the words the targets use).
BBH_README_TYPES = {
    "object_counting": "number",
    "multistep_arithmetic_two": "number",
    "boolean_expressions": "true_false",
    "causal_judgement": "yes_no",
    "formal_fallacies": "valid_invalid",
    "navigate": "yes_no",
    "sports_understanding": "yes_no",
    "web_of_lies": "yes_no",
    "date_understanding": "multiple_choice",
    "disambiguation_qa": "multiple_choice",
    "geometric_shapes": "multiple_choice",
    "hyperbaton": "multiple_choice",
    "logical_deduction_five_objects": "multiple_choice",
    "logical_deduction_seven_objects": "multiple_choice",
    "logical_deduction_three_objects": "multiple_choice",
    "movie_recommendation": "multiple_choice",
    "penguins_in_a_table": "multiple_choice",
    "reasoning_about_colored_objects": "multiple_choice",
    "ruin_names": "multiple_choice",
    "salient_translation_error_detection": "multiple_choice",
    "snarks": "multiple_choice",
    "temporal_sequences": "multiple_choice",
    "tracking_shuffled_objects_five_objects": "multiple_choice",
    "tracking_shuffled_objects_seven_objects": "multiple_choice",
    "tracking_shuffled_objects_three_objects": "multiple_choice",
    "dyck_languages": "exact_match",
    "word_sorting": "exact_match",
}


def _bbh_or_skip() -> Path:
    if not BBH.is_dir():
        reason = f"BBH data not present at {BBH} (../shared/data/bbh from the repo root)"
        print(reason)
        pytest.skip(reason)
    return BBH


def test_readme_table_covers_all_27_folders():
    root = _bbh_or_skip()
    folders = {d.name for d in root.iterdir() if d.is_dir()}
    assert folders == set(BBH_README_TYPES)
    assert len(folders) == 27


@pytest.mark.parametrize("name, answer_type", sorted(BBH_README_TYPES.items()))
def test_bbh_folder_loads_with_its_readme_type(name, answer_type):
    task = load_task(_bbh_or_skip() / name)
    assert task.answer_type == answer_type
    for split, examples in task.explicit_splits.items():
        assert examples, split
        for ex in examples:  # every kept target scores: none makes evaluation refuse
            normalize_target(ex.target, answer_type)
    dev = split_task(task, dev_size=None, test_size=None).dev
    assert dev


def test_movie_recommendation_and_ruin_names_drop_their_free_text_target_with_a_warning():
    root = _bbh_or_skip()
    movie = load_task(root / "movie_recommendation")
    assert movie.answer_type == "multiple_choice"
    assert len(movie.explicit_splits["test"]) == 143
    [warning] = movie.warnings
    assert "movie_recommendation/test.jsonl" in warning and "line 58" in warning and "Monsters, Inc" in warning
    ruin = load_task(root / "ruin_names")
    [warning] = ruin.warnings
    assert "ruin_names/test.jsonl" in warning and "line 39" in warning


def test_bbh_leakage_between_splits_is_a_warning_naming_splits_and_lines():
    task = load_task(_bbh_or_skip() / "sports_understanding")
    leaks = [w for w in task.warnings if w.startswith("leakage")]
    assert any("train split" in w and "test split" in w and "train line 28 = test line 50" in w for w in leaks)
    assert any("eval line 33 = test line 122" in w for w in leaks)


# ---------------------------------------------------------------- one grammar


@pytest.mark.parametrize(
    "answer_type, target, canonical",
    [
        ("multiple_choice", "A", "(A)"),
        ("multiple_choice", "(A)", "(A)"),
        ("multiple_choice", "(c)", "(C)"),
        ("multiple_choice", "B)", "(B)"),
        ("multiple_choice", "C.", "(C)"),
        ("multiple_choice", "option D", "(D)"),
        ("yes_no", "Yes.", "yes"),
        ("yes_no", "No.", "no"),
        ("yes_no", '"yes"', "yes"),
        ("true_false", "True.", "true"),
        ("valid_invalid", "Invalid!", "invalid"),
        ("number", "$12", "12"),
        ("number", "$1,200.50", "1200.5"),
        ("number", "-$3", "-3"),
        ("number", "+3", "3"),
        ("number", "12.", "12"),
        ("number", "seven", "7"),
        ("number", "Seven.", "7"),
        ("number", "twenty", "20"),
    ],
)
def test_disagreement_cases_parse_and_infer_alike(answer_type, target, canonical):
    assert normalize_target(target, answer_type) == canonical
    assert target_parses(target, answer_type)
    # inference uses the same grammar: a task of such targets gets that type
    assert infer_answer_type([target] * 3) == answer_type
    # and a model stating the canonical answer scores 1 against the raw target
    assert is_correct(extract_answer(f"So the answer is {canonical}.", answer_type), target, answer_type)


@pytest.mark.parametrize(
    "targets, kind",
    [
        (["A", "B", "C", "(D)"], "multiple_choice"),
        (["Yes.", "No.", "yes"], "yes_no"),
        (["$12", "7", "seven", "1,000"], "number"),
        (["True.", "false"], "true_false"),
        (["a", "b"], "exact_match"),  # lowercase single letters are words, not choices
        (["1e5", "12"], "exact_match"),  # scientific notation is not a number target
    ],
)
def test_infer_answer_type_mixed_spellings(targets, kind):
    assert infer_answer_type(targets) == kind


def test_inference_needs_ninety_percent():
    assert infer_answer_type(["(A)"] * 9 + ["Monsters, Inc"]) == "multiple_choice"
    assert infer_answer_type(["(A)"] * 8 + ["Monsters, Inc"] * 2) == "exact_match"
    assert infer_answer_type(["(A)", "3"]) == "exact_match"


@pytest.mark.parametrize("kind", INFERABLE_TYPES)
def test_every_inferable_type_refuses_free_text(kind):
    assert not target_parses("rita, sue and bob poo", kind)


# ---------------------------------------------------------------- targets that do not parse


def _jsonl(rows: list[tuple[str, str]]) -> bytes:
    return "".join(json.dumps({"input": i, "target": t}) + "\n" for i, t in rows).encode()


def test_unparsed_targets_are_dropped_with_a_warning_naming_file_and_line():
    rows = [(f"q{i}", "(A)" if i % 2 else "B") for i in range(12)] + [("odd one", "the third movie")]
    task = load_task_bytes(_jsonl(rows), "mc.jsonl")
    assert task.answer_type == "multiple_choice"
    assert len(task.examples) == 12
    assert [e.target for e in task.examples][:2] == ["B", "(A)"]
    [warning] = task.warnings
    assert warning.startswith("mc.jsonl: dropped 1 example") and "line 13" in warning
    assert "'the third movie'" in warning


def test_explicit_answer_type_drops_what_does_not_parse_and_refuses_when_nothing_is_left():
    data = _jsonl([("q1", "yes"), ("q2", "maybe"), ("q3", "No.")])
    task = load_task_bytes(data, "yn.jsonl", answer_type="yes_no")
    assert [e.input for e in task.examples] == ["q1", "q3"]
    assert "line 2" in task.warnings[0]
    with pytest.raises(TaskFormatError) as info:
        load_task_bytes(data, "yn.jsonl", answer_type="number")
    err = info.value
    assert str(err).startswith("yn.jsonl") and err.line == 1 and "line 1" in str(err)
    assert "'number'" in str(err)


def test_task_json_type_wins_over_inference(tmp_path):
    for split in ("train", "eval", "test"):
        (tmp_path / f"{split}.jsonl").write_bytes(_jsonl([(f"{split} q{i}", str(i)) for i in range(3)]))
    (tmp_path / "task.json").write_text(json.dumps({"answer_type": "exact_match"}))
    assert load_task(tmp_path).answer_type == "exact_match"
    (tmp_path / "task.json").unlink()
    assert load_task(tmp_path).answer_type == "number"


def test_split_left_empty_is_refused_naming_its_file(tmp_path):
    (tmp_path / "train.jsonl").write_bytes(_jsonl([(f"t{i}", "(A)") for i in range(20)]))
    (tmp_path / "eval.jsonl").write_bytes(_jsonl([(f"e{i}", "(B)") for i in range(20)]))
    (tmp_path / "test.jsonl").write_bytes(_jsonl([("x", "free text")]))
    with pytest.raises(TaskFormatError) as info:
        load_task(tmp_path)
    assert str(info.value).startswith(str(tmp_path / "test.jsonl")) and info.value.line == 1


# ---------------------------------------------------------------- duplicates and leakage


def test_duplicate_rows_load_with_a_warning_naming_the_lines():
    data = b"input,target\nq1,yes\nq2,no\nq1,yes\n q2 ,no\nq3,yes\n"
    task = load_task_bytes(data, "dups.csv")
    assert [e.input for e in task.examples] == ["q1", "q2", "q3"]
    assert [e.line for e in task.examples] == [2, 3, 6]
    [warning] = task.warnings
    assert warning.startswith("dups.csv: dropped 2 duplicate rows")
    assert "line 4 (same as line 2)" in warning and "line 5 (same as line 3)" in warning


def test_many_duplicates_name_the_first_lines_and_count_the_rest():
    data = b"input,target\nq,yes\n" + b"q,yes\n" * 30
    task = load_task_bytes(data, "many.csv")
    assert len(task.examples) == 1
    assert "dropped 30 duplicate rows" in task.warnings[0] and "and 10 more" in task.warnings[0]


def test_conflicting_labels_still_refuse_naming_both_lines():
    with pytest.raises(TaskFormatError) as info:
        load_task_bytes(b"input,target\nq1,yes\nq2,no\nq1,no\n", "c.csv")
    err = info.value
    assert (err.line, err.field) == (4, "target")
    assert "conflicting labels: lines 2 and 4" in str(err)


def test_duplicates_in_a_split_file_and_leakage_across_splits(tmp_path):
    (tmp_path / "train.jsonl").write_bytes(_jsonl([("a", "yes"), ("b", "no"), ("a", "yes")]))
    (tmp_path / "eval.jsonl").write_bytes(_jsonl([("c", "yes"), ("b", "no")]))
    (tmp_path / "test.jsonl").write_bytes(_jsonl([("d", "no"), ("e", "yes")]))
    task = load_task(tmp_path)
    assert [e.input for e in task.explicit_splits["train"]] == ["a", "b"]
    assert len(task.warnings) == 2
    dup, leak = task.warnings
    assert dup.startswith(str(tmp_path / "train.jsonl")) and "line 3 (same as line 1)" in dup
    assert leak.startswith("leakage: 1 input is in both the train split") and "eval split" in leak
    assert "train line 2 = eval line 2" in leak
    assert str(tmp_path / "eval.jsonl") in leak


def test_a_clean_file_has_no_warnings():
    assert load_task_bytes(b"input,target\nq1,yes\nq2,no\n", "ok.csv").warnings == []
