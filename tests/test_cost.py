"""Cost before, during and after a run (gpo_core.costs): the estimate counts the calls a run
makes and the tokens of its real prompts; the live spend meter counts cache hits as free;
a spend cap stops at the next call boundary with every finished step kept, and a resume with
a higher cap continues; prices come from a dated, editable table.

Scripted run: the parity task (an instruction with "carefully" answers right, any other
says "yes"); the scripted optimizer writes a new "carefully" instruction on every call, so
every candidate is new and scored, as the estimate assumes."""

from __future__ import annotations

import itertools
import json
import re

import pytest

from gpo_core.cli import main as cli_main
from gpo_core.costs.estimate import estimate_run
from gpo_core.costs.prices import FREE, load_prices
from gpo_core.costs.spend import SpendCapReached
from gpo_core.costs.tokens import CharCounter, counter_for
from gpo_core.errors import ConfigError
from gpo_core.models.base import ChatRequest
from gpo_core.models.cache import CachedChatModel, ResponseCache
from gpo_core.optimizer.session import GPOSession
from gpo_core.settings import ModelSettings
from gpo_testkit.embedders import HashingEmbedder
from gpo_testkit.scripted import ScriptedChatModel

from engine_fakes import ScriptedModels, parity_splits, parity_task, run_settings


def _task_answer(req: ChatRequest) -> str:
    text = "\n".join(c for _, c in req.messages)  # the reference protocol's re-prompt holds the question earlier
    n = int(re.search(r"Is (\d+) even", text).group(1))
    return ("yes" if n % 2 == 0 else "no") if "carefully" in text else "yes"


def _models(max_concurrency: int = 8) -> ScriptedModels:
    count = itertools.count()
    return ScriptedModels(
        ScriptedChatModel(_task_answer, name="fake-task", max_concurrency=max_concurrency),
        ScriptedChatModel(lambda r: f"<INS>Check carefully whether it is even, take {next(count)}.</INS>",
                          name="fake-optimizer", max_concurrency=1),
        HashingEmbedder())


def _session(tmp_path, models=None, **cfg) -> GPOSession:
    settings = run_settings(**({"steps": 3, "candidates": 3} | cfg))
    return GPOSession.create(parity_task(), settings, models or _models(), splits=parity_splits(), run_dir=tmp_path)


# --------------------------------------------------------------------------- before: the estimate


@pytest.mark.parametrize("protocol", ["single", "reference"])
def test_estimated_calls_equal_the_calls_a_scripted_run_makes(tmp_path, protocol):
    settings = run_settings(steps=3, candidates=3, protocol=protocol)
    est = estimate_run(settings, parity_task(), splits=parity_splits())
    models = _models()
    s = GPOSession.create(parity_task(), settings, models, splits=parity_splits(), run_dir=tmp_path)
    s.run_auto()
    assert est.roles["optimizer"].calls == len(models.optimizer.calls) == 9
    per = 2 if protocol == "reference" else 1
    assert est.roles["task"].calls == len(models.task.calls) == per * ((8 + 10) + 3 * (3 * 8 + 10))
    assert est.calls == s.spend().calls


def test_the_time_a_step_is_its_optimizer_calls_plus_its_dev_and_test_scoring():
    # 3 candidates x 8 dev + 10 test task calls at 2 s, 3 optimizer calls at 10 s: 30 + 68 = 98 s,
    # whatever the number of steps; one call at a time as on the embedded model.
    from gpo_core.studio.views.cost_view import estimate_metrics

    for steps in (1, 4):
        settings = run_settings(steps=steps, candidates=3, protocol="single", concurrency=1)
        est = estimate_run(settings, parity_task(), splits=parity_splits(), latency_s={"optimizer": 10.0, "task": 2.0})
        assert est.step_seconds == pytest.approx(98.0)
    assert estimate_metrics(est)["Time a step"] == "about 98 s"


def test_an_embedded_model_is_timed_at_its_own_measured_speed(tmp_path):
    # the bug: every embedded model was timed at SmolLM2-135M's speed, so the 1.5B default's
    # step looked about 3x faster than it runs
    from gpo_core.costs.estimate import EMBEDDED_SPEED
    from gpo_core.settings import QWEN_CODER_1_5B, SMOLLM2_135M

    def task_seconds(model: str) -> tuple[float, str]:
        import dataclasses

        settings = run_settings(steps=1, candidates=2, protocol="single")
        settings = dataclasses.replace(settings, task_model=ModelSettings(backend="local", model=model, concurrency=1))
        role = estimate_run(settings, parity_task(), splits=parity_splits()).roles["task"]
        return role.seconds, role.latency_basis

    (small, _), (qwen, basis) = task_seconds(SMOLLM2_135M), task_seconds(QWEN_CODER_1_5B)
    pre, dec = EMBEDDED_SPEED[QWEN_CODER_1_5B]
    assert basis.startswith(f"configured {pre:.0f} prompt / {dec:.0f} completion tokens a second")
    assert qwen > 2.5 * small
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF")
    other, basis = task_seconds(str(gguf))
    assert other > 2.5 * small and basis.startswith(f"configured {pre:.0f} prompt") and "not measured" in basis


def test_the_estimate_counts_the_real_prompts_of_the_task(tmp_path):
    """The starting prompt's task calls and step 1's meta-prompt are known before the run:
    their counted tokens equal what the (word-counting) scripted models reported."""
    settings = run_settings(steps=1, candidates=3, test_size=None)
    est = estimate_run(settings, parity_task(), splits=parity_splits())
    models = _models()
    s = GPOSession.create(parity_task(), settings, models, splits=parity_splits(), run_dir=tmp_path)
    s.start()
    start_tokens = s.state.spend["task"].prompt_tokens
    step = s.propose()
    assert est.roles["optimizer"].prompt_tokens == step.usage_optimizer.prompt_tokens
    # task tokens = start (exact) + candidates counted as start + edit budget (an upper bound here)
    assert est.roles["task"].prompt_tokens >= start_tokens + step.usage_dev.prompt_tokens
    assert "edit budget" in " ".join(est.notes)


def test_with_a_past_run_the_estimate_measures_completions_and_candidates(tmp_path):
    settings = run_settings(steps=3, candidates=3)
    first = GPOSession.create(parity_task(), settings, _models(), splits=parity_splits(), run_dir=tmp_path / "a")
    first.run_auto()
    est = estimate_run(settings, parity_task(), splits=parity_splits(), history=[first.state])
    second = GPOSession.create(parity_task(), settings, _models(), splits=parity_splits(), run_dir=tmp_path / "b")
    second.run_auto()
    spent = second.state.spend
    for role in ("task", "optimizer"):
        r = est.roles[role]
        assert r.measured_completion and r.completion_basis.startswith("measured")
        assert r.completion_tokens == spent[role].completion_tokens
        assert abs(r.prompt_tokens - spent[role].prompt_tokens) <= 0.02 * spent[role].prompt_tokens
    assert not est.approximate


def test_past_replies_that_gave_no_new_candidate_lower_the_expected_calls(tmp_path):
    repeat = ScriptedModels(ScriptedChatModel(_task_answer, name="fake-task"),
                            ScriptedChatModel(lambda r: "<INS>Check carefully, always the same.</INS>",
                                              name="fake-optimizer", max_concurrency=1), HashingEmbedder())
    past = _session(tmp_path / "a", repeat)
    past.run_auto()                  # 9 replies, 1 new candidate: the rest are duplicates
    settings = run_settings(steps=3, candidates=3)
    upper = estimate_run(settings, parity_task(), splits=parity_splits())
    expected = estimate_run(settings, parity_task(), splits=parity_splits(), history=[past.state])
    assert any("1 of 9 past replies" in n for n in expected.notes)
    assert expected.roles["task"].calls == (8 + 10) + 3 * (round(1 / 3 * 8) + 10) < upper.roles["task"].calls


def test_an_estimate_of_a_resumed_run_counts_only_the_rest(tmp_path):
    s = _session(tmp_path)
    s.run_auto(n_steps=1)
    est = estimate_run(state=s.state)
    assert (est.steps, est.total_steps, est.includes_start) == (2, 3, False)
    assert est.roles["optimizer"].calls == 2 * 3
    assert est.roles["task"].calls == 2 * (3 * 8 + 10)


def test_the_estimate_prices_models_and_says_the_prices_are_a_dated_default():
    settings = run_settings(steps=2, candidates=2).replace(
        task_model=ModelSettings(backend="openai", model="gpt-4o-mini"),
        optimizer_model=ModelSettings(backend="openai", model="gpt-4o-mini-2024-07-18", temperature=1.0))
    est = estimate_run(settings, parity_task(), splits=parity_splits())
    price = load_prices().price_for(settings.task_model)
    assert price is not None and (price.input, price.output) == (0.15, 0.60)
    want = sum(price.dollars(r.prompt_tokens, r.completion_tokens) for r in est.roles.values())
    assert est.dollars == pytest.approx(want)
    text = "\n".join(est.lines())
    assert "as of 2025-08-15" in text and "dated default" in text
    assert "min" in text and f"{est.calls:,} calls" in text


def test_a_model_without_a_price_gets_no_dollar_figure_and_a_note():
    settings = run_settings(steps=1, candidates=2).replace(
        task_model=ModelSettings(backend="compatible", model="my-llama", base_url="http://localhost:8000/v1"))
    est = estimate_run(settings, parity_task(), splits=parity_splits())
    assert est.dollars is None and est.roles["task"].dollars is None
    assert any("no price for the task model 'my-llama'" in n for n in est.notes)


# --------------------------------------------------------------------------- tokens


def test_token_counters_say_how_they_count():
    assert counter_for(ModelSettings(backend="demo", model="x")).count([("user", "a b c")]) == 3
    local = counter_for(ModelSettings())
    assert local.exact and "llama.cpp" in local.method
    # SmolLM2's chat template adds its default system prompt: many more tokens than the text
    assert local.count([("user", "Hello there")]) > local.count_text("Hello there") + 10
    gpt = counter_for(ModelSettings(backend="openai", model="gpt-4o-mini"))
    assert gpt.count([("user", "Hello there")]) > 0
    if not gpt.exact:  # offline: o200k_base cannot be downloaded, and the estimate says so
        assert "approximate" in gpt.method


def test_without_any_tokenizer_the_count_is_characters_over_four_and_says_so(monkeypatch):
    import gpo_core.costs.tokens as tokens

    monkeypatch.setattr(tokens, "_load_tiktoken", lambda name: None)
    monkeypatch.setattr(tokens, "_memo", {})
    c = counter_for(ModelSettings(backend="openai", model="gpt-4o"))
    assert isinstance(c, CharCounter) and not c.exact and "characters / 4" in c.method
    assert c.count_text("x" * 40) == 10


# --------------------------------------------------------------------------- prices


def test_prices_are_overridden_by_gpo_home_then_by_a_file(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("GPO_HOME", str(home))
    (home / "prices.toml").write_text('as_of = "2026-01-01"\n[models."gpt-4o-mini"]\ninput = 1.0\noutput = 2.0\n')
    m = ModelSettings(backend="openai", model="gpt-4o-mini")
    assert load_prices().price_for(m).input == 1.0
    mine = tmp_path / "mine.toml"
    mine.write_text('as_of = "2026-02-02"\n[models."gpt-4o-mini"]\ninput = 3.0\noutput = 4.0\n')
    table = load_prices(mine)
    assert table.price_for(m).output == 4.0
    assert "2026-02-02" in table.note and "2025-08-15" in table.note
    assert table.price_for(ModelSettings()) is FREE  # the embedded model


def test_a_price_table_entry_naming_the_embedded_model_prices_local_compute(tmp_path):
    """The embedded model is free unless the user's table names it (to value local compute)."""
    local = ModelSettings()
    mine = tmp_path / "mine.toml"
    mine.write_text(f'as_of = "2026-11-22"\n[models."{local.model}"]\ninput = 0.5\noutput = 1.5\n')
    price = load_prices(mine).price_for(local)
    assert price is not FREE and (price.input, price.output) == (0.5, 1.5)


def test_a_bad_price_file_is_refused_naming_the_file_line_and_field(tmp_path):
    bad = tmp_path / "p.toml"
    bad.write_text('as_of = "2026-01-01"\n[models."x"]\ninput = \n')
    with pytest.raises(ConfigError, match=r"p\.toml: not valid TOML .*line 3"):
        load_prices(bad)
    bad.write_text('as_of = "2026-01-01"\n[models."x"]\ninput = -1\noutput = 1\n')
    with pytest.raises(ConfigError, match=r"p\.toml: models\.'x'\.input: must be a number >= 0"):
        load_prices(bad)
    with pytest.raises(ConfigError, match="no such price table file"):
        load_prices(tmp_path / "missing.toml")


# --------------------------------------------------------------------------- during: the spend meter


def test_the_spend_meter_counts_live_and_cache_hits_are_free(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    seen: list[int] = []

    def models() -> ScriptedModels:
        m = _models()
        return ScriptedModels(CachedChatModel(m.task, cache), CachedChatModel(m.optimizer, cache),  # type: ignore[arg-type]
                              m.embedder)

    first = _session(tmp_path / "a", models(), steps=1)
    first.start(on_progress=lambda phase, d, n: seen.append(first.spend().calls))
    assert seen and seen[-1] > 0 and seen == sorted(seen)      # grew while the calls ran
    spent = first.spend()
    assert spent.tokens == first.state.initial["usage"]["prompt_tokens"] + \
        first.state.initial["usage"]["completion_tokens"]
    assert spent.dollars == 0.0 and spent.cached_calls == 0
    again = _session(tmp_path / "b", models(), steps=1)
    again.start()
    assert again.spend().tokens == 0 and again.spend().cached_calls == spent.calls


def test_spend_is_saved_with_the_run_and_includes_discarded_work(tmp_path):
    s = _session(tmp_path)
    s.start()
    before = s.spend().tokens
    stop_after = itertools.count()
    from gpo_core.scoring.evaluation import EvaluationCancelled

    with pytest.raises(EvaluationCancelled):   # the user stops step 1 half-way: the step is discarded
        s.propose(should_stop=lambda: next(stop_after) > 5)
    assert s.state.pending_step is None and s.spend().tokens > before
    s._save()
    saved = json.loads((tmp_path / "run.json").read_text())
    assert saved["spend"]["task"]["prompt_tokens"] + saved["spend"]["task"]["completion_tokens"] + \
        saved["spend"]["optimizer"]["prompt_tokens"] + saved["spend"]["optimizer"]["completion_tokens"] == \
        s.spend().tokens


# --------------------------------------------------------------------------- a hard cap


def test_a_token_cap_stops_at_the_call_boundary_keeps_steps_and_resumes(tmp_path):
    clean = _session(tmp_path / "clean")
    clean.run_auto()
    cap = clean.spend().tokens // 2
    models = _models(max_concurrency=1)
    s = _session(tmp_path / "capped", models, max_spend_tokens=cap)
    last_tokens: list[int] = []
    s.models.task = _Recorder(s.models.task, last_tokens)
    with pytest.raises(SpendCapReached, match=f"of a {cap:,}-token cap"):
        s.run_auto()
    spent = s.spend().tokens
    assert spent >= cap and spent - last_tokens[-1] < cap     # stopped right after the call that crossed it
    kept = len(s.state.decided_steps)
    assert 0 < kept < 3 and s.state.stop_reason.startswith("spend cap reached")
    # saved: reopen, nothing lost
    reopened = GPOSession.open(tmp_path / "capped", _models(), take_over=True)
    assert len(reopened.state.decided_steps) == kept and reopened.state.stop_reason == s.state.stop_reason
    # still capped: refused before any call
    with pytest.raises(SpendCapReached):
        reopened.run_auto()
    # a higher cap continues to the end, with the same result as the run without a cap
    reopened.use_models(reopened.models, reopened.settings.replace(
        optimizer=reopened.config.replace(max_spend_tokens=10 * cap)))
    reopened.run_auto()
    assert len(reopened.state.decided_steps) == 3 and reopened.state.stop_reason is None
    assert [st.step for st in reopened.state.decided_steps] == [st.step for st in clean.state.decided_steps]
    assert reopened.state.current_prompt.startswith("Check carefully")


def test_a_dollar_cap_prices_the_spend_and_an_unpriced_model_is_refused_before_any_call(tmp_path):
    priced = run_settings(steps=2, candidates=2, max_cost=0.0001).replace(
        task_model=ModelSettings(backend="openai", model="gpt-4o-mini"),
        optimizer_model=ModelSettings(backend="openai", model="gpt-4o-mini", temperature=1.0))
    s = GPOSession.create(parity_task(), priced, _models(), splits=parity_splits(), run_dir=tmp_path / "a")
    with pytest.raises(SpendCapReached, match=r"spend cap reached: \$0\.\d+ spent of a \$0\.0001 cap"):
        s.run_auto()
    assert s.spend().dollars >= 0.0001
    unpriced = priced.replace(task_model=ModelSettings(backend="compatible", model="my-llama",
                                                       base_url="http://localhost:8000/v1"))
    models = _models()
    s2 = GPOSession.create(parity_task(), unpriced, models, splits=parity_splits(), run_dir=tmp_path / "b")
    with pytest.raises(ConfigError, match="no price for the task model 'my-llama'"):
        s2.start()
    assert models.task.call_count == 0


def test_cap_settings_are_checked_by_name():
    with pytest.raises(ConfigError, match="--max-cost"):
        run_settings(max_cost=0).validate("cli")
    with pytest.raises(ConfigError, match="--max-tokens"):
        run_settings(max_spend_tokens=-5).validate("cli")


# --------------------------------------------------------------------------- the command line


def test_cli_prints_the_estimate_stops_on_the_cap_with_status_3_and_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GPO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GPO_STUDIO_FAKE_MODELS", "1")
    task = tmp_path / "parity.csv"
    task.write_text("question,answer\n" + "".join(f"Is {n} even?,{'yes' if n % 2 == 0 else 'no'}\n"
                                                  for n in range(40)))
    out = tmp_path / "run"
    base = ["run", "--task", str(task), "--out", str(out), "--steps", "3", "--candidates", "2", "--dev-size", "6",
            "--test-size", "4", "--cache-dir", str(tmp_path / "cache")]
    assert cli_main([*base, "--estimate-only"]) == 0
    text = capsys.readouterr().out
    assert "estimate before running 3 steps x 2 candidates" in text and "estimate only: nothing was run" in text
    assert not out.exists()

    assert cli_main([*base, "--max-tokens", "1500"]) == 3
    text = capsys.readouterr().out
    assert "estimate before running" in text.split("step 0")[0]
    assert "stopped: spend cap reached" in text and "rerun with --resume" in text
    saved = json.loads((out / "run.json").read_text())
    assert saved["stop_reason"].startswith("spend cap reached") and saved["settings"]["optimizer"]["max_spend_tokens"] \
        == 1500
    kept = sum(1 for st in saved["steps"] if st["decision"])

    assert cli_main(["run", "--out", str(out), "--resume", "--max-tokens", "1000000"]) == 0
    text = capsys.readouterr().out
    assert "--max-tokens: 1500 -> 1000000" in text and "done: 3 of 3 steps" in text
    saved = json.loads((out / "run.json").read_text())
    assert saved["stop_reason"] is None and sum(1 for st in saved["steps"] if st["decision"]) == 3 >= kept
    assert "spent: " in text


class _Recorder:
    """A ChatModel that notes the tokens of each call it answers."""

    def __init__(self, inner, tokens: list[int]):
        self.inner, self.tokens = inner, tokens
        self.name, self.max_concurrency = inner.name, inner.max_concurrency

    def complete(self, request):
        c = self.inner.complete(request)
        self.tokens.append(c.prompt_tokens + c.completion_tokens)
        return c
