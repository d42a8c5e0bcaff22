"""The task of a browser session's next run: a bundled sample, an upload (previewed, then
loaded with a column mapping) or the task of a reopened run; how it is prompted and scored;
and its train/dev/test split (the split sizes live in the draft settings)."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

from gpo_core.errors import ConfigError, GPOError, TaskFormatError
from gpo_core.runs.records import RunState
from gpo_core.settings import SplitSettings, default_run_settings
from gpo_core.studio.draft import DraftSettings
from gpo_core.tasks.decoding import DEFAULT_MAX_BYTES, too_big
from gpo_core.tasks.io import guess_columns, list_sample_tasks, load_task, load_task_bytes, preview_columns
from gpo_core.tasks.splits import split_task
from gpo_core.tasks.task import ANSWER_TYPES, INSTRUCTION_POSITIONS, Example, Task, TaskSplits


@dataclass
class UploadPreview:
    """A parsed upload waiting for its column mapping: file name, bytes, column names,
    first rows (dicts column -> text) and the guessed input/target columns."""

    filename: str
    data: bytes
    digest: str
    columns: list[str]
    rows: list[dict]
    guessed_input: str | None
    guessed_target: str | None


def one_column_error(filename: str, columns: list[str]) -> TaskFormatError:
    """The error for an upload with fewer than two columns: it names the file and its only
    column, says a task needs an input and a target column, and guesses the delimiter."""
    if not columns:
        return TaskFormatError(filename, "the file has no columns; a task needs an input column and a target "
                                         "column", line=1)
    col = columns[0]
    hint = ""
    for sep, name in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
        if sep in col:
            hint = (f" The header looks like several columns joined by {name}: save the file comma-separated "
                    "(or tab-separated as .tsv).")
            break
    return TaskFormatError(filename, f"the file has only one column ({col!r}); a task needs two: an input column "
                                     f"and a target column.{hint}", line=1, field=col)


def task_from_run(state: RunState) -> Task:
    """The task of a saved run, rebuilt from its :class:`RunTask` and saved splits, so a new
    run on the same data needs no upload: train, dev and test are explicit splits in the
    run's order (a new run with the same sizes gets exactly the same examples)."""
    def examples(key: str) -> list[Example]:
        return [Example(d["input"], d["target"]) for d in state.splits.get(key, [])]

    train, exemplars = examples("train"), examples("exemplars")
    t = state.task
    return Task(name=t.name, examples=[], answer_type=t.answer_type, instruction_position=t.instruction_position,
                initial_instruction=t.initial_instruction or state.current_prompt, description=t.description,
                explicit_splits={"train": train, "eval": examples("dev"), "test": examples("test")},
                format_examples=exemplars if exemplars and exemplars != train else [], source=t.source,
                metric=state.settings.optimizer.metric, metric_options=dict(state.settings.optimizer.metric_options))


class TaskDraft:
    """The loaded task (or None), where it came from, the pending upload preview, and the
    split of the next run. ``version`` grows with every load: the Task page keys its task
    widgets on it, so they reset."""

    def __init__(self, draft: DraftSettings):
        self.draft = draft
        self.task: Task | None = None
        self.origin: str = ""
        self.version: int = 0
        self.upload: UploadPreview | None = None

    # Loading ---------------------------------------------------------------------------
    @staticmethod
    def sample_tasks() -> list[tuple[str, Path, str]]:
        """The bundled sample tasks: (name, folder, description)."""
        return list_sample_tasks()

    def load_sample(self, name: str) -> Task:
        """Load a bundled sample task by name (TaskFormatError if it cannot be read; the
        previous task stays loaded then)."""
        for n, path, _ in self.sample_tasks():
            if n == name:
                task = load_task(path)
                self.set_task(task, f"sample task {n}")
                return task
        raise ConfigError("sample task", f"no sample task named {name!r}")

    def preview_upload(self, data: bytes, filename: str) -> UploadPreview:
        """Parse an uploaded file's columns and first rows for the mapping step.
        Raises TaskFormatError naming file, line and field; the loaded task is unchanged and
        the previous upload's preview is cleared (a refused file never leaves the previous
        one ready to load: issue 15, item 9)."""
        if len(data) > DEFAULT_MAX_BYTES:
            self.upload = None
            raise TaskFormatError(filename, too_big(len(data), DEFAULT_MAX_BYTES))
        digest = hashlib.sha256(data).hexdigest()
        if self.upload is not None and self.upload.digest == digest and self.upload.filename == filename:
            return self.upload
        self.upload = None
        try:
            columns, rows = preview_columns(data, filename)
        except ValueError as e:  # a loader slip (e.g. a NaN in the first rows): still name the file
            raise TaskFormatError(filename, str(e)) from None
        if len(columns) < 2:
            raise one_column_error(filename, columns)
        gi, gt = guess_columns(columns)
        self.upload = UploadPreview(filename, data, digest, columns, rows, gi, gt)
        return self.upload

    def clear_upload(self) -> None:
        """Forget the previewed upload (the uploader was emptied, or its file refused)."""
        self.upload = None

    def load_upload(self, input_column: str, target_column: str, answer_type: str | None = None) -> Task:
        """Load the previewed upload as the task with this column mapping. answer_type None
        infers it from the targets. Raises TaskFormatError (file, line, field) or
        ConfigError; the previous task stays loaded then."""
        if self.upload is None:
            raise ConfigError("upload", "upload a file first")
        if len(self.upload.columns) < 2:
            raise one_column_error(self.upload.filename, self.upload.columns)
        if input_column == target_column:
            raise ConfigError("Target column", f"the input and target columns are both {input_column!r}; "
                                               "choose two different columns")
        task = load_task_bytes(self.upload.data, self.upload.filename, input_column=input_column,
                               target_column=target_column, answer_type=answer_type or None)
        self.set_task(task, f"uploaded file {self.upload.filename}")
        return task

    def load_from_run(self, state: RunState, seed: int) -> Task:
        """Load the task of a reopened run (its saved examples and split sizes)."""
        task = task_from_run(state)
        self.set_task(task, f"run {state.run_id} (its saved examples)",
                      SplitSettings(dev_size=len(state.splits.get("dev", [])),
                                    test_size=len(state.splits.get("test", [])), seed=seed))
        return task

    def set_task(self, task: Task, origin: str, splits: SplitSettings | None = None) -> None:
        """Make ``task`` the loaded task and size the draft split for it: ``splits`` when
        given, the task's own splits for a split folder, else quick sizes for its length."""
        self.task = task
        self.origin = origin
        self.version += 1
        n = len(task.examples)
        seed = self.draft.settings.splits.seed
        if splits is not None:
            pass
        elif task.explicit_splits:
            splits = SplitSettings(dev_size=len(task.explicit_splits.get("eval", [])),
                                   test_size=len(task.explicit_splits.get("test", [])), seed=seed)
        else:
            quick = default_run_settings("local").splits
            cap_dev, cap_test = quick.dev_size or 16, quick.test_size or 16
            dev = min(cap_dev, max(1, n // 4)) if n else cap_dev
            test = min(cap_test, max(0, n - dev - 3)) if n else cap_test
            splits = SplitSettings(dev_size=dev, test_size=test, seed=seed)
        # the metric the task suggests (task.json; a run's own), "" = its answer type's
        opt = self.draft.settings.optimizer.replace(metric=task.metric, metric_options=dict(task.metric_options))
        self.draft.settings = self.draft.settings.replace(splits=splits, optimizer=opt)

    # Prompting and splits ----------------------------------------------------------------
    def update_task(self, *, answer_type: str, instruction_position: str, initial_instruction: str) -> Task:
        """Change how the loaded task is prompted and scored (ConfigError on a bad value)."""
        if self.task is None:
            raise ConfigError("task", "load a task first")
        if answer_type not in ANSWER_TYPES:
            raise ConfigError("answer_type", f"must be one of {', '.join(ANSWER_TYPES)}")
        if instruction_position not in INSTRUCTION_POSITIONS:
            raise ConfigError("instruction_position", f"must be one of {', '.join(INSTRUCTION_POSITIONS)}")
        if not initial_instruction.strip():
            raise ConfigError("initial_instruction", "the starting instruction is empty")
        self.task = dataclasses.replace(self.task, answer_type=answer_type, instruction_position=instruction_position,
                                        initial_instruction=initial_instruction.strip())
        return self.task

    def update_splits(self, *, dev_size: int | None, test_size: int | None, train_size: int | None = None,
                      seed: int = 0) -> TaskSplits:
        """Set split sizes (examples) and seed; returns the resulting split (ConfigError
        naming the size when the task is too small; the previous sizes stay then)."""
        splits = SplitSettings(dev_size, test_size, train_size, seed).validate("app")
        previous = self.draft.settings
        self.draft.settings = previous.replace(splits=splits)
        try:
            return self.splits()
        except GPOError:
            self.draft.settings = previous
            raise

    def splits(self) -> TaskSplits:
        """The train/dev/test split the next run will use (ConfigError if impossible)."""
        if self.task is None:
            raise ConfigError("task", "load a task first")
        s = self.draft.settings.splits
        return split_task(self.task, dev_size=s.dev_size, test_size=s.test_size, train_size=s.train_size, seed=s.seed)
