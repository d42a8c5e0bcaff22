"""Optimization quality on BIG-Bench Hard: GPO against its ablations and baselines (issue 6).

Reproduces the comparisons of GPO (Tang et al. 2024, arXiv 2402.17564, Sec. 4 and the
ablations of Sec. 5) on tasks read from ``../shared/data/bbh/<task>/`` (the paper's
train / eval / test splits and ``format.jsonl`` exemplars; never copied). For every task it
reports the TEST accuracy of:

1. ``start``  - the starting instruction "Let's think step by step." at Q_end;
   ``empty``  - no instruction at all;
2. ``gpo``    - GPO as in the paper and its reference code (RUCAIBox/GPO): relevance k=3
   retrieved from the chosen path (start prompt + the prompt chosen at each step) in the
   reference order, generation-based update with the GPO meta-prompt layout (answers
   between <START> and <END>), cosine edit budget 50 -> 10, exemplars drawn once per run,
   N candidates a step, dev = the task's eval split, every prompt scored with the reference
   protocol (plain question + instruction, then an answer re-prompt: two calls an example);
3. ablations on the same budget of model calls (steps x N optimizer calls + steps x N x dev
   task-model calls): ``recency`` / ``importance`` instead of relevance, ``fixed`` /
   ``linear`` instead of the cosine schedule, ``no_budget`` (no edit budget sentence), and
   ``ape`` - an APE-like baseline: each step N prompts are resampled from task exemplars
   alone (:data:`APE_TEMPLATE`, no trajectory, no current prompt) and the best on dev is
   kept.

Our variants run as whole-run ablations by flag, recorded in every output:
``--protocol single`` (one labelled Q:/A: call an example), ``--layout opro|short`` (OPRO's
wording / our short meta-prompt) and ``--direction all`` (retrieve from every scored
candidate). The protocol applies to every row (dev and test scoring, fixed prompts and APE
included); layout and direction apply to the GPO rows.

Every optimized method's final prompt is the chosen prompt with the best dev accuracy
(the starting prompt included, as :meth:`gpo_core.optimizer.session.GPOSession.best_prompt`), and
only that prompt is scored on test. GPO and the ablations run through the CLI's wiring:
models from one :class:`~gpo_core.models.provider.ModelProvider` and typed
:class:`~gpo_core.settings.RunSettings` (built once, so the embedded model loads once) and a
:class:`~gpo_core.optimizer.session.GPOSession`
driven by ``run_auto`` exactly as :func:`gpo_core.runs.runner.run_cli` does. A shared response
cache (``--cache-dir``) makes identical calls (the starting prompt's scores, step 1 of the
three retrieval strategies, which see the same one-entry trajectory) run once.

Outputs in ``--out`` (default ``benchmarks/results``): ``bbh_quality.md`` (table),
``bbh_quality.csv`` (one row per task x method x seed), ``bbh_quality.json`` (settings,
command, rows, timings), ``bbh_quality.html`` (plotly chart) and ``bbh_quality.png`` when
plotly's kaleido can find Chrome/Chromium. Results are rewritten after every task, so an
interrupted run keeps what it finished.

Usage (from the repository root)::

    python benchmarks/bbh_quality.py                       # embedded SmolLM2, small sizes
    python benchmarks/bbh_quality.py --protocol single --layout opro --direction all  # our variants
    python benchmarks/bbh_quality.py --backend openai --task-model gpt-4o-mini \\
        --optimizer-model gpt-4o --steps 6 --candidates 8 --dev-size 48 --test-size 144
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import random
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a fresh clone: make gpo_core importable
    sys.path.insert(0, str(REPO))

from gpo_core.models.base import ChatRequest, TokenUsage  # noqa: E402
from gpo_core.models.provider import ModelProvider  # noqa: E402
from gpo_core.optimizer.choices import PAPER  # noqa: E402
from gpo_core.optimizer.extraction import extract_candidates  # noqa: E402
from gpo_core.optimizer.metaprompt import pick_exemplars  # noqa: E402
from gpo_core.optimizer.session import GPOSession, Models  # noqa: E402
from gpo_core.optimizer.templates import LAYOUTS  # noqa: E402
from gpo_core.scoring.evaluation import evaluate_many  # noqa: E402
from gpo_core.settings import (  # noqa: E402
    DIRECTION_POOLS,
    LOCAL_DEFAULT_MODEL,
    ModelSettings,
    OptimizerSettings,
    RunSettings,
    SplitSettings,
)
from gpo_core.tasks.io import load_task  # noqa: E402
from gpo_core.tasks.splits import split_task  # noqa: E402
from gpo_core.tasks.task import DEFAULT_INSTRUCTION, Task, TaskSplits  # noqa: E402

#: BBH folder, relative to the repository root (data is read in place, never copied).
DEFAULT_BBH_DIR = Path("..") / "shared" / "data" / "bbh"
#: Six tasks covering the answer types: yes/no, number, multiple choice, yes/no (plausible),
#: true/false, free text (exact match).
DEFAULT_TASKS = ("navigate", "object_counting", "date_understanding", "sports_understanding",
                 "boolean_expressions", "word_sorting")

#: APE-like baseline (Zhou et al. 2022, "Large Language Models Are Human-Level Prompt
#: Engineers", forward-generation template), asked to reply between the same tags as GPO's
#: meta-prompt so the same candidate extraction applies. {pairs}: exemplars as
#: "Input: ...\nOutput: ..." blocks separated by blank lines.
APE_TEMPLATE = ("I gave a friend an instruction and some inputs. The friend read the instruction and wrote "
                "an output for every one of the inputs. Here are the input-output pairs:\n\n{pairs}\n\n"
                "Write the instruction for this task. Reply with only the instruction between <INS> and </INS>.")
APE_PAIR = "Input: {input}\nOutput: {target}"


@dataclass(frozen=True)
class Method:
    """One row of the table. kind: "fixed_prompt" (score ``instruction`` as is), "gpo"
    (a GPOSession with ``overrides`` applied to the paper's OptimizerSettings) or "ape"."""

    id: str
    label: str
    kind: str
    overrides: tuple[tuple[str, object], ...] = ()
    instruction: str | None = None


METHODS: tuple[Method, ...] = (
    Method("start", "start: \"Let's think step by step.\" (Q_end)", "fixed_prompt", instruction=DEFAULT_INSTRUCTION),
    Method("empty", "empty instruction", "fixed_prompt", instruction=""),
    Method("gpo", "GPO (chosen path, relevance k=3, cosine 50->10)", "gpo"),
    Method("recency", "ablation: recency retrieval", "gpo", (("selection", "recency"),)),
    Method("importance", "ablation: importance retrieval", "gpo", (("selection", "importance"),)),
    Method("fixed", "ablation: fixed budget (50)", "gpo", (("schedule", "fixed"),)),
    Method("linear", "ablation: linear budget 50->10", "gpo", (("schedule", "linear"),)),
    Method("no_budget", "ablation: no edit budget", "gpo", (("use_budget", False),)),
    Method("ape", "APE-like: resample from exemplars, keep best", "ape"),
)
METHOD_IDS = tuple(m.id for m in METHODS)


@dataclass
class Settings:
    """Sizes and model settings of one benchmark run (units: examples, words, tokens)."""

    tasks: list[str]
    steps: int
    candidates: int
    k: int
    dev_size: int
    test_size: int
    seeds: list[int]
    exemplars: int
    budget_initial: int
    budget_final: int
    task_max_tokens: int
    optimizer_max_tokens: int
    optimizer_temperature: float
    backend: str
    task_model: str | None
    optimizer_model: str | None
    base_url: str | None
    concurrency: int
    methods: list[str]
    protocol: str = "reference"
    layout: str = "gpo"
    direction: str = "chosen"
    feedback: int = 0

    def variant(self) -> str:
        """One line naming the scoring protocol, meta-prompt layout and direction pool, with
        "(paper)" or "(ours)" after each (labels: :mod:`gpo_core.optimizer.choices`)."""
        return (f"protocol {self.protocol} ({'paper' if self.protocol == PAPER['protocol'] else 'ours'}), "
                f"layout {self.layout} ({'paper' if self.layout == PAPER['layout'] else 'ours'}), "
                f"direction from {self.direction} prompts "
                f"({'paper' if self.direction == PAPER['direction_pool'] else 'ours'})"
                + (f", failure feedback {self.feedback} wrong dev examples (ours)" if self.feedback else ""))

    def model_settings(self, role: str) -> ModelSettings:
        """The ``role`` model's settings from the flags (the task model answers greedily)."""
        name = self.task_model if role == "task" else self.optimizer_model
        temperature = 0.0 if role == "task" else self.optimizer_temperature
        max_tokens = self.task_max_tokens if role == "task" else self.optimizer_max_tokens
        if self.backend == "local":
            return ModelSettings(backend="local", model=name or LOCAL_DEFAULT_MODEL, temperature=temperature,
                                 max_tokens=max_tokens, concurrency=1)
        return ModelSettings(backend="compatible" if self.base_url else "openai", model=name or "",
                             base_url=self.base_url, temperature=temperature, max_tokens=max_tokens,
                             concurrency=self.concurrency)

    def run_settings(self, seed: int, **overrides) -> RunSettings:
        """The paper's GPO settings at this run's sizes, with this run's protocol, layout and
        direction pool (``overrides``: OptimizerSettings fields). Fixed ``steps`` (no
        epochs): the sizes are the benchmark's. test_size=0: the session scores nothing on
        test; only each method's final prompt is tested, by this script."""
        opt = OptimizerSettings(steps=self.steps, candidates=self.candidates, k=self.k, selection="relevance",
                                schedule="cosine", budget_initial=self.budget_initial,
                                budget_final=self.budget_final, use_budget=True, n_exemplars=self.exemplars,
                                direction_pool=self.direction, direction_order="reference", layout=self.layout,
                                exemplar_draw="once", epochs=None, protocol=self.protocol,
                                failure_feedback=self.feedback)
        return RunSettings(splits=SplitSettings(dev_size=self.dev_size, test_size=0, seed=seed),
                           task_model=self.model_settings("task"), optimizer_model=self.model_settings("optimizer"),
                           optimizer=opt.replace(**overrides)).validate("cli")  # errors name the flags


@dataclass
class MethodResult:
    """One (task, method, seed) cell. Accuracies in [0, 1]; calls are logical model calls
    (a call answered from the cache counts, so methods compare on the same call budget);
    new_calls are the ones that actually ran the model; seconds is wall time."""

    task: str
    method: str
    seed: int
    final_prompt: str
    dev_accuracy: float | None
    test_accuracy: float
    n_test: int
    se: float
    optimizer_calls: int = 0
    dev_calls: int = 0
    new_calls: int = 0
    tokens: int = 0
    replies_with_candidate: int = 0
    replies_tagged: int = 0
    candidates_scored: int = 0
    beat_start_on_dev: bool = False
    seconds: float = 0.0
    extraction: dict[str, int] = field(default_factory=dict)


def binomial_se(p: float, n: int) -> float:
    """Standard error sqrt(p(1-p)/n) of an accuracy p measured on n examples (0 if n=0)."""
    return math.sqrt(max(p * (1 - p), 0.0) / n) if n else 0.0


# ------------------------------------------------------------------------------ methods


def _splits(task: Task, s: Settings) -> TaskSplits:
    return split_task(task, dev_size=s.dev_size, test_size=s.test_size, seed=0)


def run_gpo_method(task: Task, method: Method, s: Settings, seed: int, models: Models,
                   run_dir: Path | None) -> tuple[MethodResult, TokenUsage]:
    """GPO or one of its ablations: a GPOSession run to the end with the paper's automatic
    decision (as ``python -m gpo_core run``). Returns the result (test filled in later) and usage."""
    settings = s.run_settings(seed, **dict(method.overrides))
    session = GPOSession.create(task, settings, models, run_dir=run_dir, run_id=f"{task.name}-{method.id}-seed{seed}")
    session.run_auto()
    best = session.best_prompt()
    usage = TokenUsage()
    res = MethodResult(task.name, method.id, seed, best.prompt, best.dev_accuracy, 0.0, 0, 0.0)
    for st in session.state.steps:
        usage = usage.merge(st.usage_optimizer).merge(st.usage_dev)
        res.optimizer_calls += st.usage_optimizer.calls
        res.dev_calls += st.usage_dev.calls
        for call in st.optimizer_calls:
            res.extraction[call.extraction] = res.extraction.get(call.extraction, 0) + 1
            res.replies_with_candidate += bool(call.candidate_ids)
            res.replies_tagged += call.extraction == "tags"
        res.candidates_scored += sum(1 for c in st.candidates if c.status == "scored")
    start_dev = session.state.initial["dev_accuracy"]
    res.beat_start_on_dev = best.dev_accuracy > start_dev
    return res, usage


def ape_meta_prompt(exemplars) -> str:
    """The APE-like meta-prompt: :data:`APE_TEMPLATE` filled with the exemplars."""
    pairs = "\n\n".join(APE_PAIR.format(input=e.input, target=e.target) for e in exemplars)
    return APE_TEMPLATE.format(pairs=pairs)


def run_ape(task: Task, s: Settings, seed: int, models: Models) -> tuple[MethodResult, TokenUsage]:
    """APE-like baseline on GPO's call budget: each of ``steps`` steps draws ``exemplars``
    exemplars (seeded), samples ``candidates`` instructions from the optimizer model with
    :data:`APE_TEMPLATE`, scores the new ones on dev, and keeps the best prompt seen
    (the starting prompt included, like GPO's best_prompt). No trajectory, no edit budget."""
    splits = _splits(task, s)
    kw: dict[str, Any] = dict(answer_type=task.answer_type, position=task.instruction_position, temperature=0.0,
                              max_tokens=s.task_max_tokens, concurrency=s.concurrency, split="dev",
                              protocol=s.protocol)
    start = evaluate_many([task.initial_instruction], splits.dev, models.task, **kw)[0]
    scored: dict[str, float] = {" ".join(task.initial_instruction.split()).lower(): start.accuracy}
    best_prompt, best_dev = task.initial_instruction, start.accuracy
    res = MethodResult(task.name, "ape", seed, best_prompt, best_dev, 0.0, 0, 0.0)
    usage = TokenUsage()
    for t in range(1, s.steps + 1):
        rng = random.Random(f"{seed}:ape:{t}")
        meta = ape_meta_prompt(pick_exemplars(splits.exemplars or splits.train, s.exemplars, rng))
        new: list[str] = []
        for i in range(s.candidates):
            comp = models.optimizer.complete(ChatRequest.user(
                meta, temperature=s.optimizer_temperature, max_tokens=s.optimizer_max_tokens,
                sample_index=(t - 1) * s.candidates + i))
            usage.add(comp)
            res.optimizer_calls += 1
            ext = extract_candidates(comp.text) if not comp.error else None
            method = ext.method if ext else "none"
            res.extraction[method] = res.extraction.get(method, 0) + 1
            res.replies_tagged += method == "tags"
            cands = ext.candidates if ext else []
            res.replies_with_candidate += bool(cands)
            for c in cands:
                key = " ".join(c.split()).lower()
                if key not in scored and c not in new:
                    new.append(c)
        if not new:
            continue
        results = evaluate_many(new, splits.dev, models.task, **kw)
        for c, r in zip(new, results):
            usage = usage.merge(r.usage)
            res.dev_calls += r.usage.calls
            res.candidates_scored += 1
            scored[" ".join(c.split()).lower()] = r.accuracy
            if r.accuracy > best_dev:  # ties: the earlier prompt, as GPOSession.best_prompt (runs/final.py)
                best_prompt, best_dev = c, r.accuracy
    res.final_prompt, res.dev_accuracy = best_prompt, best_dev
    res.beat_start_on_dev = best_dev > start.accuracy
    return res, usage


# ------------------------------------------------------------------------------ one task


def run_task(task_dir: Path, s: Settings, models: Models, *, runs_dir: Path | None,
             log: Callable[[str], None]) -> list[MethodResult]:
    """All methods x seeds on one BBH task; final prompts scored on test together."""
    task = load_task(task_dir, instruction_position="Q_end", initial_instruction=DEFAULT_INSTRUCTION)
    splits = _splits(task, s)
    log(f"[{task.name}] answer type {task.answer_type}; {len(splits.dev)} dev / {len(splits.test)} test; "
        f"{len(splits.exemplars)} format exemplars")
    results: list[MethodResult] = []
    for seed in s.seeds:
        for method in METHODS:
            if method.id not in s.methods:
                continue
            t0 = time.perf_counter()
            if method.kind == "fixed_prompt":
                assert method.instruction is not None
                dev = evaluate_many([method.instruction], splits.dev, models.task, answer_type=task.answer_type,
                                    position=task.instruction_position, max_tokens=s.task_max_tokens,
                                    temperature=0.0, concurrency=s.concurrency, split="dev",
                                    protocol=s.protocol)[0]
                res = MethodResult(task.name, method.id, seed, method.instruction, dev.accuracy, 0.0, 0, 0.0)
                usage = dev.usage
            elif method.kind == "ape":
                res, usage = run_ape(task, s, seed, models)
            else:
                rd = runs_dir / task.name / f"{method.id}-seed{seed}" if runs_dir else None
                if rd is not None and rd.exists():  # --keep-runs: replace an earlier invocation's run
                    shutil.rmtree(rd)
                res, usage = run_gpo_method(task, method, s, seed, models, rd)
            res.tokens = usage.total_tokens
            res.new_calls = usage.calls - usage.cached_calls
            res.seconds = time.perf_counter() - t0
            results.append(res)
            log(f"[{task.name}] seed {seed} {method.id:<10} dev {res.dev_accuracy:.3f}  {res.optimizer_calls} opt + "
                f"{res.dev_calls} dev calls ({res.new_calls} new), {res.seconds:.0f}s; "
                f"prompt {res.final_prompt[:80]!r}")
    # Test: every final prompt of this task in one call (identical prompts are scored once).
    t0 = time.perf_counter()
    prompts = [r.final_prompt for r in results]
    tests = evaluate_many(prompts, splits.test, models.task, answer_type=task.answer_type,
                          position=task.instruction_position, max_tokens=s.task_max_tokens, temperature=0.0,
                          concurrency=s.concurrency, split="test", protocol=s.protocol)
    for r, t in zip(results, tests):
        r.test_accuracy, r.n_test = t.accuracy, t.n
        r.se = binomial_se(t.accuracy, t.n)
    distinct = len(set(prompts))
    log(f"[{task.name}] test: {distinct} distinct prompts x {len(splits.test)} examples in "
        f"{time.perf_counter() - t0:.0f}s")
    return results


# ------------------------------------------------------------------------------ reporting


def summarize(results: list[MethodResult], tasks: list[str], methods: list[str]) -> dict:
    """Per (method, task): mean test accuracy over seeds and its binomial SE on n_test;
    per method: macro average over tasks with SE sqrt(sum se^2)/n_tasks. Returns
    {"cells": {method: {task: {...}}}, "average": {method: {...}}}."""
    cells: dict[str, dict[str, dict]] = {}
    average: dict[str, dict] = {}
    for m in methods:
        cells[m] = {}
        for t in tasks:
            rs = [r for r in results if r.method == m and r.task == t]
            if not rs:
                continue
            accs = [r.test_accuracy for r in rs]
            p = sum(accs) / len(accs)
            sd = (math.sqrt(sum((a - p) ** 2 for a in accs) / (len(accs) - 1)) if len(accs) > 1 else None)
            cells[m][t] = {"accuracy": p, "se": binomial_se(p, rs[0].n_test), "n_test": rs[0].n_test,
                           "seeds": len(rs), "seed_sd": sd,
                           "dev": sum((r.dev_accuracy or 0.0) for r in rs) / len(rs)}
        done = [cells[m][t] for t in tasks if t in cells[m]]
        if done:
            average[m] = {"accuracy": sum(c["accuracy"] for c in done) / len(done),
                          "se": math.sqrt(sum(c["se"] ** 2 for c in done)) / len(done), "tasks": len(done)}
    return {"cells": cells, "average": average}


def markdown_table(summary: dict, tasks: list[str], methods: list[str]) -> str:
    """Methods as rows, tasks + average as columns; cells "acc ± se" (test accuracy, %)."""
    labels = {m.id: m.label for m in METHODS}
    done_tasks = [t for t in tasks if any(t in summary["cells"].get(m, {}) for m in methods)]
    head = "| method | " + " | ".join(done_tasks) + " | average |"
    sep = "| --- | " + " | ".join("---:" for _ in done_tasks) + " | ---: |"
    lines = [head, sep]
    for m in methods:
        row = [f"`{m}` {labels.get(m, m)}"]
        for t in done_tasks:
            c = summary["cells"].get(m, {}).get(t)
            row.append(f"{100 * c['accuracy']:.1f} ± {100 * c['se']:.1f}" if c else "")
        a = summary["average"].get(m)
        row.append(f"**{100 * a['accuracy']:.1f}** ± {100 * a['se']:.1f}" if a else "")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def write_outputs(out: Path, results: list[MethodResult], s: Settings, meta: dict, *, name: str = "bbh_quality",
                  png: bool = True, log: Callable[[str], None] = print) -> dict:
    """Write NAME.{md,csv,json,html[,png]} into ``out``; returns the summary.
    The PNG needs kaleido and a Chrome/Chromium (``BROWSER_PATH`` or /usr/bin/chromium);
    when export fails the reason is logged and recorded in the JSON, nothing is raised."""
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(results, s.tasks, s.methods)
    table = markdown_table(summary, s.tasks, s.methods)
    rows = [asdict(r) for r in results]
    with (out / f"{name}.csv").open("w", newline="", encoding="utf-8") as f:
        cols = [k for k in rows[0] if k != "extraction"] + ["extraction"] if rows else []
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({**{k: v for k, v in r.items() if k != "extraction"}, "extraction": json.dumps(r["extraction"])})
    chart_note = _write_chart(out, summary, s, name=name, png=png)
    if chart_note:
        log(chart_note)
    payload = {**meta, "settings": asdict(s), "summary": summary, "rows": rows, "chart": chart_note or "ok"}
    (out / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    n_test = s.test_size
    md = [f"# BBH optimization quality ({meta.get('status', 'done')})", "",
          f"Command: `{meta.get('command', '')}`", "",
          f"Test accuracy (%) of each method's final prompt, mean over seeds {s.seeds}; ± is the binomial "
          f"standard error sqrt(p(1-p)/n) on n = {n_test} test examples per task (average: sqrt(sum se^2)/tasks).", "",
          table, "",
          f"Sizes: {s.steps} steps x {s.candidates} candidates, k={s.k}, dev {s.dev_size}, test {s.test_size}, "
          f"{s.exemplars} exemplars, task max tokens {s.task_max_tokens}, optimizer max tokens "
          f"{s.optimizer_max_tokens}; backend {s.backend} (task model {meta.get('task_model')}, optimizer model "
          f"{meta.get('optimizer_model')}); {s.variant()}. Wall time {meta.get('wall_seconds', 0) / 60:.1f} min.", ""]
    if len(s.seeds) > 1:
        md += ["## Test accuracy (%) per seed", "",
               f"Each cell lists seeds {' / '.join(str(x) for x in s.seeds)} (the seed changes the exemplar draws and "
               "the optimizer's samples; the dev and test examples stay the same).", "",
               "| method | " + " | ".join(s.tasks) + " |", "| --- | " + " | ".join("---:" for _ in s.tasks) + " |"]
        for m in s.methods:
            cells = []
            for t in s.tasks:
                by_seed = {r.seed: r.test_accuracy for r in results if r.method == m and r.task == t}
                cells.append(" / ".join(f"{100 * by_seed[x]:.0f}" if x in by_seed else "-" for x in s.seeds))
            md.append(f"| `{m}` | " + " | ".join(cells) + " |")
        md.append("")
    md += ["## Final prompts and call budgets", "",
           "| task | method | seed | dev | test | optimizer calls | dev calls | new calls "
           "| replies with a candidate (tagged) | final prompt |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in results:
        prompt = r.final_prompt.replace("|", "\\|").replace("\n", " ")
        prompt = (prompt[:117] + "...") if len(prompt) > 120 else prompt
        dev = f"{r.dev_accuracy:.2f}" if r.dev_accuracy is not None else ""
        reply = f"{r.replies_with_candidate}/{r.optimizer_calls} ({r.replies_tagged})" if r.optimizer_calls else ""
        md.append(f"| {r.task} | {r.method} | {r.seed} | {dev} | {r.test_accuracy:.2f} | {r.optimizer_calls} | "
                  f"{r.dev_calls} | {r.new_calls} | {reply} | {prompt or '(empty)'} |")
    (out / f"{name}.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    return summary


def _write_chart(out: Path, summary: dict, s: Settings, *, name: str, png: bool) -> str | None:
    import plotly.graph_objects as go

    labels = {m.id: m.label for m in METHODS}
    tasks = [t for t in s.tasks if any(t in summary["cells"].get(m, {}) for m in s.methods)] + ["average"]
    fig = go.Figure()
    for m in s.methods:
        ys, es = [], []
        for t in tasks:
            c = summary["average"].get(m) if t == "average" else summary["cells"].get(m, {}).get(t)
            ys.append(c["accuracy"] if c else None)
            es.append(c["se"] if c else None)
        fig.add_bar(name=f"{m}: {labels.get(m, m)}", x=tasks, y=ys, error_y=dict(type="data", array=es, visible=True))
    fig.update_layout(barmode="group", title=f"BBH test accuracy by method ({s.backend}: {s.steps} steps x "
                      f"{s.candidates} candidates, dev {s.dev_size}, test {s.test_size}; {s.protocol} protocol, "
                      f"{s.layout} layout, direction {s.direction}; bars ± binomial SE)",
                      yaxis=dict(title="test accuracy", range=[0, 1]), xaxis_title="task",
                      legend_title="method", width=1400, height=600, template="plotly_white")
    fig.write_html(out / f"{name}.html", include_plotlyjs="cdn")
    if not png:
        return "PNG export skipped (--no-png)"
    try:
        if not os.environ.get("BROWSER_PATH"):
            for cand in ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"):
                if Path(cand).exists():
                    os.environ["BROWSER_PATH"] = cand
                    break
        fig.write_image(out / f"{name}.png", width=1400, height=600)
    except Exception as exc:  # noqa: BLE001 - kaleido/Chrome missing: keep the HTML, say why
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        return f"PNG export failed ({type(exc).__name__}: {first}); the HTML chart was written"
    return None


# ------------------------------------------------------------------------------ main


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--tasks", default=",".join(DEFAULT_TASKS), help="comma-separated BBH task folders")
    p.add_argument("--bbh-dir", default=str(DEFAULT_BBH_DIR), help="BBH data folder (relative to the repo root)")
    p.add_argument("--methods", default=",".join(METHOD_IDS), help="comma-separated subset of " + ",".join(METHOD_IDS))
    p.add_argument("--steps", type=int, default=2, help="optimization steps T per method (paper: 18)")
    p.add_argument("--candidates", type=int, default=3, help="candidates sampled per step N (paper: 8)")
    p.add_argument("--k", type=int, default=3, help="trajectory prompts retrieved per step (paper: 3)")
    p.add_argument("--dev-size", type=int, default=4, help="first examples of the eval split used as dev (paper: 48)")
    p.add_argument("--test-size", type=int, default=12, help="first examples of the test split (paper: 144)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (exemplar draws and sampling)")
    p.add_argument("--exemplars", type=int, default=3, help="task exemplars in each meta-prompt (paper: 3)")
    p.add_argument("--budget-initial", type=int, default=50, help="edit budget at step 1 (words)")
    p.add_argument("--budget-final", type=int, default=10, help="edit budget at step T (words)")
    p.add_argument("--task-max-tokens", type=int, default=20, help="completion cap of task-model calls (tokens)")
    p.add_argument("--optimizer-max-tokens", type=int, default=48, help="completion cap of optimizer calls (tokens)")
    p.add_argument("--optimizer-temperature", type=float, default=1.0, help="optimizer sampling temperature")
    p.add_argument("--backend", choices=["local", "openai"], default="local",
                   help="local = embedded SmolLM2-135M-Instruct; openai = OpenAI or any compatible server")
    p.add_argument("--task-model", default=None, help="task model (scorer) name, openai backend")
    p.add_argument("--optimizer-model", default=None, help="optimizer model name, openai backend")
    p.add_argument("--base-url", default=None,
                   help="OpenAI-compatible base URL (default $OPENAI_BASE_URL); key from $OPENAI_API_KEY")
    p.add_argument("--concurrency", type=int, default=8, help="calls in flight (the embedded model always runs 1)")
    p.add_argument("--protocol", choices=("reference", "single"), default="reference",
                   help="scoring protocol of every row: reference = question and instruction without labels, then "
                        "an answer re-prompt (paper, 2 calls an example); single = one labelled Q:/A: call (ours)")
    p.add_argument("--layout", choices=tuple(LAYOUTS), default="gpo",
                   help="meta-prompt layout of the GPO rows: gpo (reference code, <START>/<END>), opro (OPRO's "
                        "wording), short (ours)")
    p.add_argument("--direction", choices=DIRECTION_POOLS, default="chosen",
                   help="update direction of the GPO rows retrieved from: chosen = start prompt + chosen prompts "
                        "(paper), all = every scored candidate (ours)")
    p.add_argument("--feedback", type=int, default=0, metavar="N",
                   help="ablation: failure feedback, N wrong dev examples of the current prompt in each meta-prompt "
                        "of the GPO rows (default 0 = off, the paper's setting)")
    p.add_argument("--out", default="benchmarks/results", help="output folder for NAME.*")
    p.add_argument("--cache-dir", default=None, help="response cache folder shared by all methods "
                   "(default: a temporary folder, i.e. no reuse across invocations)")
    p.add_argument("--keep-runs", action="store_true", help="save each GPO session's run.json under CACHE_DIR/runs")
    p.add_argument("--name", default="bbh_quality",
                   help="file stem of the outputs in --out (NAME.md/.csv/.json/.html/.png)")
    p.add_argument("--no-png", action="store_true", help="skip the PNG export of the chart")
    return p


def _csv_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None, *, models: Models | None = None,
         log: Callable[[str], None] | None = None) -> dict:
    """Run the benchmark; returns the JSON payload written to ``--out``.

    models: inject models (tests pass scripted fakes); default: built from the flags by a
    :class:`~gpo_core.models.provider.ModelProvider`, responses cached in ``--cache-dir``.
    Raises GPOError (ConfigError, TaskFormatError, ...) for bad settings/data."""
    argv = list(sys.argv[1:] if argv is None else argv)
    a = _parser().parse_args(argv)
    log = log or (lambda line: print(line, flush=True))
    methods = _csv_list(a.methods)
    unknown = [m for m in methods if m not in METHOD_IDS]
    if unknown:
        raise SystemExit(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHOD_IDS)}")
    s = Settings(tasks=_csv_list(a.tasks), steps=a.steps, candidates=a.candidates, k=a.k, dev_size=a.dev_size,
                 test_size=a.test_size, seeds=[int(x) for x in _csv_list(a.seeds)], exemplars=a.exemplars,
                 budget_initial=a.budget_initial, budget_final=a.budget_final, task_max_tokens=a.task_max_tokens,
                 optimizer_max_tokens=a.optimizer_max_tokens, optimizer_temperature=a.optimizer_temperature,
                 backend=a.backend, task_model=a.task_model, optimizer_model=a.optimizer_model,
                 base_url=a.base_url or os.environ.get("OPENAI_BASE_URL"), concurrency=a.concurrency,
                 methods=[m for m in METHOD_IDS if m in methods], protocol=a.protocol, layout=a.layout,
                 direction=a.direction, feedback=a.feedback)
    if not s.tasks or not s.methods or not s.seeds:
        raise SystemExit("--tasks, --methods and --seeds must each name at least one item")
    s.run_settings(0)  # validate sizes and model settings before any model is built
    bbh = Path(a.bbh_dir)
    if not bbh.is_absolute():
        bbh = (Path.cwd() / bbh) if (Path.cwd() / bbh).exists() else REPO / bbh
    task_dirs = [bbh / t for t in s.tasks]
    missing = [str(d) for d in task_dirs if not d.is_dir()]
    if missing:
        raise SystemExit(f"BBH task folder(s) not found: {', '.join(missing)}")

    tmp = None
    if a.cache_dir:
        cache_dir = Path(a.cache_dir)
    else:
        import tempfile
        tmp = tempfile.TemporaryDirectory(prefix="bbh_quality_")
        cache_dir = Path(tmp.name)
    cache_dir.mkdir(parents=True, exist_ok=True)
    runs_dir = cache_dir / "runs" if a.keep_runs else None
    if models is None:
        provider = ModelProvider(cache_path=cache_dir / "responses.sqlite")
        models = provider.models(s.run_settings(0), need_embedder="gpo" in s.methods or "fixed" in s.methods
                                 or "linear" in s.methods or "no_budget" in s.methods)
    n_opt_methods = sum(1 for m in METHODS if m.id in s.methods and m.kind != "fixed_prompt")
    per_method = s.steps * (s.candidates + s.candidates * s.dev_size)
    upper = len(s.tasks) * len(s.seeds) * (n_opt_methods * per_method + 2 * s.dev_size) \
        + len(s.tasks) * len(s.seeds) * len(s.methods) * s.test_size
    log(f"plan: {len(s.tasks)} tasks x {len(s.seeds)} seeds x {len(s.methods)} methods; each optimizing method "
        f"spends {s.steps} x ({s.candidates} optimizer + {s.candidates} x {s.dev_size} dev) = {per_method} calls; "
        f"at most {upper} model calls before cache hits and de-duplication"
        f"{' (x2 with the reference protocol answer re-prompt)' if s.protocol == 'reference' else ''}; "
        f"{s.variant()}")

    command = "python benchmarks/bbh_quality.py " + " ".join(shlex.quote(x) for x in argv)
    meta = {"command": command.strip(), "task_model": getattr(models.task, "name", None),
            "optimizer_model": getattr(models.optimizer, "name", None),
            "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
                       f"Python {platform.python_version()}",
            "status": "running"}
    out = Path(a.out)
    results: list[MethodResult] = []
    t0 = time.perf_counter()
    try:
        for i, d in enumerate(task_dirs):
            results += run_task(d, s, models, runs_dir=runs_dir, log=log)
            meta["wall_seconds"] = time.perf_counter() - t0
            meta["status"] = "done" if i == len(task_dirs) - 1 else f"partial: {i + 1} of {len(task_dirs)} tasks"
            log(f"[{d.name}] done; {meta['wall_seconds'] / 60:.1f} min so far")
            last = i == len(task_dirs) - 1
            summary = write_outputs(out, results, s, meta, name=a.name, png=not a.no_png and last, log=log)
    finally:
        if tmp is not None:
            tmp.cleanup()
    log("")
    log(markdown_table(summary, s.tasks, s.methods))
    log(f"\nwall time {meta['wall_seconds'] / 60:.1f} min; results in {out}/{a.name}.*")
    return json.loads((out / f"{a.name}.json").read_text(encoding="utf-8"))


if __name__ == "__main__":
    from gpo_core.errors import GPOError

    try:
        main()
    except GPOError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
