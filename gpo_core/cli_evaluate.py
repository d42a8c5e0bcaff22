"""``gpo-studio evaluate``: score a set of prompts on several task models and splits (the
prompt x model matrix, :mod:`gpo_core.runs.matrix`) and write matrix.csv, matrix.json and
matrix.png.

``--prompts`` is a text file (prompts separated by blank lines; with no blank line, one per
line; ``#`` lines are comments) or a saved run (its folder, or a run id under
``$GPO_HOME/runs``): its start, final and every trajectory prompt, labelled. ``--models`` takes
specs (``openai:gpt-4o-mini``, ``compatible:NAME`` with ``--base-url``, ``local:PATH.gguf``, an
embedded model's name, ``demo:scripted-task``); keys come from ``OPENAI_API_KEY`` only.
Examples: ``--task`` split as a run with the same ``--dev-size/--test-size/--seed`` would be;
without ``--task`` a run's own saved dev/test examples. Calls go through the response cache
(``--cache-dir``, ``--no-cache``) with ``--concurrency`` calls in flight, as runs do.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gpo_core.errors import ConfigError

__all__ = ["add_evaluate_parser", "cmd_evaluate", "run_folder"]


def add_evaluate_parser(sub) -> None:
    """Register the ``evaluate`` subcommand on the CLI's subparsers."""
    e = sub.add_parser("evaluate", help="score prompts on several task models and splits (prompt x model matrix)",
                       description="Score prompts on several task models and splits; writes matrix.csv, "
                                   "matrix.json and matrix.png (95% Wilson intervals; failed calls left out of "
                                   "the accuracy and counted).")
    e.add_argument("--prompts", required=True,
                   help="a text file of prompts (separated by blank lines; with no blank line, one per line; "
                        "# starts a comment) or a saved run (folder or run id): its start, final and trajectory "
                        "prompts")
    e.add_argument("--run-prompts", choices=("all", "start-final"), default="all",
                   help="with a run as --prompts: every trajectory prompt (all) or only the start and final "
                        "prompts (default all)")
    e.add_argument("--models", nargs="+", required=True, metavar="SPEC",
                   help="task models: backend:model (openai:gpt-4o-mini, compatible:NAME with --base-url, "
                        "local:PATH.gguf, demo:scripted-task), an embedded model's name, or a .gguf path; the key "
                        "comes from $OPENAI_API_KEY, never from a spec")
    e.add_argument("--task", default=None, help="task file or folder (default with a run as --prompts: the run's "
                                                "saved dev/test examples)")
    e.add_argument("--split", action="append", choices=("dev", "test"), default=None,
                   help="split to score, repeatable (default: dev and test)")
    e.add_argument("--dev-size", type=int, default=None, help="dev examples (default: as a run's)")
    e.add_argument("--test-size", type=int, default=None, help="test examples (default: as a run's)")
    e.add_argument("--seed", type=int, default=0, help="seed of the split (default 0, as a run's)")
    e.add_argument("--metric", default="", help="metric (default: the task's or the run's)")
    e.add_argument("--protocol", choices=("auto", "reference", "single"), default="auto",
                   help="scoring protocol (default auto: reference for task folders, single for files)")
    e.add_argument("--base-url", default=None, help="OpenAI-compatible base URL for openai:/compatible: specs "
                                                    "(default $OPENAI_BASE_URL)")
    e.add_argument("--concurrency", type=int, default=8, help="model calls in flight at once (default 8)")
    e.add_argument("--out", default=None, help="output folder (default $GPO_HOME/matrices/<id>)")
    e.add_argument("--cache-dir", default=None, help="response cache folder (default: $GPO_HOME/cache)")
    e.add_argument("--no-cache", action="store_true", help="do not read or write the response cache")
    e.add_argument("--no-png", action="store_true", help="write no PNG (needs kaleido and Chromium)")


def run_folder(path: str) -> Path | None:
    """The run folder ``path`` names (a folder with run.json, or a run id under the runs root)."""
    from gpo_core.runs.repository import RUN_FILE, RunStore

    p = Path(path)
    if p.is_dir():
        return p if (p / RUN_FILE).is_file() else None
    if p.suffix or "/" in path:
        return None
    try:
        d = RunStore().run_dir(path)
    except Exception:  # noqa: BLE001 - not a run id: the caller treats it as a file
        return None
    return d if (d / RUN_FILE).is_file() else None


def cmd_evaluate(a: argparse.Namespace) -> int:
    """Run ``evaluate``; prints one line per cell and where the files went. Exit 0."""
    from gpo_core.runs.matrix import parse_model_spec, prompts_from_file, prompts_from_run, save_matrix, score_matrix
    from gpo_core.runs.matrix_inputs import inputs_from_run, inputs_from_task
    from gpo_core.runs.repository import load_run
    from gpo_core.runs.runner import provider_for
    from gpo_core.tasks.io import load_task

    if a.concurrency < 1:
        raise ConfigError("--concurrency", f"must be a whole number >= 1, got {a.concurrency}")
    base_url = a.base_url or os.environ.get("OPENAI_BASE_URL") or None
    models = [parse_model_spec(s, base_url=base_url) for s in a.models]
    run_dir = run_folder(a.prompts)
    state = None
    if run_dir is not None:
        state = load_run(run_dir)
        prompts = prompts_from_run(state, "all" if a.run_prompts == "all" else "start-final")
        origin = f"run {state.run_id}"
    else:
        if not Path(a.prompts).is_file():
            raise ConfigError("--prompts", f"{a.prompts}: no such file or saved run")
        prompts = prompts_from_file(Path(a.prompts))
        origin = a.prompts
    if a.task is not None:
        inputs = inputs_from_task(load_task(Path(a.task).absolute()), splits=a.split, dev_size=a.dev_size,
                                  test_size=a.test_size, seed=a.seed, metric=a.metric, protocol=a.protocol)
    elif state is not None:
        inputs = inputs_from_run(state, splits=a.split, run_dir=run_dir, metric=a.metric)
    else:
        raise ConfigError("--task", "prompts from a file need a task file or folder to score them on")
    provider = provider_for(Path(a.cache_dir) if a.cache_dir else None, not a.no_cache)
    api_key = os.environ.get("OPENAI_API_KEY") or None
    built = [(m, provider.chat_model(m.settings, api_key)) for m in models]
    print(f"{len(prompts)} prompts from {origin} x {len(models)} models x {len(inputs.splits)} splits "
          f"({', '.join(f'{k} {len(v)}' for k, v in inputs.splits.items())} examples) on task {inputs.task}",
          flush=True)
    try:
        result = score_matrix(prompts, built, inputs.splits, task=inputs.task, source=inputs.source,
                              answer_type=inputs.answer_type, position=inputs.position, metric=inputs.metric,
                              protocol=inputs.protocol, concurrency=a.concurrency)
    except KeyboardInterrupt:
        print("interrupted: no matrix saved (answers already received are in the response cache; rerun to "
              "finish quickly)", file=sys.stderr)
        return 130
    out = save_matrix(result, Path(a.out) if a.out else None)
    for c in result.cells:
        print(f"{c.prompt} | {c.model} | {c.split}: {c.text()}", flush=True)
    for split, line in result.baselines.items():
        print(f"{split}: {line}", flush=True)
    for n in result.notes:
        print(f"note: {n}", flush=True)
    if not a.no_png:
        from gpo_core.runs.matrix import save_png
        from gpo_core.studio.matrix_chart import matrix_png

        try:
            save_png(out, matrix_png(result))
        except RuntimeError as e:
            print(f"note: {e}", flush=True)
    print(f"matrix saved in {out} (matrix.csv, matrix.json{'' if a.no_png else ', matrix.png'})", flush=True)
    return 0
