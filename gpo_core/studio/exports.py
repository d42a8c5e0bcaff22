"""The downloads of the open run: the final prompt, the run as JSON (no keys) and a report."""

from __future__ import annotations

from gpo_core.runs.exports import export_json, export_markdown, final_prompt_text
from gpo_core.studio.runs import Runs


class RunExports:
    """Each export is built when called (the Results page passes these methods to its
    download buttons, which call them only when clicked)."""

    def __init__(self, runs: Runs):
        self.runs = runs

    def final_prompt(self) -> str:
        return final_prompt_text(self.runs.require_session())

    def run_json(self) -> str:
        """The run as JSON. A blind test counts as revealed once exported (recorded, "export")."""
        session = self.runs.require_session()
        session.reveal_test("export")
        return export_json(session)

    def report_md(self) -> str:
        """The report. A blind test counts as revealed once exported (recorded, "export")."""
        session = self.runs.require_session()
        session.reveal_test("export")
        return export_markdown(session)

    def file_name(self, suffix: str) -> str:
        """A download file name such as ``<run id>-final-prompt.txt``."""
        return f"{self.runs.require_session().state.run_id}-{suffix}"
