"""How often the leak flags (gpo_core.optimizer.leaks) fire on BIG-Bench Hard, where they should and where not.

For each BBH task in ../shared/data/bbh the checker is built as a run builds it (exemplar pool: the
task's format split, else train; dev: its eval split) and fed:

- benign instructions (common chain-of-thought and format instructions, and each task's own
  question template: the leading words at least half of its inputs share): any flag is a false
  positive;
- planted leaks: "The answer is <label>." for the task's first label, and 10 words copied from the
  middle of the longest dev input (unless those words are boilerplate found in 3 or more
  examples): a miss is a false negative;
- the final prompts the embedded optimizer produced in the quality benchmark
  (benchmarks/results/bbh_quality*.json): reported with their flags (real candidates, not a
  labelled set).

Prints one row per task and the totals beside the goal (no false positive on the benign set, every
planted leak caught). Run: ``.venv/bin/python benchmarks/leak_flags.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpo_core.optimizer.leaks import BOILERPLATE_EXAMPLES, LeakChecker, label_set, words  # noqa: E402

BBH = ROOT.parent / "shared" / "data" / "bbh"
BENIGN = [
    "Let's think step by step.",
    "Let's work this out in a step by step way to be sure we have the right answer.",
    "Read the question carefully, reason step by step, then give the final answer.",
    "Answer with the letter of the correct option.",
    "Answer with yes or no.",
    "Choose the correct option from (A), (B), (C) or (D) and explain why.",
    "Think about each option before you answer, and give the final answer on its own line.",
    "First restate the question in your own words, then solve it one step at a time.",
]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _template(inputs: list[str]) -> str:
    """The task's question template: the longest run of leading words that at least half of the
    inputs share (e.g. navigate's "If you follow these instructions, do you return to the starting
    point?"); "" when they share none."""
    split = [i.split() for i in inputs]
    best: list[str] = []
    for k in range(1, max(len(w) for w in split) + 1):
        heads: dict[tuple[str, ...], int] = {}
        for w in split:
            if len(w) >= k:
                heads[tuple(w[:k])] = heads.get(tuple(w[:k]), 0) + 1
        head, n = max(heads.items(), key=lambda kv: kv[1], default=((), 0))
        if n < len(split) / 2:
            break
        best = list(head)
    return " ".join(best)


def _final_prompts() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in (ROOT / "benchmarks" / "results").glob("bbh_quality*.json"):
        for row in json.loads(f.read_text(encoding="utf-8")).get("rows", []):
            out.setdefault(row["task"], set()).add(row["final_prompt"])
    return out


def main() -> int:
    finals = _final_prompts()
    fp = fn = benign_n = planted_n = finals_n = finals_flagged = 0
    flagged_finals: list[str] = []
    print(f"{'task':42} {'labels':>6} {'benign':>6} {'false+':>6} {'planted':>7} {'missed':>6} {'finals':>6} "
          f"{'flagged':>7}")
    for task_dir in sorted(p for p in BBH.iterdir() if (p / "eval.jsonl").exists()):
        pool_file = task_dir / "format.jsonl" if (task_dir / "format.jsonl").exists() else task_dir / "train.jsonl"
        pool, dev = _jsonl(pool_file), _jsonl(task_dir / "eval.jsonl")
        checker = LeakChecker.for_run({"exemplars": pool, "dev": dev})
        letters, labels = label_set([e["target"] for e in pool + dev])
        template = _template([e["input"] for e in dev])
        benign = BENIGN + ([template] if template else [])
        false_pos = [t for t in benign if checker.check(t)[0]]
        planted = []
        if letters or labels:
            planted.append(f"The answer is {f'({letters[0]})' if letters else labels[0]}.")
        ws = max((e["input"].split() for e in dev), key=len)
        copied = " ".join(words(" ".join(ws[10:20])))
        shared = sum(copied in " ".join(words(e["input"])) for e in pool + dev)
        if len(ws) >= 30 and shared < BOILERPLATE_EXAMPLES:   # boilerplate is not a copy of an example
            planted.append("Remember that " + " ".join(ws[10:20]) + " and solve it.")
        missed = [t for t in planted if not checker.check(t)[0]]
        mine = sorted(finals.get(task_dir.name, ()))
        hits = [(t, checker.check(t)[1]) for t in mine if checker.check(t)[0]]
        finals_n += len(mine)
        finals_flagged += len(hits)
        flagged_finals += [f"    {task_dir.name}: {t!r}: {notes}" for t, notes in hits]
        fp += len(false_pos)
        fn += len(missed)
        benign_n += len(benign)
        planted_n += len(planted)
        print(f"{task_dir.name:42} {len(letters) + len(labels):>6} {len(benign):>6} {len(false_pos):>6} "
              f"{len(planted):>7} {len(missed):>6} {len(mine):>6} {len(hits):>7}")
        for t in false_pos:
            print(f"    false positive: {t!r}: {checker.check(t)[1]}")
        for t in missed:
            print(f"    missed: {t!r}")
    print(f"\nbenign instructions flagged: {fp} of {benign_n} (goal: 0)")
    print(f"planted leaks missed: {fn} of {planted_n} (goal: 0)")
    print(f"final prompts of the quality benchmark flagged: {finals_flagged} of {finals_n} (no goal: real candidates)")
    for line in flagged_finals:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
