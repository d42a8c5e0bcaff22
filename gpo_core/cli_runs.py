"""``gpo-studio compare``, ``label`` and ``delete``: saved runs side by side, named, tagged and
removed (see :mod:`gpo_core.runs.compare` and :mod:`gpo_core.runs.labels`).

A RUN argument is a run folder (with ``run.json``) or a run id under ``$GPO_HOME/runs``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gpo_core.cli_evaluate import run_folder
from gpo_core.errors import ConfigError

__all__ = ["add_runs_parsers", "cmd_compare", "cmd_delete", "cmd_label"]


def add_runs_parsers(sub) -> None:
    """Register ``compare``, ``label`` and ``delete`` on the CLI's subparsers."""
    c = sub.add_parser("compare", help="compare 2-6 saved runs: settings diff, final prompts, paired test",
                       description="Compare 2-6 saved runs: the settings that differ, each final prompt with its "
                                   "dev and test accuracy (95% intervals) and a word diff against the first run's, "
                                   "and exact McNemar tests on the test examples each pair of runs shares.")
    c.add_argument("runs", nargs="+", metavar="RUN", help="run folders or run ids (2 to 6, the first is the base "
                                                          "of the word diffs)")
    c.add_argument("--out", default=None, help="also write comparison.json and comparison.html (overlaid curves, "
                                               "self-contained) into this folder")
    c.add_argument("--json", action="store_true", help="print the comparison as JSON instead of text")
    lab = sub.add_parser("label", help="name, tag or annotate a saved run",
                         description="Set a saved run's name, tags or note (label.json in its folder; run.json is "
                                     "not touched). Options not given keep their value.")
    lab.add_argument("run", metavar="RUN")
    lab.add_argument("--name", default=None, help="one line, at most 80 characters ('' clears it)")
    lab.add_argument("--tags", default=None, help="comma- or space-separated tags ('' clears them)")
    lab.add_argument("--note", default=None, help="free text, at most 2000 characters ('' clears it)")
    d = sub.add_parser("delete", help="delete a saved run's folder (asks first)",
                       description="Delete one saved run: its folder under the runs root and nothing else. Refused "
                                   "for links, folders without run.json and runs another live session holds.")
    d.add_argument("run", metavar="RUN", help="run id under $GPO_HOME/runs, or a run folder inside it")
    d.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def _run_dir(arg: str, flag: str) -> Path:
    d = run_folder(arg)
    if d is None:
        raise ConfigError(flag, f"{arg}: no saved run (a run folder with run.json, or a run id under "
                                "$GPO_HOME/runs)")
    return d


def cmd_compare(a: argparse.Namespace) -> int:
    """Print the comparison (text or JSON); with --out write comparison.json and .html. Exit 0."""
    from gpo_core.runs.compare import compare_runs
    from gpo_core.runs.storage import atomic_write_text

    cmp = compare_runs([_run_dir(r, "RUN") for r in a.runs])
    print(json.dumps(cmp.to_dict(), indent=1, ensure_ascii=False) if a.json else cmp.text(), end="" if not a.json
          else "\n", flush=True)
    if a.out:
        from gpo_core.studio.compare_chart import compare_html

        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "comparison.json", json.dumps(cmp.to_dict(), indent=1, ensure_ascii=False))
        atomic_write_text(out / "comparison.html", compare_html(cmp))
        print(f"comparison saved in {out} (comparison.json, comparison.html)", file=sys.stderr, flush=True)
    return 0


def cmd_label(a: argparse.Namespace) -> int:
    """Update a run's label; prints it. Exit 0."""
    import dataclasses

    from gpo_core.runs.labels import load_label, parse_tags, save_label

    run_dir = _run_dir(a.run, "RUN")
    label = load_label(run_dir)
    changes = {}
    if a.name is not None:
        changes["name"] = a.name.strip()
    if a.tags is not None:
        changes["tags"] = parse_tags(a.tags)
    if a.note is not None:
        changes["note"] = a.note
    if not changes:
        raise ConfigError("--name", "give --name, --tags or --note")
    label = dataclasses.replace(label, **changes)
    try:
        label.validate()
    except ConfigError as e:
        raise e.relabeled("--" + e.setting.rsplit(".", 1)[-1]) from None
    save_label(run_dir, label)
    print(f"run {run_dir.name}: name {label.name!r}, tags {', '.join(label.tags) or '(none)'}, "
          f"note {len(label.note)} characters", flush=True)
    return 0


def cmd_delete(a: argparse.Namespace) -> int:
    """Delete a run under the runs root after confirmation. Exit 0 deleted, 1 not confirmed."""
    from gpo_core.runs.labels import delete_run
    from gpo_core.runs.repository import RunStore

    store = RunStore()
    p = Path(a.run)
    run_id = p.name if (p.is_absolute() or "/" in a.run) else a.run
    if p.is_absolute() or "/" in a.run:
        if store.resolve(p).parent != store.root.resolve():
            raise ConfigError("RUN", f"{a.run}: only runs directly under the runs folder {store.root} can be deleted")
    if not a.yes:
        answer = input(f"Delete run {run_id} ({store.root / run_id}) and all its files? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("not deleted", flush=True)
            return 1
    gone = delete_run(store, run_id, owner="cli-delete")
    print(f"deleted {gone}", flush=True)
    return 0
