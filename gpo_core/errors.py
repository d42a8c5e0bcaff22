"""The errors the engine raises on purpose. Each carries a one-line, user-facing message."""

from __future__ import annotations


class GPOError(Exception):
    """Base class of every error the engine raises deliberately."""


class TaskFormatError(GPOError):
    """A task file cannot be loaded.

    The message names the file, the line (1-based, or ``None`` when the whole file is at
    fault) and the field (column or key, or ``None``), e.g.
    ``data.csv, line 7, field 'target': value is blank``.
    """

    def __init__(self, path: str, reason: str, line: int | None = None, field: str | None = None):
        self.path = str(path)
        self.line = line
        self.field = field
        self.reason = reason
        where = [self.path]
        where.append(f"line {line}" if line is not None else "line -")
        where.append(f"field '{field}'" if field is not None else "field -")
        super().__init__(f"{', '.join(where)}: {reason}")


class ConfigError(GPOError):
    """A setting is invalid; raised before any model call is made. Names the setting."""

    def __init__(self, setting: str, reason: str):
        self.setting = setting
        self.reason = reason
        super().__init__(f"setting '{setting}': {reason}")

    def relabeled(self, setting: str) -> ConfigError:
        """The same error naming the setting as ``setting`` (e.g. the CLI flag the user
        typed instead of the engine's field name)."""
        if setting == self.setting:
            return self
        err = ConfigError(setting, self.reason)
        err.__cause__ = self.__cause__
        return err


class ModelError(GPOError):
    """A model call failed for good (after bounded retries)."""


class EndpointDownError(ModelError):
    """Every call of a step failed: the endpoint looks down. The run stays resumable."""


class IncompleteStepError(ModelError):
    """A step (or the starting prompt's score) has dev calls that were not answered even
    after the retry pass: it is saved but not decided, and is completed (only the failed
    calls re-sent) when the run resumes. No decision policy chooses in such a step."""


class CallCeilingError(ModelError):
    """A step made more model calls than its settings allow (optimizer calls + candidates x
    dev examples, with the retry pass, + the chosen prompt on test). Nothing is saved for it."""


class RunFileError(GPOError):
    """A saved run cannot be read, or a run path escapes the runs folder (or is a symbolic
    link inside a run folder)."""


class StorageError(GPOError):
    """The disk refused a read or write the run needs (read-only or full folder, no
    permission): a local fault, never a model failure, raised before model calls are spent
    when a preflight finds it. One line: ``<path>: <reason>. <kept>. <fix>``.

    path: the file or folder; reason: what the system said (e.g. "no space left on
    device"); kept: what is safe on disk (e.g. "Steps 1-3 are saved; step 4 was not
    saved"), or ""; fix: what to do about it."""

    def __init__(self, path: str, reason: str, fix: str, kept: str = ""):
        self.path, self.reason, self.fix, self.kept = str(path), reason, fix, kept
        parts = [f"{self.path}: {reason}.", kept, fix]
        super().__init__(" ".join(p.strip() for p in parts if p and p.strip()))

    def with_kept(self, kept: str) -> StorageError:
        """The same error saying what is kept on disk."""
        err = StorageError(self.path, self.reason, self.fix, kept)
        err.__cause__ = self.__cause__
        return err
