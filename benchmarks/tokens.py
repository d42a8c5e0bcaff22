"""Figure 7 - tokens per step: our meta-prompt layout vs the paper's reference layout.

Default config (8 candidates, k = 3, 3 exemplars, cosine budget 50 -> 10 over 18 steps) on
real BBH tasks. For each task and each of the 18 steps, the same inputs go into both
layouts (``build_meta_prompt(layout="gpo_studio")`` and ``layout="paper"``): the same 3
retrieved trajectory prompts with scores, the same 3 exemplars (drawn as the engine draws
them: ``random.Random(f"{seed}:{t}:1")`` from the task's format examples), the same current
prompt and budget. Per step:

- optimizer prompt tokens = 8 x tokens(meta-prompt)  (the only part the layout changes);
- optimizer completion tokens: expected = 8 x tokens("<INS>" + a candidate + "</INS>")
  (both layouts ask for exactly that); cap = 8 x optimizer_max_tokens;
- task prompt tokens = 8 x 48 dev prompts + 144 test prompts of the rendered task prompt
  (identical for both layouts); completion cap = 528 x task_max_tokens.

Tokenizer: SmolLM2-135M-Instruct's BPE via ``llama_cpp.Llama(vocab_only=True).tokenize``
(the embedded model); also OpenAI's o200k_base (tiktoken, with the encoding files litellm
bundles) when the peer venv (benchmarks/.venv-peer) exists. Message text only (no chat
template tokens, which are the same per call in both layouts).

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", default="date_understanding,navigate,object_counting")
    a = ap.parse_args()

    import llama_cpp

    from gpo_core.models.local_llama import default_gguf_path
    from gpo_core.optimizer.direction import Retrieved
    from gpo_core.optimizer.metaprompt import build_meta_prompt, pick_exemplars
    from gpo_core.optimizer.schedule import edit_budget
    from gpo_core.scoring.task_prompt import render_task_prompt
    from gpo_core.settings import default_run_settings
    from gpo_core.tasks.splits import split_task

    settings = default_run_settings("openai", preset="paper")  # the paper's settings (GPO.sh)
    cfg = settings.optimizer
    assert (cfg.candidates, cfg.k, cfg.n_exemplars, cfg.steps) == (CANDIDATES, K, N_EXEMPLARS, STEPS)
    vocab = llama_cpp.Llama(model_path=str(default_gguf_path()), vocab_only=True, verbose=False)

    def smol(text: str) -> int:
        return len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    retrieved = [Retrieved(i, p, acc, i, None, "bench") for i, (p, acc) in enumerate(TRAJECTORY)]
    expected_reply = f"<INS>{TYPICAL_CANDIDATE}</INS>"
    rows, texts = [], []
    for name in a.tasks.split(","):
        task = bbh_task(name)
        splits = split_task(task, dev_size=DEV, test_size=TEST, seed=0)
        metas = {"gpo_studio": [], "paper": []}
        for t in range(1, STEPS + 1):
            rng = random.Random(f"{settings.splits.seed}:{t}:1")
            ex = pick_exemplars(splits.exemplars, N_EXEMPLARS, rng)
            budget = edit_budget(t, kind=cfg.schedule, initial=cfg.budget_initial, final=cfg.budget_final,
                                 total_steps=cfg.steps, warmup=cfg.warmup)
            for layout in metas:
                metas[layout].append(build_meta_prompt(retrieved=retrieved, current_prompt=CURRENT, exemplars=ex,
                                                       position=task.instruction_position, budget=budget,
                                                       layout=layout))
        task_prompts = [render_task_prompt(TYPICAL_CANDIDATE, e.input, task.instruction_position)
                        for e in splits.dev] * CANDIDATES
        task_prompts += [render_task_prompt(TYPICAL_CANDIDATE, e.input, task.instruction_position)
                         for e in splits.test]
        task_tok = sum(smol(p) for p in task_prompts)
        row = {"task": name, "task_prompt_tokens": task_tok, "task_calls": len(task_prompts)}
        for layout, ms in metas.items():
            per_meta = sum(smol(m) for m in ms) / len(ms)
            row[f"{layout}_meta_tokens"] = r(per_meta, 1)
            row[f"{layout}_optimizer_prompt_tokens"] = r(CANDIDATES * per_meta, 0)
            row[f"{layout}_step_prompt_tokens"] = r(CANDIDATES * per_meta + task_tok, 0)
            texts.append((name, layout, ms))
        rows.append(row)
        print(f"{name}: meta-prompt {row['gpo_studio_meta_tokens']} (ours) vs {row['paper_meta_tokens']} (paper) "
              f"tokens; task prompts {task_tok} tokens/step", flush=True)

    # second tokenizer (OpenAI o200k_base), when the peer venv with tiktoken exists
    flat = [m for _, _, ms in texts for m in ms]
    counts = o200k_counts(flat)
    if counts is not None:
        i = 0
        for name, layout, ms in texts:
            row = next(x for x in rows if x["task"] == name)
            row[f"{layout}_meta_tokens_o200k"] = r(sum(counts[i:i + len(ms)]) / len(ms), 1)
            i += len(ms)

    reply_tok = smol(expected_reply)
    ours = sum(x["gpo_studio_step_prompt_tokens"] for x in rows) / len(rows)
    paper = sum(x["paper_step_prompt_tokens"] for x in rows) / len(rows)
    ours_opt = sum(x["gpo_studio_optimizer_prompt_tokens"] for x in rows) / len(rows)
    paper_opt = sum(x["paper_optimizer_prompt_tokens"] for x in rows) / len(rows)
    not_more = all(x["gpo_studio_meta_tokens"] <= x["paper_meta_tokens"] for x in rows)
    emit({
        "figure": "tokens",
        "goal": "prompt + completion tokens per step with our meta-prompt <= the paper's layout "
                "(same k, exemplars, candidates)",
        "measured": (f"optimizer prompt {ours_opt:.0f} vs {paper_opt:.0f} tokens/step "
                     f"({100 * (ours_opt / paper_opt - 1):+.0f}%); "
                     f"whole step {ours:.0f} vs {paper:.0f} ({100 * (ours / paper - 1):+.1f}%)"),
        "met": not_more,
        "tokenizer": "SmolLM2-135M-Instruct BPE (llama_cpp vocab_only); o200k_base (tiktoken) where shown",
        "per_task": rows,
        "optimizer_completion_tokens_expected": CANDIDATES * reply_tok,
        "optimizer_completion_tokens_cap": CANDIDATES * settings.optimizer_model.max_tokens,
        "task_completion_tokens_cap": (CANDIDATES * DEV + TEST) * settings.task_model.max_tokens,
        "note": "completion tokens and task prompt tokens are the same for both layouts (both ask for one "
                "<INS>-tagged instruction; the task prompts do not depend on the meta-prompt)",
    })


if __name__ == "__main__":
    main()
