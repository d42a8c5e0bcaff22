"""Issue 11 in the app: every accuracy with its 95% interval, the paired comparison on every
candidate card with the per-example regression view, the accept-anyway question before a hand
accept the numbers do not support, and the decision policy chosen, recorded and shown.

The runs use the scripted demo task model (arithmetic; more keywords in the prompt, more right
answers) and either the "worse" demo optimizer (its first candidate of every step drops every
keyword, so it breaks dev examples the start got right) or a scripted optimizer reply.
"""

from __future__ import annotations

import json
import re

import pytest

from gpo_core.models.demo import DEMO_WORSE_INSTRUCTION, HashingEmbedder, demo_chat_model, demo_models
from gpo_core.optimizer.session import Models
from gpo_core.stats import mcnemar_exact, paired_counts, wilson_interval
from gpo_core.studio.studio import Studio
from gpo_testkit.scripted import ScriptedChatModel

from app_support import TIMEOUT, app_for, chart_traces, click, load_arithmetic, no_exception, texts

#: A value with its interval, as every accuracy in the app reads: "62.5% [41–79%]".
WITH_INTERVAL = re.compile(r"^\d{1,3}\.\d% \[\d{1,3}–\d{1,3}%\]$")
#: Every keyword the demo task model rewards: with it, nearly every answer is right.
STRONG = "Check each step carefully, verify the arithmetic and give the final answer as a number."


def _quick(studio: Studio) -> Studio:
    """Each click waits for its job (instant scripted models) before the page is drawn, so the
    page drawn after a click shows the job's outcome with no button still disabled (a job
    ending while the page is drawn would otherwise leave the two out of step)."""
    studio.actions.quick_wait_s = TIMEOUT
    return studio


def _studio(tmp_path, optimizer=None, *, start: str | None = None, dev: int = 6, test: int = 6) -> Studio:
    """A Studio on the demo task model and ``optimizer`` (default: the "worse" demo optimizer),
    the 24-question arithmetic task loaded and split as given, starting from ``start``."""
    base = demo_models()
    opt = optimizer if optimizer is not None else demo_chat_model("scripted-optimizer-worse", 0.0)
    studio = _quick(Studio(runs_root=tmp_path / "runs", models_override=Models(base.task, opt, HashingEmbedder())))
    load_arithmetic(studio, 24, dev, test)
    if start is not None:
        task = studio.tasks.task
        assert task is not None
        studio.tasks.update_task(answer_type=task.answer_type, instruction_position=task.instruction_position,
                                 initial_instruction=start)
    return studio


def _stepped(studio: Studio, **optimizer):
    """The Optimize page after "Create the run" and "Next step" (3 steps of 2 candidates)."""
    studio.draft.update_optimizer(**({"steps": 3, "candidates": 2} | optimizer))
    at = app_for(studio, "pages/optimize.py")
    click(at, "new_run")
    click(at, "next_step")
    no_exception(at)
    return at


def _metrics(at) -> dict[str, str]:
    """The page's metrics as a user reads them: the value with its caption, the 95% interval
    written "[41–79%]" ("83.3%" captioned "95% interval 44–97%" -> "83.3% [44–97%]")."""
    out = {}
    for m in at.metric:
        d = str(m.delta or "")
        out[m.label] = m.value + (f" [{d.removeprefix('95% interval ')}]" if d.startswith("95% interval ")
                                  else f" ({d})" if d else "")
    return out


def _card_markdown(at, cand_id: str) -> str:
    """The card's text (markdown, unescaped) of candidate ``cand_id``."""
    found = [t for t in texts(at.markdown) if t.startswith(f"**{cand_id}**")]
    assert found, texts(at.markdown)
    return found[0]


def _questions(at) -> list[str]:
    return [t for t in texts(at.warning) if t.endswith("Accept anyway?")]


def test_the_optimize_page_shows_every_accuracy_with_its_interval_and_says_what_it_means(tmp_path):
    studio = _studio(tmp_path)
    at = _stepped(studio)
    state = studio.runs.session.state
    metrics = _metrics(at)
    for label in ("Starting prompt (dev)", "Current prompt (dev)", "Best so far (dev)"):
        assert WITH_INTERVAL.match(metrics[label]), metrics
    k = round(state.initial["dev_accuracy"] * 6)
    lo, hi = wilson_interval(k, 6)
    start = f"{100 * k / 6:.1f}% [{100 * lo:.0f}–{100 * hi:.0f}%]"
    assert metrics["Starting prompt (dev)"] == start
    # the one line for first-time users, on the numbers of this run
    assert f"{start} on 6 dev examples: the true accuracy is probably in this range (95% Wilson interval); " \
           "differences inside it may be luck." in texts(at.caption)
    # each card: dev accuracy with its interval and sample size
    for cand in state.pending_step.candidates:
        assert cand.dev_correct is not None
        c_lo, c_hi = wilson_interval(cand.dev_correct, 6)
        assert (f"dev accuracy {100 * cand.dev_accuracy:.1f}% [{100 * c_lo:.0f}–{100 * c_hi:.0f}%] on 6 dev examples"
                in _card_markdown(at, cand.id))
    # the table of candidates: the interval next to the accuracy
    at.session_state["candidates_box"] = True
    at.run()
    table = next(d.value for d in at.dataframe if "95% interval" in d.value.columns)
    assert all(re.match(r"^\d+–\d+%$", band) for band in table["95% interval"])


def test_each_card_shows_newly_fixed_newly_broken_and_the_mcnemar_p(tmp_path):
    studio = _studio(tmp_path)
    at = _stepped(studio)
    session = studio.runs.session
    step = session.state.pending_step
    worse = next(c for c in step.candidates if c.text == DEMO_WORSE_INSTRUCTION)
    # counted here from the kept per-example records, independently of the engine's fields
    fixed, broken, both = paired_counts(session.records("initial"), session.records(worse.id))
    assert (fixed, broken, both) == (0, 2, 6)
    card = _card_markdown(at, worse.id)
    assert (f"vs the current prompt on the same dev examples: fixes 0, breaks 2 · McNemar p = "
            f"{mcnemar_exact(0, 2):.2f} · not distinguishable at alpha = 0.05") in card
    assert ":orange[" in card  # breaks more than it fixes: not shown in neutral gray


def test_the_regression_view_lists_fixed_and_broken_examples_with_both_answers(tmp_path):
    studio = _studio(tmp_path)
    at = _stepped(studio)
    session = studio.runs.session
    worse = next(c for c in session.state.pending_step.candidates if c.text == DEMO_WORSE_INSTRUCTION)
    at.session_state[f"regress_{worse.id}"] = True  # open its lazy expander, as a click would
    at.run()
    frame = next(d.value for d in at.dataframe if "candidate's answer" in d.value.columns)
    assert list(frame["change"]) == ["broken", "broken"]
    start = {r["input"]: r for r in session.records("initial")}
    mine = {r["input"]: r for r in session.records(worse.id)}
    for row in frame.to_dict("records"):
        before, after = start[row["input"]], mine[row["input"]]
        assert before["correct"] and not after["correct"]
        assert row["current prompt's answer"] == str(before["parsed_answer"]) == row["target"]
        assert row["candidate's answer"] == str(after["parsed_answer"]) != row["target"]


def test_accepting_a_worse_candidate_asks_once_and_cancel_keeps_the_step_open(tmp_path):
    studio = _studio(tmp_path)
    at = _stepped(studio)
    session = studio.runs.session
    step = session.state.pending_step
    worse = next(c for c in step.candidates if c.text == DEMO_WORSE_INSTRUCTION)
    start = 100 * session.state.initial["dev_accuracy"]
    click(at, f"accept_{worse.id}")
    assert _questions(at) == [f"{worse.id} scores lower than the current prompt on dev "
                              f"({100 * worse.dev_accuracy:.1f}% vs {start:.1f}%): it gets 2 examples wrong that the "
                              "current prompt got right, and fixes 0. Accept anyway?"]
    assert session.state.pending_step is step  # nothing accepted yet
    click(at, "confirm_no")
    assert _questions(at) == [] and session.state.pending_step is step
    click(at, f"accept_{worse.id}")
    assert len(_questions(at)) == 1
    click(at, "confirm_yes")
    no_exception(at)
    assert step.decision is not None and step.decision.candidate_id == worse.id
    assert session.state.current_prompt == DEMO_WORSE_INSTRUCTION
    assert _questions(at) == []  # asked once: no second question after "Accept anyway"
    saved = json.loads((session.run_dir / "run.json").read_text(encoding="utf-8"))
    assert saved["current_prompt"] == DEMO_WORSE_INSTRUCTION


def test_accept_best_asks_when_the_policys_choice_is_not_distinguishable(tmp_path):
    studio = _studio(tmp_path)
    at = _stepped(studio)
    step = studio.runs.session.state.pending_step
    best = studio.runs.session.best_candidate()
    assert best is not None and best.text != DEMO_WORSE_INSTRUCTION and best.p_value is not None
    click(at, "accept_best")
    (question,) = _questions(at)
    assert question.startswith(f"{best.id} is not distinguishable from the current prompt on dev")
    assert f"fixes {best.fixed} and breaks {best.broken} of the dev examples (McNemar p = 1, not below " \
           "alpha = 0.05), so the difference may be luck." in question
    assert step.pending
    click(at, "confirm_yes")
    assert step.decision is not None and step.decision.candidate_id == best.id


def test_a_significantly_better_candidate_is_accepted_without_a_question(tmp_path):
    optimizer = ScriptedChatModel(lambda r: f"<START>{STRONG}<END>", name="scripted-optimizer")
    studio = _studio(tmp_path, optimizer, start=DEMO_WORSE_INSTRUCTION, dev=12)
    at = _stepped(studio, candidates=1)
    step = studio.runs.session.state.pending_step
    (cand,) = step.candidates
    assert cand.fixed is not None and cand.broken == 0 and cand.p_value is not None and cand.p_value < 0.05
    assert "significantly better at alpha = 0.05" in _card_markdown(at, cand.id)
    assert ":green[" in _card_markdown(at, cand.id)
    click(at, f"accept_{cand.id}")
    assert _questions(at) == []
    assert step.decision is not None and step.decision.candidate_id == cand.id


@pytest.mark.parametrize("policy", ["paper", "better", "significant"])
def test_the_policy_chosen_on_the_setup_is_recorded_and_shown(tmp_path, policy):
    studio = _studio(tmp_path)
    studio.draft.update_optimizer(steps=2, candidates=2)
    at = app_for(studio, "pages/optimize.py")
    at.selectbox(key="cfg_policy").set_value(policy).run()
    if policy == "significant":
        at.number_input(key="cfg_alpha").set_value(0.1).run()
    click(at, "new_run")
    no_exception(at)
    session = studio.runs.session
    saved = json.loads((session.run_dir / "run.json").read_text(encoding="utf-8"))
    assert saved["settings"]["optimizer"]["policy"] == policy
    shown = "Decision policy: " + {
        "paper": "paper: best candidate not chosen before",
        "better": "better: only if better than the current prompt (ours)",
        "significant": "significant: only if significantly better, McNemar p < alpha (ours), alpha = 0.1"}[policy]
    assert any(shown in t for t in texts(at.caption)), texts(at.caption)
    at.switch_page("pages/results.py").run()
    assert any(shown in t for t in texts(at.caption))


def test_automatic_steps_use_the_policy_and_say_why_the_prompt_stayed(tmp_path):
    studio = _studio(tmp_path)
    studio.draft.update_optimizer(steps=2, candidates=2, policy="significant")
    at = app_for(studio, "pages/optimize.py")
    click(at, "new_run")
    at.number_input(key="auto_n").set_value(1)
    click(at, "run_auto")
    no_exception(at)
    step = studio.runs.session.state.steps[-1]
    assert step.decision is not None and step.decision.kind == "no_candidate"
    assert studio.runs.session.state.current_prompt == "Let's think step by step."
    shown = texts(at.success)
    assert any(t.startswith("Step 1: no usable candidate: no candidate is significantly better than the current "
                            "prompt") for t in shown), shown


def test_the_results_page_shows_intervals_on_metrics_bands_tables_and_comparisons(tmp_path):
    studio = _studio(tmp_path)
    studio.draft.update_optimizer(steps=2, candidates=2)
    studio.runs.create()
    studio.actions.start()
    studio.actions.run_auto(2)
    at = app_for(studio, "pages/results.py")
    no_exception(at)
    state = studio.runs.session.state
    metrics = _metrics(at)
    assert all(WITH_INTERVAL.match(v) for v in metrics.values()), metrics
    assert any("the true accuracy is probably in this range" in t for t in texts(at.caption))
    # the accuracy curves: each chosen-prompt line inside its shaded 95% band
    acc = chart_traces(at.get("plotly_chart")[0])
    for split in ("dev", "test"):
        line = acc[f"chosen prompt ({split})"]["y"]
        low = acc[f"chosen prompt ({split}): 95% interval"]["y"]
        high = acc[f"chosen prompt ({split}): 95% interval (upper)"]["y"]
        assert acc[f"chosen prompt ({split}): 95% interval"]["fill"] == "tonexty"
        assert len(line) == len(low) == len(high) == 3
        assert all(lo <= y <= hi for lo, y, hi in zip(low, line, high))
        assert any(hi - lo > 20 for lo, hi in zip(low, high))  # 6 examples: wide bands
    # the steps table: intervals and the paired comparison of each chosen prompt
    steps = next(d.value for d in at.dataframe if "dev 95% interval" in d.value.columns)
    assert {"test 95% interval", "fixed", "broken", "McNemar p"} <= set(steps.columns)
    assert all(re.match(r"^\d+–\d+%$", b) for b in steps["dev 95% interval"])
    # per-example results: the accuracy with its interval; A vs B: paired counts and p
    assert any(re.match(r"^Accuracy on dev: \d+\.\d% \[\d+–\d+%\] on 6 dev examples$", t) for t in texts(at.caption))
    chosen = state.steps[0].decision.candidate_id if state.steps[0].decision else None
    assert chosen is not None
    at.selectbox(key="cmp_a").set_value("initial")
    at.selectbox(key="cmp_b").set_value(chosen).run()
    fixed, broken, both = paired_counts(studio.runs.records("initial"), studio.runs.records(chosen))
    assert any(t.startswith(f"On the {both} dev examples both answered, B fixes {fixed} that A got wrong and breaks "
                            f"{broken} that A got right (McNemar p = ") for t in texts(at.caption))
    # saved runs: the best dev accuracy with its interval
    runs = next(d.value for d in at.dataframe if "last saved" in d.value.columns)
    assert all(WITH_INTERVAL.match(v) for v in runs["best dev"]), list(runs["best dev"])


# ----------------------------------------------------------------------------- cost


def test_the_estimate_is_shown_before_the_run_is_created(tmp_path):
    from gpo_core.costs.estimate import estimate_run

    studio = _studio(tmp_path)
    studio.draft.update_optimizer(steps=3, candidates=2)
    at = app_for(studio, "pages/optimize.py")
    no_exception(at)
    assert studio.runs.session is None and at.button(key="new_run").label.startswith("Create the run")
    expected = estimate_run(studio.draft.settings, studio.tasks.task, splits=studio.tasks.splits())
    metrics = _metrics(at)
    assert metrics["Model calls (at most)"] == f"{expected.calls:,}"
    assert metrics["Tokens (prompt + completion)"] == f"{expected.prompt_tokens:,} + {expected.completion_tokens:,}"
    assert metrics["Cost"] == "$0"  # the demo models have no per-token price
    caption = next(t for t in texts(at.caption) if t.startswith("For 3 steps x 2 candidates"))
    assert re.search(r"as of \d{4}-\d{2}-\d{2}", caption), caption  # the price table's date
    assert "a dated default, not a quote" in caption
    # a setting changed: the estimate follows it
    at.number_input(key="cfg_candidates").set_value(4).run()
    assert _metrics(at)["Model calls (at most)"] != f"{expected.calls:,}"


def _spend_after(tmp_path, n_steps: int) -> int:
    """Tokens a run of the worse demo optimizer (3 steps x 2 candidates, dev 6) has spent
    after its start and ``n_steps`` automatic steps (the demo models count whitespace words)."""
    studio = _studio(tmp_path / f"probe{n_steps}")
    studio.draft.update_optimizer(steps=3, candidates=2)
    studio.runs.create()
    studio.actions.run_auto(n_steps)
    return studio.runs.session.spend().tokens


def test_a_token_cap_stops_the_run_keeping_its_steps_and_a_raised_cap_resumes_it(tmp_path):
    one, two = _spend_after(tmp_path, 1), _spend_after(tmp_path, 2)
    cap = (one + two) // 2  # reached during step 2
    studio = _studio(tmp_path)
    studio.draft.update_optimizer(steps=3, candidates=2, max_spend_tokens=cap)
    at = app_for(studio, "pages/optimize.py")
    click(at, "new_run")
    at.number_input(key="auto_n").set_value(3)
    click(at, "run_auto")
    session = studio.runs.session
    assert len(session.state.decided_steps) == 1 and session.state.pending_step is None
    assert session.state.stop_reason and session.state.stop_reason.startswith("spend cap reached")
    shown = texts(at.info) + texts(at.warning)
    assert any(t.startswith(f"Stopped: {session.state.stop_reason}. Every finished step is kept: 1 of 3 steps done")
               for t in shown), shown
    assert any(t.startswith("Spend cap reached") and "raise the cap below" in t for t in texts(at.warning))
    spend = session.spend()
    meter = next(p for p in at.get("progress") if "Spent:" in unescape_text(p.proto.text))
    assert f"{spend.tokens:,} tokens" in unescape_text(meter.proto.text) and f"cap {cap:,} tokens" in \
           unescape_text(meter.proto.text)
    # raise the cap (0 = none) on this run: recorded in its settings, and the run goes on
    at.number_input(key="run_max_tokens").set_value(0)
    click(at, "apply_caps")
    assert session.settings.optimizer.max_spend_tokens is None
    saved = json.loads((session.run_dir / "run.json").read_text(encoding="utf-8"))
    assert saved["settings"]["optimizer"]["max_spend_tokens"] is None
    at.number_input(key="auto_n").set_value(2)
    click(at, "run_auto")
    assert len(session.state.decided_steps) == 3 and session.state.stop_reason is None


def unescape_text(s: str) -> str:
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", s)


def test_racing_shows_the_calls_it_saved_and_the_raced_out_candidate(tmp_path):
    studio = _studio(tmp_path, dev=12)
    at = _stepped(studio, racing=True)
    step = studio.runs.session.state.pending_step
    raced = [c for c in step.candidates if c.status == "raced_out"]
    assert raced and step.calls_saved > 0
    assert f"Racing is on: it saved {step.calls_saved:,} task-model calls so far." in texts(at.caption)
    card = _card_markdown(at, raced[0].id)
    assert f"raced out after {raced[0].raced_out_after} dev examples" in card
    assert f"Racing: {raced[0].race_note}" in card


# ----------------------------------------------------------------------------- overfitting guard


def test_a_blind_test_hides_every_test_number_until_revealed(tmp_path):
    studio = _studio(tmp_path)
    studio.draft.update_optimizer(steps=2, candidates=2, blind_test=True)
    at = app_for(studio, "pages/optimize.py")
    click(at, "new_run")
    assert any(t.startswith("Starting prompt scored: dev ") and t.endswith(", test hidden (blind test).")
               for t in texts(at.success))
    at.number_input(key="auto_n").set_value(2)
    click(at, "run_auto")
    assert not any(re.search(r"test \d", t) for t in texts(at.success) + texts(at.text) + texts(at.markdown))
    at.switch_page("pages/results.py").run()
    no_exception(at)
    metrics = _metrics(at)
    assert metrics["Starting prompt (test)"] == metrics["Final prompt (test)"] == "hidden (blind test)"
    acc = chart_traces(at.get("plotly_chart")[0])
    assert not any("test" in name for name in acc)
    steps = next(d.value for d in at.dataframe if "test accuracy" in d.value.columns)
    assert bool(steps["test accuracy"].isna().all()) and set(steps["test 95% interval"]) == {""}
    assert at.radio(key="records_split").options == ["dev"]
    click(at, "reveal_test")
    state = studio.runs.session.state
    assert state.test_revealed is not None and state.test_revealed["by"] == "user"
    metrics = _metrics(at)
    assert WITH_INTERVAL.match(metrics["Starting prompt (test)"]), metrics
    assert "chosen prompt (test)" in chart_traces(at.get("plotly_chart")[0])
    assert at.radio(key="records_split").options == ["dev", "test"]


def test_the_dev_test_gap_is_plotted_with_its_interval_and_warns_when_it_opens(tmp_path):
    """A task model that answers right only on dev examples with the "magic" prompt: the chosen
    prompt climbs on dev and not on test, so the gap opens."""
    probe = _studio(tmp_path / "probe")
    dev_inputs = {e.input for e in probe.tasks.splits().dev}

    def task_reply(request) -> str:
        text = "\n".join(c for _, c in request.messages)
        m = re.search(r"What is (\d+) \+ (\d+)\?", text)
        if m is None:
            return "I am not sure."
        right = int(m.group(1)) + int(m.group(2))
        return f"The answer is {right if 'magic' in text and m.group(0) in dev_inputs else right + 1}."

    optimizer = ScriptedChatModel(lambda r: "<START>Use the magic words.<END>", name="scripted-optimizer")
    base = demo_models()
    studio = _quick(Studio(runs_root=tmp_path / "runs", models_override=Models(
        ScriptedChatModel(task_reply, name="scripted-task"), optimizer, HashingEmbedder())))
    load_arithmetic(studio, 24, 6, 6)
    del base
    studio.draft.update_optimizer(steps=1, candidates=1)
    studio.runs.create()
    studio.actions.run_auto(1)
    at = app_for(studio, "pages/results.py")
    no_exception(at)
    gap = chart_traces(at.get("plotly_chart")[2])
    line, low, high = (gap["dev − test gap"]["y"], gap["gap: 95% interval"]["y"],
                       gap["gap: 95% interval (upper)"]["y"])
    assert line == pytest.approx([0.0, 100.0]) and low[1] > 0 and high[1] <= 100 and low[0] < 0 < high[0]
    warnings = texts(at.warning)
    assert any(w.startswith("Dev-test gap opened at step 1: dev 100.0% vs test 0.0%") for w in warnings), warnings
    at.switch_page("pages/optimize.py").run()
    assert any(w.startswith("Dev-test gap opened at step 1") for w in texts(at.warning))


def _yes_no_studio(tmp_path, reply: str) -> Studio:
    lines = ["question,answer"] + [f"Is {n} even?,{'yes' if n % 2 == 0 else 'no'}" for n in range(3, 27)]
    base = demo_models()
    optimizer = ScriptedChatModel(lambda r: f"<START>{reply}<END>", name="scripted-optimizer")
    studio = _quick(Studio(runs_root=tmp_path / "runs", models_override=Models(base.task, optimizer,
                                                                                HashingEmbedder())))
    studio.tasks.preview_upload(("\n".join(lines) + "\n").encode(), "even.csv")
    studio.tasks.load_upload("question", "answer")
    studio.tasks.update_splits(dev_size=6, test_size=6, seed=0)
    return studio


@pytest.mark.parametrize("drop", [False, True])
def test_a_candidate_that_names_a_label_gets_a_badge_and_can_be_dropped(tmp_path, drop):
    studio = _yes_no_studio(tmp_path, "Think it over. The answer is always yes.")
    at = _stepped(studio, candidates=1, drop_flagged=drop)
    (cand,) = studio.runs.session.state.pending_step.candidates
    assert cand.flags == ["names-label"]
    card = _card_markdown(at, cand.id)
    assert ":orange-badge[names a label]" in card
    assert cand.flag_notes[0] in card  # what matched, in words
    if drop:
        assert cand.status == "flagged" and cand.dev_accuracy is None
        assert "flagged, dropped unscored" in card
    else:
        assert cand.dev_accuracy is not None and "flagged, dropped unscored" not in card
    # accepting it by hand asks first, saying what matched
    click(at, f"accept_{cand.id}")
    (question,) = _questions(at)
    assert question.startswith(f"{cand.id} is flagged: {cand.flag_notes[0]}.")
    assert studio.runs.session.state.pending_step is not None


# ----------------------------------------------------------------------------- early stop, seeds


def test_early_stopping_stops_automatic_steps_and_says_why(tmp_path):
    studio = _studio(tmp_path)
    studio.draft.update_optimizer(steps=3, candidates=2, policy="significant", patience=1)
    at = app_for(studio, "pages/optimize.py")
    click(at, "new_run")
    at.number_input(key="auto_n").set_value(3)
    click(at, "run_auto")
    session = studio.runs.session
    assert len(session.state.decided_steps) == 1 and session.stop_note
    note = session.stop_note[:1].upper() + session.stop_note[1:]
    assert any(t.startswith("Ran 1 step automatically.") and note in t for t in texts(at.success)), texts(at.success)
    assert any(t.startswith(note) and "Every finished step is kept" in t for t in texts(at.info))


def test_repeat_with_seeds_shows_the_mean_and_spread_of_the_final_test_accuracy(tmp_path):
    from gpo_core.runs.seeds import summarize

    studio = _studio(tmp_path)
    studio.draft.update_optimizer(steps=2, candidates=2)
    studio.runs.create()
    studio.actions.run_auto(2)
    run_id = studio.runs.session.state.run_id
    at = app_for(studio, "pages/results.py")
    at.text_input(key="seeds_text").set_value("1, 2")
    click(at, "repeat_seeds")
    summary = studio.actions.seed_summaries[run_id]
    assert [r.seed for r in summary.results] == [1, 2] and summary.split == "test"
    assert summary.mean == pytest.approx(summarize(summary.results).mean)
    metrics = _metrics(at)
    assert metrics["Final prompt (test), mean of 2"] == f"{100 * summary.mean:.1f}%"
    assert metrics["Spread (sd)"] == f"{100 * summary.sd:.1f} points"
    table = next(d.value for d in at.dataframe if "seed" in d.value.columns)
    assert list(table["seed"]) == [1, 2] and list(table["run"]) == [f"{run_id}-seed1", f"{run_id}-seed2"]
    assert all(WITH_INTERVAL.match(v) for v in table["final prompt (test)"])
    saved = {r["run_id"] for r in studio.runs.saved()}
    assert {f"{run_id}-seed1", f"{run_id}-seed2"} <= saved  # each seed is a saved run, to open and inspect


def _priced_studio(tmp_path, server, **optimizer) -> Studio:
    """A Studio whose two models are "gpt-4o-mini" (priced in the dated default price table)
    behind the loopback OpenAI-compatible server, the arithmetic task loaded."""
    studio = _quick(Studio(runs_root=tmp_path / "runs"))
    load_arithmetic(studio, 24, 6, 6)
    for role in ("task", "optimizer"):
        studio.models.set_model(role, backend="compatible", model="gpt-4o-mini", base_url=server.base_url,
                                temperature=0.0 if role == "task" else 1.0, max_tokens=64, concurrency=4,
                                timeout_s=10.0)
    studio.draft.update_optimizer(**({"steps": 3, "candidates": 2} | optimizer))
    return studio


def test_a_tiny_dollar_cap_stops_a_priced_run_keeping_its_steps_and_it_resumes(tmp_path, monkeypatch):
    from gpo_testkit.fake_openai_server import FakeOpenAIServer

    with FakeOpenAIServer() as server:
        monkeypatch.setenv("GPO_HOME", str(tmp_path / "probe-home"))  # its own response cache
        probe = _priced_studio(tmp_path / "probe", server)
        probe.runs.create()
        probe.actions.run_auto(1)
        after_one = probe.runs.session.spend().dollars
        probe.actions.run_auto(1)
        after_two = probe.runs.session.spend().dollars
        assert after_one and after_two and after_two > after_one
        cap = round((after_one + after_two) / 2, 8)  # reached during step 2

        monkeypatch.setenv("GPO_HOME", str(tmp_path / "home"))
        studio = _priced_studio(tmp_path, server, max_cost=cap)
        at = app_for(studio, "pages/optimize.py")
        assert _metrics(at)["Cost"].startswith("$")  # the estimate prices the run before it is created
        click(at, "new_run")
        at.number_input(key="auto_n").set_value(3)
        click(at, "run_auto")
        session = studio.runs.session
        assert len(session.state.decided_steps) == 1
        assert session.state.stop_reason and f"of a ${cap:g} cap" in session.state.stop_reason
        assert any(t.startswith("Stopped: spend cap reached") and "Every finished step is kept: 1 of 3 steps done"
                   in t for t in texts(at.info)), texts(at.info)
        saved = json.loads((session.run_dir / "run.json").read_text(encoding="utf-8"))
        assert len([s for s in saved["steps"] if s.get("decision")]) == 1  # the finished step is on disk
        at.number_input(key="run_max_cost").set_value(1.0)  # raise the cap
        click(at, "apply_caps")
        at.number_input(key="auto_n").set_value(2)
        click(at, "run_auto")
        assert len(session.state.decided_steps) == 3 and session.state.stop_reason is None
        assert session.settings.optimizer.max_cost == 1.0


def test_the_price_of_a_model_is_shown_dated_editable_and_saved_for_the_estimate(tmp_path, monkeypatch):
    import tomllib
    from datetime import date

    from gpo_core.costs.estimate import estimate_run
    from gpo_core.costs.prices import load_prices
    from gpo_core.studio.views.cost_view import money

    monkeypatch.setenv("GPO_HOME", str(tmp_path / "home"))
    studio = _quick(Studio(runs_root=tmp_path / "runs"))
    load_arithmetic(studio, 24, 6, 6)
    for role in ("task", "optimizer"):
        studio.models.set_model(role, backend="compatible", model="gpt-4o-mini", base_url="http://127.0.0.1:9/v1",
                                temperature=0.0, max_tokens=64, concurrency=4, timeout_s=10.0)
    studio.draft.update_optimizer(steps=3, candidates=2)
    at = app_for(studio, "pages/optimize.py")
    before = _metrics(at)["Cost"]
    at.session_state["prices_box"] = True
    at.run()
    assert at.number_input(key="price_in_0").value == 0.15 and at.number_input(key="price_out_0").value == 0.6
    assert any("default table (gpo_core/data/prices.toml) as of " in t for t in texts(at.markdown))
    at.number_input(key="price_in_0").set_value(1.5)
    at.number_input(key="price_out_0").set_value(6.0)
    at.button(key="save_prices").click().run()
    no_exception(at)
    saved = tomllib.loads((tmp_path / "home" / "prices.toml").read_text(encoding="utf-8"))
    assert saved["as_of"] == date.today().isoformat()
    assert saved["models"]["gpt-4o-mini"] == {"input": 1.5, "output": 6.0}
    expected = estimate_run(studio.draft.settings, studio.tasks.task, splits=studio.tasks.splits(),
                            prices=load_prices())
    after = _metrics(at)["Cost"]
    assert after != before and expected.dollars is not None and after == money(expected.dollars)
