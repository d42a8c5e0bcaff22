"""Write a run's exports as files (the CLI's ``run`` writes them into ``<--out>/exports/``).

Files: ``report.md``, ``report.html`` (self-contained, plotly.js embedded: about 4.8 MB),
``messages.json``, ``openai_snippet.py``, ``promptfoo.yaml``
(:mod:`gpo_core.runs.exports`, :mod:`gpo_core.runs.export_forms`,
:mod:`gpo_core.runs.html_report`). No API key is part of any of them.
"""

from __future__ import annotations

from pathlib import Path

from gpo_core.optimizer.session import GPOSession
from gpo_core.runs.export_forms import messages_json, openai_snippet, promptfoo_config
from gpo_core.runs.exports import export_markdown
from gpo_core.runs.html_report import export_html
from gpo_core.runs.storage import atomic_write_text

#: File name -> builder of its text.
EXPORT_FILES = {
    "report.md": export_markdown,
    "report.html": export_html,
    "messages.json": messages_json,
    "openai_snippet.py": openai_snippet,
    "promptfoo.yaml": promptfoo_config,
}


def write_exports(session: GPOSession, run_dir: Path) -> Path:
    """Write every export of ``session`` into ``run_dir / "exports"`` (atomic writes; links
    out of the run folder refused). Returns that folder. Raises StorageError when the disk
    refuses (one line: file, reason, fix)."""
    folder = Path(run_dir) / "exports"
    folder.mkdir(exist_ok=True)
    for name, build in EXPORT_FILES.items():
        atomic_write_text(folder / name, build(session), base=Path(run_dir))
    return folder
