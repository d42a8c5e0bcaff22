"""DSPy side of the peer benchmark (figure 2). Runs in the PEER venv (benchmarks/.venv-peer),
because dspy's litellm needs openai<3 while GPO Studio uses openai 3.x.

Protocol (stdin/stdout, one JSON object per line):
  argv[1]: a JSON file {"base_url", "model", "prompts": [...], "examples": [{"input", "target"}], "threads"}
  -> prints {"ready": true, "dspy": version, "warmup_s": ...} after importing dspy and a warm-up
  <- "run"  -> prints {"seconds": wall time of 8 sequential Evaluate calls, "scores": [...]}
  <- "quit" -> exits
Only imports dspy (never gpo_core).
"""

from __future__ import annotations

import json
import re
import sys
import time


def main() -> None:
    spec = json.load(open(sys.argv[1], encoding="utf-8"))
    import dspy

    try:
        dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    except Exception:  # noqa: BLE001 - older/newer API; cache=False below is enough
        pass
    lm = dspy.LM(f"openai/{spec['model']}", api_base=spec["base_url"], api_key="bench-not-a-key", cache=False,
                 num_retries=0)
    dspy.configure(lm=lm)
    devset = [dspy.Example(question=e["input"], answer=e["target"]).with_inputs("question") for e in spec["examples"]]

    def metric(example, pred, trace=None):
        got = re.search(r"\([A-R]\)|\b(yes|no|true|false|valid|invalid)\b", str(getattr(pred, "answer", "")), re.I)
        return bool(got) and got.group(0).lower() == example.answer.strip().lower()

    def program(prompt: str):
        return dspy.Predict(dspy.Signature("question -> answer", instructions=prompt))

    evaluate = dspy.Evaluate(devset=devset, metric=metric, num_threads=int(spec["threads"]),
                             display_progress=False, display_table=False)
    t0 = time.perf_counter()
    dspy.Evaluate(devset=devset[:4], metric=metric, num_threads=4, display_progress=False)(program(spec["prompts"][0]))
    warm = time.perf_counter() - t0
    print(json.dumps({"ready": True, "dspy": dspy.__version__, "warmup_s": warm}), flush=True)

    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "quit":
            break
        if cmd != "run":
            continue
        t0 = time.perf_counter()
        scores = []
        for p in spec["prompts"]:  # one Evaluate per prompt: how DSPy optimizers score candidates
            res = evaluate(program(p))
            scores.append(float(getattr(res, "score", res)))
        print(json.dumps({"seconds": time.perf_counter() - t0, "scores": scores}), flush=True)


if __name__ == "__main__":
    main()
