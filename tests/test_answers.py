"""Answer extraction and scoring, per answer type, including rambling small-model outputs."""

import json
from pathlib import Path

import pytest

from gpo_core.errors import ConfigError
from gpo_core.scoring.answers import extract_answer, is_correct, normalize_target
from gpo_core.tasks.task import ANSWER_TYPES

BBH = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "bbh"

# (output, expected extracted answer)
MULTIPLE_CHOICE = [
    ("The answer is (C). Not (A)", "(C)"),
    ("(B)", "(B)"),
    ("B) because the shape closes", "(B)"),
    ("So the answer is B.", "(B)"),
    ("Answer: D", "(D)"),
    ("I would go with option E", "(E)"),
    ("the answer is (b)", "(B)"),
    ("(A) is wrong, (B) is wrong, so (D)", "(D)"),
    ("(D) is the correct answer, unlike (A).", "(D)"),
    ("Let's think step by step. (A) circle (B) kite\nSo the answer is (K).\n\nQ: next (A)", "(K)"),
    ("The answer is clear.\nThe answer is (F) octagon. Explanation: the answer is obvious.", "(F)"),
    ("I am not sure about this one.", None),
    ("", None),
]

NUMBER = [
    ("I think 12, no wait, 15", "15"),
    ("The answer is 1,234 apples.", "1234"),
    ("So the answer is -17.", "-17"),
    ("((9 + 2) - -3) = 14", "14"),
    ("5-3 = 2", "2"),
    ("Total: $12.50", "12.5"),
    ("That makes 12.0", "12"),
    ("There are seven vegetables.", "7"),
    ("The answer is twenty.", "20"),
    ("I count 5 items, one of which is a stove", "5"),
    ("The answer is 8. Then 9 more would be 17", "8"),
    ("Answer: 0", "0"),
    ("It is about .5 of it", "0.5"),
    ("x = -.25", "-0.25"),
    ("No number here.", None),
]

YES_NO = [
    ("Yes... no", "no"),
    ("The answer is Yes. No doubt about it.", "yes"),
    ("No.", "no"),
    ("Nobody knows, but yes", "yes"),
    ("Not sure. Noted.", None),
]

TRUE_FALSE = [
    ("not True or False = True", "true"),
    ("The answer is False.", "false"),
    ("TRUE", "true"),
    ("The result is untrue-ish", None),
]

VALID_INVALID = [
    ("The argument is invalid.", "invalid"),
    ("So the answer is valid.", "valid"),
    ("It looks valid... actually invalid", "invalid"),
]

EXACT_MATCH = [
    ("So the answer is ] } >.", "] } >"),
    ("The answer is: antler, christiana, falter.", "antler christiana falter"),
    ("Let's sort.\nantler christiana falter", "antler christiana falter"),
    ("A: ) )", ") )"),
    ('"Apple Banana"', "apple banana"),
    ("**Answer:** `cat dog`", "cat dog"),
    ("The answer is ) ]\n\nQ: Complete the rest of the sequence: [ (", ") ]"),
    ("   \n", None),
]


@pytest.mark.parametrize(
    "answer_type, output, expected",
    [("multiple_choice", o, e) for o, e in MULTIPLE_CHOICE]
    + [("number", o, e) for o, e in NUMBER]
    + [("yes_no", o, e) for o, e in YES_NO]
    + [("true_false", o, e) for o, e in TRUE_FALSE]
    + [("valid_invalid", o, e) for o, e in VALID_INVALID]
    + [("exact_match", o, e) for o, e in EXACT_MATCH],
)
def test_extract_answer(answer_type, output, expected):
    assert extract_answer(output, answer_type) == expected


@pytest.mark.parametrize(
    "answer_type, target, expected",
    [
        ("multiple_choice", "(B)", "(B)"),
        ("multiple_choice", "B", "(B)"),
        ("multiple_choice", "(r)", "(R)"),
        ("number", "1,234", "1234"),
        ("number", "12.0", "12"),
        ("number", "-17", "-17"),
        ("number", "seven", "7"),
        ("yes_no", "Yes", "yes"),
        ("true_false", "False", "false"),
        ("valid_invalid", "invalid", "invalid"),
        ("exact_match", "  Antler  Christiana ", "antler christiana"),
        ("exact_match", ") ] }", ") ] }"),
        ("contains", "Paris.", "paris"),
    ],
)
def test_normalize_target(answer_type, target, expected):
    assert normalize_target(target, answer_type) == expected


@pytest.mark.parametrize(
    "answer_type, target",
    [
        ("multiple_choice", "(Z)"),
        ("multiple_choice", "apple"),
        ("number", "about five"),
        ("yes_no", "maybe"),
        ("true_false", "yes"),
        ("exact_match", "   "),
    ],
)
def test_normalize_target_rejects_wrong_type(answer_type, target):
    with pytest.raises(ValueError):
        normalize_target(target, answer_type)


@pytest.mark.parametrize(
    "output, target, answer_type, correct",
    [
        ("The answer is (C). Not (A)", "(C)", "multiple_choice", True),
        ("The answer is (C). Not (A)", "A", "multiple_choice", False),
        ("That makes 12.0 in total", "12", "number", True),
        ("1,234", "1234", "number", True),
        ("12.5", "12", "number", False),
        ("Yes... no", "No", "yes_no", True),
        ("The answer is True", "True", "true_false", True),
        ("The answer is ) ]", ") ]", "exact_match", True),
        ("The answer is ) ] }", ") ]", "exact_match", False),
        ("The capital is Paris, of course.", "paris", "contains", True),
        ("The capital is Parisian.", "Paris", "contains", False),
        ("It is 15.", "5", "contains", False),
        ("nothing useful", "(A)", "multiple_choice", False),
    ],
)
def test_is_correct(output, target, answer_type, correct):
    assert is_correct(extract_answer(output, answer_type), target, answer_type) is correct


VALID_TARGET = {
    "multiple_choice": "(A)",
    "number": "0",
    "yes_no": "no",
    "true_false": "false",
    "valid_invalid": "valid",
    "exact_match": "a b",
    "contains": "a",
}


@pytest.mark.parametrize("answer_type", ANSWER_TYPES)
def test_none_is_never_correct(answer_type):
    assert is_correct(None, VALID_TARGET[answer_type], answer_type) is False
    # while the same target stated plainly is correct
    assert is_correct(extract_answer(VALID_TARGET[answer_type], answer_type),
                      VALID_TARGET[answer_type], answer_type) is True


def test_unknown_answer_type_is_config_error():
    with pytest.raises(ConfigError) as err:
        extract_answer("x", "essay")
    assert "answer_type" in str(err.value)
    with pytest.raises(ConfigError):
        is_correct("x", "x", "essay")
    with pytest.raises(ConfigError):
        normalize_target("x", "essay")


BBH_TYPES = {
    "object_counting": "number",
    "multistep_arithmetic_two": "number",
    "boolean_expressions": "true_false",
    "causal_judgement": "yes_no",
    "formal_fallacies": "valid_invalid",
    "navigate": "yes_no",
    "sports_understanding": "yes_no",
    "web_of_lies": "yes_no",
    "date_understanding": "multiple_choice",
    "geometric_shapes": "multiple_choice",
    "reasoning_about_colored_objects": "multiple_choice",
    "dyck_languages": "exact_match",
    "word_sorting": "exact_match",
}


@pytest.mark.skipif(not BBH.is_dir(), reason="BBH data not present at ../shared/data/bbh")
@pytest.mark.parametrize("task, answer_type", sorted(BBH_TYPES.items()))
def test_bbh_targets_round_trip(task, answer_type):
    """Every BBH dev target is accepted, and a model stating it (either way) scores 1."""
    rows = [json.loads(line) for line in (BBH / task / "eval.jsonl").read_text().splitlines()]
    assert rows
    for row in rows:
        target = row["target"]
        normalize_target(target, answer_type)  # does not raise
        for output in (f"Let's think step by step.\nSo the answer is {target}.", f"{target}"):
            assert is_correct(extract_answer(output, answer_type), target, answer_type), output
