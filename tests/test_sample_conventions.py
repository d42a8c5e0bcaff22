"""The sample tasks whose gold answers follow a convention only a good instruction conveys
(issue 14): the convention holds on every example, the starting instruction does not state it,
the hand-written ideal instruction does, and the gold is right."""

from __future__ import annotations

import datetime as dt
import importlib.util
import re
from pathlib import Path

import pytest

from gpo_core.scoring.answers import extract_answer
from gpo_core.tasks.io import load_task

SAMPLES = Path(__file__).resolve().parents[1] / "sample_tasks"
CONVENTIONS = {
    "review_sentiment": re.compile(r"^(pos|neg)$"),
    "date_normalization": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "ticket_triage": re.compile(r"^(BILL|ACCT|BUG|HOW)$"),
}
#: What each convention looks like, which a vague instruction must not already say.
STATED = {"review_sentiment": ("pos", "neg"), "date_normalization": ("YYYY", "ISO"),
          "ticket_triage": ("BILL", "ACCT", "BUG", "HOW")}


def _generator():
    spec = importlib.util.spec_from_file_location("sample_generate", SAMPLES / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(CONVENTIONS))
def test_every_gold_answer_follows_the_convention_and_labels_are_balanced(name):
    task = load_task(SAMPLES / name)
    targets = [e.target for e in task.examples]
    assert all(CONVENTIONS[name].match(t) for t in targets)
    if name != "date_normalization":
        counts = {t: targets.count(t) for t in set(targets)}
        assert max(counts.values()) - min(counts.values()) <= 1, counts
    assert task.answer_type == "exact_match"


@pytest.mark.parametrize("name", sorted(CONVENTIONS))
def test_the_start_is_vague_and_the_ideal_instruction_states_the_convention(name):
    gen = _generator()
    task = load_task(SAMPLES / name)
    assert task.initial_instruction == gen.INSTRUCTIONS[name] and len(task.initial_instruction.split()) <= 4
    assert not any(word in task.initial_instruction for word in STATED[name])
    assert any(word in gen.IDEAL_INSTRUCTIONS[name] for word in STATED[name])
    # the convention is in no input: only an instruction can tell it
    for e in task.examples:
        assert e.target not in e.input


def test_date_gold_is_the_date_the_sentence_names():
    """Parsed back with datetime.strptime (an independent reading of the six spoken formats)."""
    formats = ("%B %d, %Y", "%d %B %Y", "%d %B, %Y", "%b. %d, %Y", "%B %d %Y")
    for e in load_task(SAMPLES / "date_normalization").examples:
        said = re.sub(r" at \d+ [ap]m\.$|\.$", "", e.input.rsplit(" on ", 1)[1])
        weekday = None
        if said.split(",")[0] in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"):
            weekday, said = said.split(", ", 1)
        said = re.sub(r"^the (\d+)(?:st|nd|rd|th) of", r"\1", said)
        said = re.sub(r"(\d+)(?:st|nd|rd|th)\b", r"\1", said)
        parsed = []
        for f in formats:
            try:
                parsed.append(dt.datetime.strptime(said, f).date())
            except ValueError:
                pass
        assert parsed, e.input
        assert e.target == parsed[0].isoformat(), e.input
        if weekday:
            assert parsed[0].strftime("%A") == weekday, e.input


def test_ticket_and_review_gold_follow_the_phrases_they_were_built_from():
    gen = _generator()
    for e in load_task(SAMPLES / "ticket_triage").examples:
        bodies = [b.split("{")[0][1:40] for b in gen._TICKETS[e.target]]
        assert any(b.lower() in e.input.lower() for b in bodies), e
    for e in load_task(SAMPLES / "review_sentiment").examples:
        closings = gen._CLOSINGS[e.target]
        assert e.input.endswith(tuple(closings)), e


def test_a_convention_answer_scores_only_in_the_convention():
    """"Positive" is wrong where the gold is pos: the task model must be told the vocabulary."""
    assert extract_answer("pos", "exact_match") == "pos"
    assert extract_answer("Positive", "exact_match") != "pos"
    assert extract_answer("March 5, 2021", "exact_match") != "2021-03-05"
