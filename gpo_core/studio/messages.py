"""Messages a browser session shows once, after the page reruns (no Streamlit here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Flash:
    """A message to show once after the page reruns: kind in success|info|warning|error
    (the name of the Streamlit call that shows it)."""

    kind: str
    text: str


class Messages:
    """The queue of messages for the next page run of one browser session."""

    def __init__(self) -> None:
        self._queue: list[Flash] = []

    def flash(self, kind: str, text: str) -> None:
        """Queue a message for the next page run."""
        self._queue.append(Flash(kind, text))

    def pop(self) -> list[Flash]:
        """The queued messages, emptied."""
        out, self._queue = self._queue, []
        return out
