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


class RunFileError(GPOError):
    """A saved run cannot be read, or a run path escapes the runs folder."""
