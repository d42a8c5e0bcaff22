"""Issue 14: the embedded models measured per role (optimizer model, task model), threads, memory, step time.

Prints numbers beside goals; asserts nothing. Each part runs in a child process per model so
peak RSS and llama.cpp's counters belong to one model.

- optimizer: over M meta-prompts (default 40: 8 from each of 5 sample tasks, built by
  ``build_meta_prompt`` with the GPO layout, varied exemplars, current prompts, retrieved
  prompts, scores and edit budgets; seeded), one optimizer call each with the app's
  optimizer settings (temperature 1.0, 200 tokens) under the layout's reply grammar, as the
  engine sends it to embedded models. A reply is USABLE when it yields a candidate that is
  tagged, instruction-like (3+ words, not chatter) and not refused as an echo of the
  meta-prompt or an exemplar (:func:`gpo_core.optimizer.extraction.extract_for_layout`);
  NEW when it also differs from every prompt shown. Also: the first ``--ungrammared``
  meta-prompts without the grammar (the remote path), for comparison. Median s per call,
  prefill / decode tokens/s (llama.cpp's perf counters), peak RSS. Goal: >= 90% usable for
  the default optimizer model.
- task: each model as task model on the sample tasks whose convention only the instruction
  conveys (review_sentiment, date_normalization, ticket_triage): accuracy (Wilson 95%
  interval) under the vague starting instruction vs the hand-written ideal one, on N examples
  (single-call protocol, 128 tokens, as the app scores uploads), and s per answer.
- threads: prefill (one ~300-token meta-prompt) and decode (32 tokens fed one at a time)
  tokens/s at 1 and 2 threads, interleaved, with the 1-minute load average beside each.
- memory: both models and both roles in one process (two handles on the 1.5B file: one
  copy), one call each, plus the MiniLM embedder: copies loaded and peak RSS. Goal < 3 GB.
- step: one GPO step per preset via the CLI (``--steps 1``, the app's default sizes: 4
  candidates, 16 dev examples) on review_sentiment; the step's own seconds from run.json.

The machine is shared: every line carries the 1-minute load average when it was measured.
Outputs: benchmarks/results/embedded_optimizer.json and .md.

Usage: .venv/bin/python benchmarks/embedded_optimizer.py [--parts optimizer,task,threads,memory,step]
       [--meta-prompts 40] [--examples 24] [--ungrammared 10] [--models NAME,NAME] [--report-only]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

OPT_TASKS = ["review_sentiment", "date_normalization", "ticket_triage", "navigation", "object_counting"]
CONVENTION_TASKS = ["review_sentiment", "date_normalization", "ticket_triage"]
GOAL_USABLE = 0.90
GOAL_RSS_MB = 3072.0
RESULTS = BENCH / "results"
#: Prompts a run may have met on any task (plus each task's own start): current / retrieved.
GENERIC_PROMPTS = ["Let's think step by step.", "Answer the question.", "Read the input carefully and answer.",
                   "Give the final answer only.", "Think about the examples, then answer in the same format."]
_CHATTER = re.compile(r"^(sure|here|okay|ok|certainly|of course|i (?:have|would|will|can)|as an ai)\b", re.I)
#: Instruction-like: addresses the task model with a directive or asks it a question (a
#: heuristic; the replies are stored in the JSON output for a human read).
_DIRECTIVE = re.compile(r"\b(answer|classify|label|write|give|determine|identify|count|decide|think|read|format|"
                        r"return|respond|reply|output|choose|select|evaluate|sort|convert|extract|provide|use|"
                        r"list|state|assign|categori[sz]e|tell|find|check|consider|follow|express|mark|rate)\b", re.I)


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def generate_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("sample_generate", REPO / "sample_tasks" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- meta-prompts


def meta_prompts(n: int, seed: int = 14) -> list[dict]:
    """``n`` meta-prompts spread over OPT_TASKS (GPO layout), each with what the echo filter
    and the NEW test need."""
    from gpo_core.optimizer.direction import Retrieved
    from gpo_core.optimizer.metaprompt import build_meta_prompt, pick_exemplars
    from gpo_core.optimizer.proposer import layout_sentences
    from gpo_core.optimizer.templates import EMBEDDED_OPTIMIZER_SYSTEM
    from gpo_core.tasks.io import load_task

    rng = random.Random(seed)
    tasks = {name: load_task(REPO / "sample_tasks" / name) for name in OPT_TASKS}
    out = []
    for i in range(n):
        task = tasks[OPT_TASKS[i % len(OPT_TASKS)]]
        pool = [task.initial_instruction, *GENERIC_PROMPTS]
        current = rng.choice(pool)
        others = rng.sample([p for p in pool if p != current], rng.randint(0, 2))
        retrieved = [Retrieved(j + 1, p, rng.choice([0.1, 0.25, 0.4, 0.55]), j, None, "benchmark")
                     for j, p in enumerate(others)]
        retrieved.insert(0, Retrieved(0, current, rng.choice([0.0, 0.2, 0.35, 0.5]), len(others), None, "newest"))
        exemplars = pick_exemplars(task.examples, 3, random.Random(f"{seed}:{i}"))
        budget = rng.choice([50, 40, 25, 10])
        text = build_meta_prompt(retrieved=retrieved, current_prompt=current, exemplars=exemplars,
                                 position=task.instruction_position, budget=budget, layout="gpo")
        out.append({"task": task.name, "meta": text, "shown": [r.prompt for r in retrieved],
                    "scaffolding": layout_sentences("gpo", task.instruction_position) + [EMBEDDED_OPTIMIZER_SYSTEM],
                    "exemplars": [t for e in exemplars for t in (e.input, e.target)], "index": i})
    return out


def judge(reply: str, mp: dict) -> tuple[bool, bool, str]:
    """(usable, new, why) of one optimizer reply to meta-prompt ``mp`` (see the module doc)."""
    from gpo_core.optimizer.extraction import extract_for_layout
    from gpo_core.optimizer.policies import norm_text
    from gpo_core.optimizer.templates import LAYOUTS

    lay = LAYOUTS["gpo"]
    ext = extract_for_layout(reply, "gpo", scaffolding=mp["scaffolding"], exemplars=mp["exemplars"])
    if not ext.candidates:
        return False, False, f"{ext.method}: {ext.reason}"
    cand = ext.candidates[0]
    if ext.method != "tags" or lay.open_tag not in reply or lay.close_tag not in reply:
        return False, False, "untagged"
    if len(cand.split()) < 3 or _CHATTER.match(cand) or not (_DIRECTIVE.search(cand) or cand.endswith("?")):
        return False, False, "not instruction-like"
    new = norm_text(cand) not in {norm_text(p) for p in mp["shown"]}
    return True, new, "ok" if new else "repeats a prompt shown"


def child_optimizer(model_name: str, n: int, ungrammared: int) -> dict:
    import llama_cpp

    from gpo_core.models.base import ChatRequest
    from gpo_core.models.local_llama import LocalLlamaChatModel
    from gpo_core.optimizer.proposer import grammar_max_words, optimizer_request
    from gpo_core.settings import default_run_settings

    settings = default_run_settings("local")
    settings = settings.replace(optimizer_model=settings.optimizer_model.replace(model=model_name))
    om = settings.optimizer_model
    model = LocalLlamaChatModel(model_name)
    t0 = time.perf_counter()
    model.load()
    load_s = time.perf_counter() - t0
    ctx = model._llm._ctx.ctx
    rows, loads = [], []
    llama_cpp.llama_perf_context_reset(ctx)
    for mp in meta_prompts(n):
        # exactly as the engine sends it: the prompts shown are prompts already tried
        c = model.complete(optimizer_request(settings, mp["meta"], mp["index"], mp["shown"],
                                             grammar_max_words(mp["shown"][0])))
        usable, new, why = judge(c.text, mp) if c.ok else (False, False, f"error: {c.error}")
        rows.append({"task": mp["task"], "seconds": round(c.latency_s, 2), "prompt_tokens": c.prompt_tokens,
                     "completion_tokens": c.completion_tokens, "usable": usable, "new": new, "why": why,
                     "reply": c.text, "threads": model.threads, "load1": load1()})
        loads.append(load1())
        print(f"  [{model_name}] {mp['index']:2d} {mp['task']:<20} {c.latency_s:5.1f}s usable={usable} "
              f"new={new} {why[:50]} | {c.text[:90]!r}", file=sys.stderr, flush=True)
    perf = llama_cpp.llama_perf_context(ctx)
    plain = []  # the remote path: the meta-prompt alone, no system message, no grammar
    for mp in meta_prompts(n)[:ungrammared]:
        c = model.complete(ChatRequest.user(mp["meta"], temperature=om.temperature, max_tokens=om.max_tokens,
                                            sample_index=mp["index"]))
        usable, new, why = judge(c.text, mp) if c.ok else (False, False, f"error: {c.error}")
        plain.append({"usable": usable, "new": new, "why": why, "seconds": round(c.latency_s, 2), "reply": c.text})
    return {
        "model": model_name, "load_s": round(load_s, 2), "calls": len(rows),
        "usable": sum(r["usable"] for r in rows), "new": sum(r["new"] for r in rows),
        "median_s": statistics.median(r["seconds"] for r in rows),
        "prefill_tps": round(perf.n_p_eval / max(1e-9, perf.t_p_eval_ms / 1000), 1),
        "decode_tps": round(perf.n_eval / max(1e-9, perf.t_eval_ms / 1000), 1),
        "peak_rss_mb": round(peak_rss_mb()), "load1_median": statistics.median(loads),
        "ungrammared": {"calls": len(plain), "usable": sum(r["usable"] for r in plain),
                        "median_s": statistics.median(r["seconds"] for r in plain) if plain else None,
                        "rows": plain},
        "rows": rows,
    }


# ----------------------------------------------------------------------------- task model


def child_task(model_name: str, n: int) -> dict:
    from gpo_core.models.local_llama import LocalLlamaChatModel
    from gpo_core.scoring.evaluation import evaluate_many
    from gpo_core.settings import default_model_settings
    from gpo_core.stats import wilson_interval
    from gpo_core.tasks.io import load_task

    ideal = generate_module().IDEAL_INSTRUCTIONS
    tm = default_model_settings("task", "local")
    model = LocalLlamaChatModel(model_name)
    model.load()
    out = []
    for name in CONVENTION_TASKS:
        task = load_task(REPO / "sample_tasks" / name)
        examples = random.Random(f"task:{name}").sample(task.examples, n)
        for kind, instruction in (("vague", task.initial_instruction), ("ideal", ideal[name])):
            t0 = time.perf_counter()
            res = evaluate_many([instruction], examples, model, answer_type=task.answer_type,
                                position=task.instruction_position, temperature=0.0, max_tokens=tm.max_tokens,
                                concurrency=1, split="test", protocol="single")[0]
            wall = time.perf_counter() - t0
            low, high = wilson_interval(res.n_correct, res.n - res.n_errors)
            wrong = [r for r in res.records if not r.correct][:3]
            out.append({"task": name, "instruction": kind, "text": instruction, "correct": res.n_correct,
                        "n": res.n - res.n_errors, "low": low, "high": high, "s_per_answer": round(wall / n, 2),
                        "load1": load1(), "wrong_examples": [{"output": w.raw_output[:160], "target": w.target}
                                                              for w in wrong]})
            print(f"  [{model_name}] {name:<20} {kind:<5} {res.n_correct}/{res.n} {wall / n:.2f}s/answer",
                  file=sys.stderr, flush=True)
    return {"model": model_name, "rows": out, "peak_rss_mb": round(peak_rss_mb())}


# ----------------------------------------------------------------------------- threads, memory


def child_threads(model_name: str, reps: int) -> dict:
    import llama_cpp

    from gpo_core.models.local_llama import LocalLlamaChatModel

    model = LocalLlamaChatModel(model_name, n_threads=1)
    model.load()
    llm = model._llm
    prompt = llm.tokenize(meta_prompts(1)[0]["meta"].encode("utf-8"))
    feed = llm.tokenize(b" Answer with one word: pos or neg, and nothing else, for every review that follows here.")
    feed = (feed * 4)[:32]
    rows = []
    for rep in range(reps):
        for threads in (1, 2):
            llama_cpp.llama_set_n_threads(llm._ctx.ctx, threads, threads)
            llm.reset()
            t0 = time.perf_counter()
            llm.eval(prompt)
            pre = time.perf_counter() - t0
            t0 = time.perf_counter()
            for tok in feed:
                llm.eval([tok])
            dec = time.perf_counter() - t0
            rows.append({"rep": rep, "threads": threads, "prefill_tps": round(len(prompt) / pre, 1),
                         "decode_tps": round(len(feed) / dec, 1), "load1": load1()})
            print(f"  [{model_name}] threads={threads} prefill {len(prompt) / pre:.1f} tok/s decode "
                  f"{len(feed) / dec:.1f} tok/s load {load1()}", file=sys.stderr, flush=True)
    return {"model": model_name, "prompt_tokens": len(prompt), "decode_tokens": len(feed), "rows": rows}


def child_memory() -> dict:
    from gpo_core.models.base import ChatRequest
    from gpo_core.models.embeddings import SentenceTransformerEmbedder
    from gpo_core.models.local_llama import LocalLlamaChatModel, loaded_copies
    from gpo_core.settings import QWEN_CODER_1_5B, SMOLLM2_135M

    task_q, opt_q = LocalLlamaChatModel(QWEN_CODER_1_5B), LocalLlamaChatModel(QWEN_CODER_1_5B, seed=3)
    small = LocalLlamaChatModel(SMOLLM2_135M)
    for m in (task_q, opt_q, small):
        assert m.complete(ChatRequest.user("Say hi.", max_tokens=4)).ok
    emb = SentenceTransformerEmbedder()
    emb.embed(["Let's think step by step.", "Answer with pos or neg."])
    return {"copies": loaded_copies(), "peak_rss_mb": round(peak_rss_mb()), "load1": load1()}


def step_time(preset: str, task: str = "review_sentiment") -> dict:
    """One GPO step of the app's default sizes (``PRESETS["quick"]``: candidates, dev and test
    examples, failure feedback) via the CLI; seconds of the step (its optimizer calls, its candidates on dev and the
    chosen prompt on test) from run.json."""
    from gpo_core.settings import PRESETS

    opt, splits = PRESETS["quick"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "gpo_core", "run", "--task", str(REPO / "sample_tasks" / task), "--steps", "1",
               "--candidates", str(opt.candidates), "--dev-size", str(splits.dev_size), "--test-size",
               str(splits.test_size), "--failure-feedback", str(opt.failure_feedback), "--backend", "local",
               "--model-preset", preset, "--no-cache", "--out", str(out), "--quiet"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            return {"preset": preset, "error": proc.stderr.strip()[-500:]}
        state = json.loads((out / "run.json").read_text(encoding="utf-8"))
        step = state["steps"][0]
        cands = [{"text": c["text"], "dev_accuracy": c.get("dev_accuracy")} for c in step["candidates"]]
        return {"preset": preset, "task": task, "step_seconds": round(step["seconds"], 1),
                "run_seconds": round(wall, 1), "start_dev": state["trajectory"][0].get("dev_accuracy"),
                "candidates": cands, "load1": load1()}


# ----------------------------------------------------------------------------- parent


def run_child(part: str, *args: str) -> dict:
    cmd = [sys.executable, __file__, "--child", part, *args]
    proc = subprocess.run(cmd, capture_output=False, stdout=subprocess.PIPE, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        return {"error": f"child {part} {args} exited {proc.returncode}"}
    return json.loads(lines[-1])


def pct(a: int, b: int) -> str:
    return f"{100 * a / b:.0f}%" if b else "-"


def rejudge(results: dict) -> None:
    """Judge every stored optimizer reply again with the current :func:`judge` (replies and
    meta-prompts are deterministic, so the rule can change without new model calls)."""
    for r in [r for key in OPTIMIZER_VARIANTS for r in results.get(key) or []]:
        if "error" in r:
            continue
        metas = meta_prompts(max(r["calls"], r["ungrammared"]["calls"]))
        for rows in (r["rows"], r["ungrammared"]["rows"]):
            for row, mp in zip(rows, metas):
                if not str(row["why"]).startswith("error"):
                    row["usable"], row["new"], row["why"] = judge(row["reply"], mp)
        r["usable"], r["new"] = sum(x["usable"] for x in r["rows"]), sum(x["new"] for x in r["rows"])
        r["ungrammared"]["usable"] = sum(x["usable"] for x in r["ungrammared"]["rows"])


def report(results: dict) -> list[str]:
    from gpo_core.settings import default_model_settings

    rejudge(results)

    default_opt = default_model_settings("optimizer", "local").model
    lines = [f"# Embedded models (issue 14), {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores shared "
             f"with other work (1-min load average beside each number)", ""]
    for key, title in OPTIMIZER_VARIANTS.items():
        lines += optimizer_table(results.get(key), title, default_opt)
    return lines + other_tables(results)


#: Result keys of the optimizer part: the engine's path, then earlier variants kept for comparison.
OPTIMIZER_VARIANTS = {
    "optimizer": ("as the engine sends it to embedded models: system message + reply grammar, the prompts shown "
                  "are prompts already tried (the reply may not end on one)"),
    "optimizer_variant_no_copy": ("rejected variant: the same, plus n-gram blocking while the model writes (it may not "
                                  "write 8 words in a row of one exemplar or of the meta-prompt's wording): this check "
                                  "then counts 100%, but by eye 4 of 8 navigation replies were the puzzle with a word "
                                  "changed ('Turn right' -> 'Turn left') and one was broken, as before; words got "
                                  "glued ('feltcheap') to slip past the ban, and every such reply costs dev calls"),
    "optimizer_variant_strict_echo": ("earlier variant: the same, but words every exemplar shares (the task's own "
                                      "question) counted as copying an exemplar"),
    "optimizer_variant_no_avoid": "earlier variant: the same, without the prompts already tried",
    "optimizer_variant_no_colon": "earlier variant: the same, but no colon anywhere (cut off 'in the format:')",
    "optimizer_variant_first_system": "earlier variant: a first system message, 80-word grammar admitting colons",
    "optimizer_variant_grammar_only": "earlier variant: 80-word grammar only, no system message",
}


def optimizer_table(rows: list[dict] | None, title: str, default_opt: str) -> list[str]:
    lines: list[str] = []
    if rows:
        lines += [f"## Optimizer model: usable candidates ({title}; GPO layout, temperature 1.0, 200 tokens)", "",
                  "| model | meta-prompts | usable | new | goal | median s/call | prefill tok/s | decode tok/s | "
                  "peak RSS MB | load | without grammar: usable |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            if "error" in r:
                lines.append(f"| {r['error']} |")
                continue
            goal = f">= {GOAL_USABLE:.0%}" + (" (default)" if r["model"] == default_opt else "")
            u = r["ungrammared"]
            lines.append(f"| {r['model']} | {r['calls']} | {pct(r['usable'], r['calls'])} | "
                         f"{pct(r['new'], r['calls'])} | {goal} | {r['median_s']:.1f} | {r['prefill_tps']} | "
                         f"{r['decode_tps']} | {r['peak_rss_mb']} | {r['load1_median']:.1f} | "
                         f"{u['usable']}/{u['calls']} |")
        lines.append("")
    return lines


def other_tables(results: dict) -> list[str]:
    from gpo_core.settings import MODEL_PRESETS

    lines: list[str] = []
    if results.get("task"):
        lines += ["## Task model: vague vs ideal instruction (single-call protocol, 128 tokens)", "",
                  "| model | task | vague | ideal | s/answer | load |", "|---|---|---|---|---|---|"]
        for r in results["task"]:
            if "error" in r:
                lines.append(f"| {r['error']} |")
                continue
            by = {}
            for row in r["rows"]:
                by.setdefault(row["task"], {})[row["instruction"]] = row
            for task, d in by.items():
                cell = {k: f"{v['correct']}/{v['n']} [{100 * v['low']:.0f}-{100 * v['high']:.0f}%]"
                        for k, v in d.items()}
                lines.append(f"| {r['model']} | {task} | {cell['vague']} | {cell['ideal']} | "
                             f"{d['ideal']['s_per_answer']:.2f} | {d['ideal']['load1']} |")
        lines.append("")
    if results.get("threads"):
        lines += ["## Threads: 1 vs 2 (prefill of one meta-prompt, decode of 32 tokens)", "",
                  "| model | threads | prefill tok/s (median) | decode tok/s (median) | loads |",
                  "|---|---|---|---|---|"]
        for r in results["threads"]:
            if "error" in r:
                lines.append(f"| {r['error']} |")
                continue
            for t in (1, 2):
                rows = [x for x in r["rows"] if x["threads"] == t]
                lines.append(f"| {r['model']} | {t} | {statistics.median(x['prefill_tps'] for x in rows)} | "
                             f"{statistics.median(x['decode_tps'] for x in rows)} | "
                             f"{', '.join(str(x['load1']) for x in rows)} |")
        lines.append("")
    if results.get("memory"):
        m = results["memory"]
        lines += ["## Memory: both models, both roles, one process", ""]
        lines.append(f"copies loaded: {m.get('copies')}; peak RSS {m.get('peak_rss_mb')} MB "
                     f"(goal < {GOAL_RSS_MB:.0f} MB); load {m.get('load1')}" if "error" not in m else m["error"])
        lines.append("")
    if results.get("step"):
        sizes = results.get("step_sizes", "4 candidates x 16 dev examples, no test")
        lines += [f"## One GPO step per preset ({sizes}, review_sentiment)", "",
                  "| preset | models | step s | whole CLI run s | start dev | candidates (dev) | load |",
                  "|---|---|---|---|---|---|---|"]
        for r in results["step"]:
            if "error" in r:
                lines.append(f"| {r['preset']} | error: {r['error'][:200]} |")
                continue
            p = MODEL_PRESETS[r["preset"]]
            cands = "; ".join(f"{c['text'][:60]} ({c['dev_accuracy']})" for c in r["candidates"])
            lines.append(f"| {r['preset']} | task {p.task_model}, optimizer {p.optimizer_model} | {r['step_seconds']} "
                         f"| {r['run_seconds']} | {r['start_dev']} | {cands} | {r['load1']} |")
        lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    from gpo_core.settings import EMBEDDED_MODELS, MODEL_PRESETS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="optimizer,task,threads,memory,step")
    ap.add_argument("--models", default=",".join(EMBEDDED_MODELS))
    ap.add_argument("--meta-prompts", type=int, default=40)
    ap.add_argument("--ungrammared", type=int, default=10)
    ap.add_argument("--examples", type=int, default=24)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--presets", default=",".join(MODEL_PRESETS))
    ap.add_argument("--out", default=str(RESULTS / "embedded_optimizer"))
    ap.add_argument("--report-only", action="store_true", help="print the report of the saved JSON, run nothing")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--model", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        fn = {"optimizer": lambda: child_optimizer(a.model, a.meta_prompts, a.ungrammared),
              "task": lambda: child_task(a.model, a.examples), "threads": lambda: child_threads(a.model, a.reps),
              "memory": child_memory}[a.child]
        print(json.dumps(fn()))
        return 0
    parts = [] if a.report_only else a.parts.split(",")
    models = a.models.split(",")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results: dict = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").is_file() else {}
    common = ["--meta-prompts", str(a.meta_prompts), "--ungrammared", str(a.ungrammared), "--examples",
              str(a.examples), "--reps", str(a.reps)]
    for part in parts:
        print(f"== {part} (load {load1()})", file=sys.stderr, flush=True)
        if part in ("optimizer", "task", "threads"):
            fresh = [run_child(part, "--model", m, *common) for m in models
                     if part != "threads" or m == models[-1] or len(models) == 1]
            names = {r.get("model") for r in fresh}  # other models' earlier results are kept
            kept = [r for r in results.get(part) or [] if r.get("model") not in names]
            order = {m: i for i, m in enumerate(EMBEDDED_MODELS)}
            results[part] = sorted(kept + fresh, key=lambda r: order.get(r.get("model"), 99))
        elif part == "memory":
            results["memory"] = run_child("memory")
        elif part == "step":
            from gpo_core.settings import PRESETS

            opt, splits = PRESETS["quick"]
            results["step"] = [step_time(p) for p in a.presets.split(",")]
            results["step_sizes"] = (f"{opt.candidates} candidates x {splits.dev_size} dev examples, the chosen prompt "
                                     f"on {splits.test_size} test examples")
        results.setdefault("meta", {})[part] = {"at": time.strftime("%Y-%m-%d %H:%M:%S"), "load1_end": load1(),
                                               "args": vars(a)}
        out.with_suffix(".json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    text = "\n".join(report(results)) + "\n"
    out.with_suffix(".md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
