"""GPO as its reference code does it (RUCAIBox/GPO), checked on scripted models: the update
direction over the chosen path, the GPO meta-prompt's answer tags and extraction, exemplars
drawn once per run, and the schedule length from the data."""

from __future__ import annotations

import re

import pytest

from gpo_core.models.base import ChatRequest
from gpo_core.optimizer.extraction import extract_for_layout
from gpo_core.optimizer.session import GPOSession, Models
from gpo_core.settings import OptimizerSettings, steps_per_epoch
from gpo_testkit.embedders import HashingEmbedder
from gpo_testkit.scripted import ScriptedChatModel

from engine_fakes import parity_splits, parity_task, run_settings, task_answer

_CURRENT = re.compile(r"The prompt in use now:\n(.*)")


def gpo_optimizer(req: ChatRequest) -> str:
    """Answers a GPO meta-prompt in its tags: the current prompt plus a clause that depends
    on the sample index, so every candidate is new and scores differ."""
    text = req.messages[-1][1]
    current = _CURRENT.search(text).group(1)  # type: ignore[union-attr]
    extra = ["Check carefully.", "Be brief.", "Answer yes or no.", "Think twice."][req.sample_index % 4]
    return f"Here you go.\n<START>{current} {extra} (v{req.sample_index})<END>"


def gpo_session(**cfg) -> tuple[GPOSession, ScriptedChatModel]:
    opt = ScriptedChatModel(gpo_optimizer, name="opt")
    models = Models(ScriptedChatModel(task_answer, name="task"), opt, HashingEmbedder())
    settings = run_settings(steps=4, candidates=3, k=3, layout="gpo", **cfg)
    return GPOSession.create(parity_task(), settings, models, splits=parity_splits()), opt


def test_after_three_steps_the_direction_is_the_reference_rule_on_the_chosen_path():
    s, _ = gpo_session()
    s.start()
    s.run_auto(3)
    step = s.propose()
    chosen = [e for e in s.state.trajectory if e.chosen]
    assert len(chosen) == 4 and len(s.state.trajectory) > 4        # siblings were scored too
    # reference (relavance_selection.py on old_instructions_and_scores_eval): the newest
    # chosen prompt, then the k-1 other chosen prompts most similar to it, most similar first
    newest = chosen[-1]
    vecs = HashingEmbedder().embed([newest.prompt] + [e.prompt for e in chosen[:-1]])
    sims = vecs[1:] @ vecs[0]
    order = sorted(range(len(chosen) - 1), key=lambda i: -sims[i])[:2]
    expected = [newest.prompt] + [chosen[i].prompt for i in order]
    assert [r.prompt for r in step.retrieved] == expected
    meta = step.meta_prompt
    assert [meta.index(f"Prompt: {p}\n") for p in expected] == sorted(meta.index(f"Prompt: {p}\n") for p in expected)


def test_gpo_replies_are_read_between_start_and_end_one_candidate_each():
    s, _ = gpo_session()
    s.start()
    step = s.propose()
    assert "<START>" in step.meta_prompt and "<END>" in step.meta_prompt
    assert all(c.extraction == "tags" for c in step.optimizer_calls)
    assert [c.text for c in step.candidates] == [f"Let's think step by step. {x} (v{i})" for i, x in
                                                 enumerate(["Check carefully.", "Be brief.", "Answer yes or no."])]


@pytest.mark.parametrize("reply,method,why", [
    ("Answer yes or no, then stop.", "whole_reply", None),                      # reference: the whole reply
    ("<START>A: Correct answer: (C)<END>", "refused", "field label 'A:'"),       # echoed scaffolding
    ("**Q: Is 4 even?", "refused", "field label 'Q:'"),
    ("Current instruction: Solve it.", "refused", "field label 'Current instruction:'"),
    ("Think it over and </INS.", "refused", "broken tag"),
    ("Later prompts: Early prompts: Output: <Str2> Output: (B)", "refused", "field label 'Output:'"),
    ("Read the text: then answer yes or no.", "whole_reply", None),
    ("<START>Decide whether the number is even or odd and answer<END>", "refused", "exemplar"),
])
def test_gpo_extraction_falls_back_to_the_whole_reply_and_refuses_echoes(reply, method, why):
    ext = extract_for_layout(reply, "gpo", exemplars=["Decide whether the number is even or odd and answer it now"])
    assert ext.method == method
    if why is None:
        assert ext.candidates == [reply] and ext.reason is None
    else:
        assert ext.candidates == [] and why in ext.reason


def test_a_reply_with_many_tagged_spans_gives_one_candidate_and_says_so():
    reply = "".join(f"<START>Instruction number {i} here.<END>" for i in range(100))
    ext = extract_for_layout(reply, "gpo")
    assert ext.candidates == ["Instruction number 0 here."] and "99 more tagged span(s) dropped" in ext.reason


def test_an_echo_is_recorded_on_its_optimizer_call_and_never_scored():
    s, _ = gpo_session()
    s.models.optimizer = ScriptedChatModel(["<START>Q: Is 4 even?<END>", "<START>Answer with care.<END>"], name="o")
    s.start()
    step = s.propose()
    refused = [c for c in step.optimizer_calls if c.extraction == "refused"]
    assert refused and all("field label 'Q:'" in (c.reason or "") for c in refused)
    assert {c.text for c in step.candidates} == {"Answer with care."}


def test_exemplars_are_drawn_once_per_run_unless_redrawn_per_step():
    once, _ = gpo_session()
    once.start()
    once.run_auto(2)
    assert once.state.steps[0].exemplars == once.state.steps[1].exemplars
    redrawn, _ = gpo_session(exemplar_draw="per_step")
    redrawn.start()
    redrawn.run_auto(2)
    assert redrawn.state.steps[0].exemplars != redrawn.state.steps[1].exemplars


@pytest.mark.parametrize("n_train,steps", [(48, 18), (20, 9), (8, 3), (3, 3)])
def test_epochs_give_the_reference_number_of_steps(n_train, steps):
    # optimize.py: steps per epoch = n // batch, plus one when the rest is at least half a batch
    assert OptimizerSettings(epochs=3, batch_size=8).for_train_size(n_train).steps == steps
    assert 3 * steps_per_epoch(n_train, 8) == steps


def test_a_run_with_epochs_takes_its_length_from_the_train_split():
    s, _ = gpo_session(epochs=2, batch_size=8)
    assert len(parity_splits().train) == 20 and s.config.steps == 2 * 3
    assert len(s.budgets()) == 6


def test_the_reference_protocol_asks_twice_and_parses_the_second_reply():
    from gpo_core.scoring.evaluation import evaluate_many
    from gpo_core.tasks.task import Example

    def task(req: ChatRequest) -> str:
        if len(req.messages) == 1:                 # first turn: reasoning that ends on the wrong word
            return "Seven is odd, so the answer is not yes... or is it? yes"
        return "No"                                # second turn: the final answer alone

    model = ScriptedChatModel(task, name="task")
    ex = [Example("Is 7 even?", "no"), Example("Is 9 even?", "no")]
    ref = evaluate_many(["Think."], ex, model, answer_type="yes_no", position="Q_end", protocol="reference")[0]
    assert model.call_count == 4 and ref.accuracy == 1.0
    first = next(c for c in model.calls if c.messages[0][1].startswith("Is 7"))
    second = next(c for c in model.calls if len(c.messages) == 3 and c.messages[0] == first.messages[0])
    assert first.messages == (("user", "Is 7 even?\nThink."),)           # no Q:/A: labels, as the reference
    assert second.messages[:2] == (first.messages[0], ("assistant", task(first)))
    assert second.messages[2][1] == 'Give your answer directly, using only "Yes" or "No".'
    assert second.max_tokens == 100
    rec = ref.records[0]
    assert rec.protocol == "reference" and rec.second_output == "No" and rec.parsed_answer == "no"
    assert rec.second_prompt == second.messages[2][1]

    single_model = ScriptedChatModel(task, name="task")
    one = evaluate_many(["Think."], ex, single_model, answer_type="yes_no", position="Q_end", protocol="single")[0]
    assert single_model.call_count == 2 and one.accuracy == 0.0 and one.records[0].second_output is None
    assert single_model.calls[0].messages[0][1].startswith("Q: Is 7 even?")


def test_auto_protocol_is_the_reference_for_task_folders_and_single_for_uploads():
    from gpo_core.optimizer.scorer import resolved_protocol

    s, _ = gpo_session(protocol="auto")
    assert s.config.protocol == "single"                     # parity_task is an upload-like example list
    assert resolved_protocol("auto", task_has_splits=True) == "reference"
    assert resolved_protocol("single", task_has_splits=True) == "single"


def test_multiple_choice_re_prompt_names_the_last_option_of_the_question():
    from gpo_core.scoring.reprompt import second_turn

    q = "Which is red?\nOptions:\n(A) sky\n(B) grass\n(C) blood"
    assert second_turn("multiple_choice", q) == "So, sum up your answer as one option among (A) and (C)."
