import pytest

from gpo_core.optimizer.extraction import extract_candidates


@pytest.mark.parametrize("reply,expected,method", [
    ("<INS>Think step by step and check each answer.</INS>", ["Think step by step and check each answer."], "tags"),
    ("Sure!\n<INS> Read the question twice. </INS>\nGood luck", ["Read the question twice."], "tags"),
    ("<START>Solve it carefully.<END>", ["Solve it carefully."], "tags"),
    ("<INS>Work through each clue in order\n\nThat is my answer.", ["Work through each clue in order"], "open_tag"),
    ("Here is an improved version:\nNew instruction: Count every object one at a time.",
     ["Count every object one at a time."], "labelled"),
    ('I suggest "Think about each step before answering." as the prompt.',
     ["Think about each step before answering."], "quoted"),
    ("Sure, here is the new instruction:\nLet's solve this step by step, slowly.",
     ["Let's solve this step by step, slowly."], "first_line"),
])
def test_extraction_rules(reply, expected, method):
    ext = extract_candidates(reply)
    assert ext.candidates == expected
    assert ext.method == method


def test_two_tagged_spans_give_two_candidates():
    ext = extract_candidates("<INS>Think step by step.</INS> or <INS>Answer with care.</INS>")
    assert ext.candidates == ["Think step by step.", "Answer with care."]


@pytest.mark.parametrize("reply,reason", [("", "empty"), ("   \n ", "empty"), ("<INS></INS>", "no usable"),
                                          ("Ok.", "no usable")])
def test_unusable_replies_give_no_candidate_and_a_reason(reply, reason):
    ext = extract_candidates(reply)
    assert ext.candidates == [] and ext.method == "none" and reason in ext.reason


def test_placeholder_is_stripped_from_candidates():
    ext = extract_candidates("<INS>Q: <Prompt> Think step by step.</INS>")
    assert "<Prompt>" not in ext.candidates[0]


def test_echoed_scaffolding_is_not_a_candidate():
    ext = extract_candidates("A:\nCorrect answer: Yes\nQ: Is 4 even?\nThink about parity first.")
    assert ext.candidates == ["Think about parity first."]
    assert extract_candidates("Correct answer: No").candidates == []
