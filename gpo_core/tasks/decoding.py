"""Task file bytes to text: the size limit, UTF-8 decoding with line-numbered errors, line ends.

Part of task loading; the public entry points and the format rules are in
:mod:`gpo_core.tasks.io`.
"""

from __future__ import annotations

from pathlib import Path

from gpo_core.errors import TaskFormatError

#: Largest task file accepted, in bytes (20 MB), per file.
DEFAULT_MAX_BYTES = 20 * 1024 * 1024


def read_bytes(p: Path, max_bytes: int) -> bytes:
    """The bytes of file ``p``; TaskFormatError when it is over ``max_bytes`` or unreadable."""
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise TaskFormatError(str(p), too_big(size, max_bytes))
        return p.read_bytes()
    except OSError as e:
        raise TaskFormatError(str(p), f"cannot read file: {e.strerror or e}") from e


def too_big(size: int, max_bytes: int) -> str:
    """The reason given for a file of ``size`` bytes over the limit."""
    return f"file is {size / 1e6:,.1f} MB ({size:,} bytes); the limit is {max_bytes:,} bytes per file"


def decode(data: bytes, filename: str) -> tuple[str, int | None, str]:
    """Text with LF line ends, plus the line and reason of the first undecodable byte (if any)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise TaskFormatError(
            filename, "file is UTF-16 encoded; save it as UTF-8 (in Excel: 'CSV UTF-8 (comma delimited)')"
        )
    nul = data.find(b"\x00")
    if nul >= 0:
        raise TaskFormatError(
            filename,
            "file contains NUL bytes: it is binary or UTF-16 without a byte-order mark; save it as UTF-8 text",
            _line_at(data, nul),
        )
    bad_line: int | None = None
    reason = ""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        start = e.start
        bad_line = _line_at(data, start)
        byte = data[start]
        reason = (
            f"byte 0x{byte:02X} is not valid UTF-8 (the file looks like Latin-1 / Windows-1252); "
            "save it as UTF-8"
        )
        text = data.decode("utf-8-sig", errors="surrogateescape")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text, bad_line, reason


def _line_at(data: bytes, offset: int) -> int:
    """1-based line of byte ``offset``, counting CRLF, CR and LF line ends alike."""
    head = data[:offset]
    return head.count(b"\n") + head.count(b"\r") - head.count(b"\r\n") + 1
