"""The downloads of the open run: the final prompt, the run as JSON (no keys), a report
(Markdown, or self-contained HTML), and the final prompt in the form it is used (chat
messages JSON, an ``openai`` SDK snippet, a promptfoo config)."""

from __future__ import annotations

from gpo_core.runs.export_forms import messages_json, openai_snippet, promptfoo_config
from gpo_core.runs.exports import export_json, export_markdown, final_prompt_text
from gpo_core.runs.html_report import export_html, plotly_js_bytes
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

    def report_html(self) -> str:
        """The report as one self-contained HTML page (charts included; plotly.js embedded,
        :meth:`html_size_note`). Reveals a blind test (recorded, "export")."""
        session = self.runs.require_session()
        session.reveal_test("export")
        return export_html(session)

    def messages(self) -> str:
        """The final prompt's chat messages (JSON, ``{input}`` placeholder). Reveals a blind
        test: it states the test accuracy (recorded, "export")."""
        session = self.runs.require_session()
        session.reveal_test("export")
        return messages_json(session)

    def snippet(self) -> str:
        """A Python script sending the final prompt through the ``openai`` SDK (no key).
        Reveals a blind test (recorded, "export")."""
        session = self.runs.require_session()
        session.reveal_test("export")
        return openai_snippet(session)

    def promptfoo(self) -> str:
        """A promptfoo config (YAML) with the test split as test cases. Reveals a blind test
        (recorded, "export")."""
        session = self.runs.require_session()
        session.reveal_test("export")
        return promptfoo_config(session)

    @staticmethod
    def html_size_note() -> str:
        """How big the HTML report is, for the page: "about 4.8 MB (plotly.js embedded ...)"."""
        return (f"about {plotly_js_bytes() / 1e6:.1f} MB: plotly.js is embedded so it opens offline, "
                "with no CDN")

    def file_name(self, suffix: str) -> str:
        """A download file name such as ``<run id>-final-prompt.txt``."""
        return f"{self.runs.require_session().state.run_id}-{suffix}"
