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


# Issue 15: a reply with 100 tagged spans gives at most the candidates a step allows ---------
MANY = "\n".join(f"<INS>Answer the question with care, way {i}.</INS>" for i in range(100))


@pytest.mark.parametrize("layout", ["short", "opro", "gpo"])
def test_a_reply_with_100_tagged_spans_gives_at_most_the_limit(layout):
    from gpo_core.optimizer.extraction import extract_for_layout

    reply = MANY if layout != "gpo" else MANY.replace("<INS>", "<START>").replace("</INS>", "<END>")
    ext = extract_for_layout(reply, layout, limit=2)
    assert 1 <= len(ext.candidates) <= 2
    if layout != "gpo":   # the graceful rules keep every span: the limit drops the rest, out loud
        assert ext.candidates == ["Answer the question with care, way 0.", "Answer the question with care, way 1."]
        assert ext.dropped == 98 and "98 more candidate(s) in the reply dropped: at most 2 a step" in ext.reason
    else:                 # the GPO layout keeps the first span, as the reference code
        assert ext.candidates == ["Answer the question with care, way 0."] and "99 more tagged span(s)" in ext.reason


def test_cap_candidates_takes_one_per_reply_first():
    from gpo_core.optimizer.proposer import cap_candidates

    found = [["a1", "a2", "a3"], [], ["c1", "c2"], ["d1"]]
    assert cap_candidates(found, 2) == [["a1"], [], ["c1"], []]
    assert cap_candidates(found, 4) == [["a1", "a2"], [], ["c1"], ["d1"]]
    assert cap_candidates(found, 10) == found


def test_wording_every_exemplar_shares_is_the_tasks_not_a_copy_of_one_example():
    """Measured on BBH navigate (benchmarks/results/embedded_optimizer.md): 4 of the 6 refusals
    were the task's own question, which every example asks; copying one example's content is
    still refused."""
    from gpo_core.optimizer.extraction import echo_refusal

    question = "If you follow these instructions, do you return to the starting point?"
    exemplars = [f"{question} Take 10 steps. Take 9 steps. Turn right. Take 5 steps.", "No",
                 f"{question} Always face forward. Take 3 steps left. Take 3 steps right.", "Yes"]
    assert echo_refusal(f"Answer Yes or No. {question}", exemplars=exemplars) is None
    leak = "Answer the question. Take 10 steps. Take 9 steps. Turn right. Take 5 steps."
    assert "copies more than 7 words in a row of an exemplar" in (echo_refusal(leak, exemplars=exemplars) or "")
    # one exemplar alone: nothing is shared, so its question counts as its content
    assert echo_refusal(f"Answer Yes or No. {question}", exemplars=exemplars[:2]) is not None
