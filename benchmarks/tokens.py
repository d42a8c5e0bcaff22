"""Figure 7 - tokens per step of the three meta-prompt layouts: gpo (the reference code's
structure, the default), opro (OPRO's wording) and short (ours).

Default config (8 candidates, k = 3, 3 exemplars, cosine budget 50 -> 10 over 18 steps) on
real BBH tasks. For each task and each of the 18 steps, the same inputs go into every layout
(``build_meta_prompt(layout=...)`` with ``layout`` in ``gpo``, ``opro``, ``short``): the same 3
retrieved trajectory prompts with scores, the same 3 exemplars (drawn once per run, as the
engine's default ``exemplar_draw="once"``: ``random.Random(f"{seed}:exemplars")`` from the
task's format examples), the same current prompt and the step's budget. Per step:

- optimizer prompt tokens = 8 x tokens(meta-prompt)  (the only part the layout changes);
- optimizer completion tokens: expected = 8 x tokens(a candidate between the layout's answer
  tags: ``<START>``/``<END>`` for gpo, ``<INS>``/``</INS>`` for opro and short);
  cap = 8 x optimizer_max_tokens;
- task prompt tokens for 8 x 48 dev + 144 test examples, the same for every layout, under
  each scoring protocol: ``single`` (the labelled prompt, one call an example) and
  ``reference`` (the default: the plain question + instruction, then the answer re-prompt
  whose prompt repeats the first turn; counted without the task model's first reply, whose
  length depends on the model, at most task_max_tokens).

Tokenizer: SmolLM2-135M-Instruct's BPE via ``llama_cpp.Llama(vocab_only=True).tokenize``
(the embedded model); also OpenAI's o200k_base (tiktoken, with the encoding files litellm
bundles) when the peer venv (benchmarks/.venv-peer) exists. Message text only (no chat
template tokens, which are the same per call in every layout).

Usage: .venv/bin/python benchmarks/tokens.py [--tasks date_understanding,navigate,object_counting]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess

from benchlib import PEER_VENV, bbh_task, emit, r

CANDIDATES, K, N_EXEMPLARS, STEPS = 8, 3, 3, 18
DEV, TEST = 48, 144

# A realistic update direction: the starting prompt and two earlier candidates, and the
# current prompt (typical GPO candidates are one or two sentences).
TRAJECTORY = [
    ("Let's think step by step.", 0.52),
    ("Let's think step by step and check each option against the facts before answering.", 0.58),
    ("Read the question carefully, work through it one step at a time, and give the final answer clearly.", 0.63),
]
CURRENT = "Read the question carefully, work through it one step at a time, and give the final answer clearly."
TYPICAL_CANDIDATE = ("Read the question carefully, reason one step at a time, eliminate impossible options, "
                     "and end with the final answer.")

_TIKTOKEN = r'''
import json, sys
import litellm.litellm_core_utils.default_encoding  # sets TIKTOKEN_CACHE_DIR to litellm's bundled files
import tiktoken
enc = tiktoken.get_encoding("o200k_base")
texts = json.load(sys.stdin)
print(json.dumps([len(enc.encode(t, disallowed_special=())) for t in texts]))
'''


def o200k_counts(texts: list[str]) -> list[int] | None:
    py = PEER_VENV / "bin" / "python"
    if not py.exists():
        return None
    try:
        out = subprocess.run([str(py), "-c", _TIKTOKEN], input=json.dumps(texts), capture_output=True, text=True,
                             timeout=120, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])
    except Exception as exc:  # noqa: BLE001
        print(f"o200k_base count skipped: {exc}")
        return None


LAYOUT_NAMES = ("gpo", "opro", "short")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", default="date_understanding,navigate,object_counting")
    a = ap.parse_args()

    import llama_cpp

    from gpo_core.models.local_llama import default_gguf_path
    from gpo_core.optimizer import templates
    from gpo_core.optimizer.direction import Retrieved
    from gpo_core.optimizer.metaprompt import build_meta_prompt, pick_exemplars
    from gpo_core.optimizer.schedule import edit_budget
    from gpo_core.scoring.reprompt import plain_prompt, second_turn
    from gpo_core.scoring.task_prompt import render_task_prompt
    from gpo_core.settings import default_run_settings
    from gpo_core.tasks.splits import split_task

    settings = default_run_settings("openai", preset="paper")  # the paper's settings (GPO.sh)
    cfg = settings.optimizer
    assert (cfg.candidates, cfg.k, cfg.n_exemplars, cfg.steps) == (CANDIDATES, K, N_EXEMPLARS, STEPS)
    assert cfg.layout == "gpo" and cfg.exemplar_draw == "once"
    vocab = llama_cpp.Llama(model_path=str(default_gguf_path()), vocab_only=True, verbose=False)

    def smol(text: str) -> int:
        return len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    retrieved = [Retrieved(i, p, acc, i, None, "bench") for i, (p, acc) in enumerate(TRAJECTORY)]
    replies = {name: f"{templates.LAYOUTS[name].open_tag}{TYPICAL_CANDIDATE}{templates.LAYOUTS[name].close_tag}"
               for name in LAYOUT_NAMES}
    rows, texts = [], []
    for name in a.tasks.split(","):
        task = bbh_task(name)
        splits = split_task(task, dev_size=DEV, test_size=TEST, seed=0)
        ex = pick_exemplars(splits.exemplars or splits.train, N_EXEMPLARS,
                            random.Random(f"{settings.splits.seed}:exemplars"))
        metas: dict[str, list[str]] = {layout: [] for layout in LAYOUT_NAMES}
        for t in range(1, STEPS + 1):
            budget = edit_budget(t, kind=cfg.schedule, initial=cfg.budget_initial, final=cfg.budget_final,
                                 total_steps=cfg.steps, warmup=cfg.warmup)
            for layout in metas:
                metas[layout].append(build_meta_prompt(retrieved=retrieved, current_prompt=CURRENT, exemplars=ex,
                                                       position=task.instruction_position, budget=budget,
                                                       layout=layout))
        examples = list(splits.dev) * CANDIDATES + list(splits.test)
        pos = task.instruction_position
        single_tok = sum(smol(render_task_prompt(TYPICAL_CANDIDATE, e.input, pos)) for e in examples)
        reference_tok = 0
        for e in examples:
            first = smol(plain_prompt(TYPICAL_CANDIDATE, e.input, pos))
            reference_tok += 2 * first + smol(second_turn(task.answer_type, e.input))
        row: dict = {"task": name, "task_calls_single": len(examples), "task_calls_reference": 2 * len(examples),
                     "task_prompt_tokens_single": single_tok, "task_prompt_tokens_reference": reference_tok}
        for layout, ms in metas.items():
            per_meta = sum(smol(m) for m in ms) / len(ms)
            row[f"{layout}_meta_tokens"] = r(per_meta, 1)
            row[f"{layout}_optimizer_prompt_tokens"] = r(CANDIDATES * per_meta, 0)
            row[f"{layout}_step_prompt_tokens"] = r(CANDIDATES * per_meta + reference_tok, 0)
            texts.append((name, layout, ms))
        rows.append(row)
        print(f"{name}: tokens per meta-prompt " + ", ".join(f"{lay} {row[f'{lay}_meta_tokens']}"
                                                             for lay in LAYOUT_NAMES)
              + f"; task prompts per step {reference_tok} (reference protocol) / {single_tok} (single)", flush=True)

    # second tokenizer (OpenAI o200k_base), when the peer venv with tiktoken exists
    flat = [m for _, _, ms in texts for m in ms]
    counts = o200k_counts(flat)
    if counts is not None:
        i = 0
        for name, layout, ms in texts:
            row = next(x for x in rows if x["task"] == name)
            row[f"{layout}_meta_tokens_o200k"] = r(sum(counts[i:i + len(ms)]) / len(ms), 1)
            i += len(ms)

    def avg(key: str) -> float:
        return sum(x[key] for x in rows) / len(rows)

    opt = {lay: avg(f"{lay}_optimizer_prompt_tokens") for lay in LAYOUT_NAMES}
    step = {lay: avg(f"{lay}_step_prompt_tokens") for lay in LAYOUT_NAMES}
    meta = {lay: avg(f"{lay}_meta_tokens") for lay in LAYOUT_NAMES}
    completion = {lay: CANDIDATES * smol(replies[lay]) for lay in LAYOUT_NAMES}
    step = {lay: step[lay] + completion[lay] for lay in LAYOUT_NAMES}  # + expected optimizer completions
    for lay in LAYOUT_NAMES:
        print(f"{lay:<6} ({templates.LAYOUTS[lay].label}): {meta[lay]:.0f} tokens per meta-prompt, "
              f"{opt[lay]:.0f} optimizer prompt tokens per step ({100 * (opt[lay] / opt['gpo'] - 1):+.0f}% vs gpo), "
              f"{completion[lay]} expected completion tokens per step; whole step {step[lay]:.0f} "
              "(optimizer prompts + expected completions + task prompts, reference protocol)", flush=True)
    emit({
        "figure": "tokens",
        "goal": "prompt + completion tokens per step of our short layout <= the gpo layout (reference code's "
                "structure, the default); opro reported (same k, exemplars, candidates)",
        "measured": ("optimizer prompt tokens/step: " + ", ".join(f"{lay} {opt[lay]:.0f}" for lay in LAYOUT_NAMES)
                     + f" (short {100 * (opt['short'] / opt['gpo'] - 1):+.0f}%, opro "
                     f"{100 * (opt['opro'] / opt['gpo'] - 1):+.0f}% vs gpo); whole step (reference protocol) "
                     + ", ".join(f"{lay} {step[lay]:.0f}" for lay in LAYOUT_NAMES)),
        "met": all(x["short_meta_tokens"] <= x["gpo_meta_tokens"] for x in rows)
        and opt["short"] + completion["short"] <= opt["gpo"] + completion["gpo"],
        "tokenizer": "SmolLM2-135M-Instruct BPE (llama_cpp vocab_only); o200k_base (tiktoken) where shown",
        "layouts": {lay: templates.LAYOUTS[lay].label for lay in LAYOUT_NAMES},
        "per_task": rows,
        "meta_prompt_tokens": {lay: r(meta[lay], 1) for lay in LAYOUT_NAMES},
        "optimizer_prompt_tokens_per_step": {lay: r(opt[lay], 0) for lay in LAYOUT_NAMES},
        "optimizer_completion_tokens_expected": completion,
        "optimizer_completion_tokens_cap": CANDIDATES * settings.optimizer_model.max_tokens,
        "task_completion_tokens_cap": {"single": (CANDIDATES * DEV + TEST) * settings.task_model.max_tokens,
                                       "reference": (CANDIDATES * DEV + TEST) * (settings.task_model.max_tokens
                                                                                  + min(settings.task_model.max_tokens,
                                                                                        100))},
        "note": "task prompt tokens do not depend on the layout; the reference protocol's count leaves out the "
                "task model's first reply, which its answer re-prompt also carries",
    })


if __name__ == "__main__":
    main()
