"""The Prompt x model page's logic (no Streamlit): what to score, the background job that
scores it, and the saved matrices to show.

The page picks the examples (the task loaded on the Task page, split as the next run would
split it, or a saved run's own dev/test examples), the prompts (a run's start, final and
trajectory prompts, and prompts typed in, separated by blank lines) and the task models
(the Models page's task model, the embedded models, the demo models in demo mode, and specs
typed as ``backend:model``). :meth:`MatrixWork.submit` scores them in a background job of
the process-wide :class:`~gpo_core.studio.worker.JobRegistry` (slot ``matrix:<owner>``, so a
reload or a page change neither stops nor loses it); the job saves the matrix under
``$GPO_HOME/matrices`` (:func:`gpo_core.runs.matrix.save_matrix`) and its PNG, and the page
lists the saved matrices, newest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gpo_core.errors import ConfigError
from gpo_core.runs.matrix import (
    MatrixModel,
    MatrixResult,
    PromptItem,
    list_matrices,
    load_matrix,
    matrices_root,
    parse_model_spec,
    prompts_from_run,
    prompts_from_text,
    save_matrix,
    save_png,
    score_matrix,
)
from gpo_core.runs.matrix_inputs import MatrixInputs, inputs_from_run, inputs_from_task
from gpo_core.runs.repository import load_run
from gpo_core.settings import EMBEDDED_MODELS
from gpo_core.studio.draft import demo_mode
from gpo_core.studio.worker import Job, JobView

__all__ = ["LOADED_TASK", "MatrixRequest", "MatrixWork"]

#: The examples choice that means "the task loaded on the Task page".
LOADED_TASK = "the loaded task"


@dataclass
class MatrixRequest:
    """What one press of "Score the matrix" asks. source: LOADED_TASK or a saved run's id.
    run_prompts: labels of the run's prompts to score. typed: prompts typed in. models: model
    choices (labels of :meth:`MatrixWork.model_choices`). specs: extra specs, one per line.
    splits: "dev", "test"."""

    source: str
    run_prompts: Sequence[str] = ()
    typed: str = ""
    models: Sequence[str] = ()
    specs: str = ""
    splits: Sequence[str] = ("dev", "test")
    prompts_run: str | None = None
    notes: list[str] = field(default_factory=list)


class MatrixWork:
    """The Prompt x model page of one browser session. studio: its
    :class:`~gpo_core.studio.studio.Studio` (models, loaded task, saved runs, job registry)."""

    def __init__(self, studio, root: Path | None = None):
        self.studio = studio
        self.root = root

    # Choices --------------------------------------------------------------------------
    @property
    def slot(self) -> str:
        """The job registry slot of this browser session's matrix job."""
        return f"matrix:{self.studio.runs.owner}"

    def sources(self) -> list[str]:
        """Where examples can come from: the loaded task (when one is) and saved runs' ids."""
        out = [LOADED_TASK] if self.studio.tasks.task is not None else []
        return out + [r["run_id"] for r in self.studio.runs.saved() if "error" not in r]

    def runs(self) -> list[str]:
        """Saved runs whose prompts can be scored."""
        return [r["run_id"] for r in self.studio.runs.saved() if "error" not in r]

    def run_prompts(self, run_id: str | None) -> list[PromptItem]:
        """A saved run's labelled prompts (start, final, trajectory); [] for None."""
        if not run_id:
            return []
        return prompts_from_run(load_run(self.studio.runs.store().run_dir(run_id)))

    def model_choices(self) -> dict[str, MatrixModel]:
        """Task models one click away: the Models page's task model (its settings as set
        there), the embedded models, and the demo models in demo mode."""
        out: dict[str, MatrixModel] = {}
        tm = self.studio.draft.settings.task_model
        out[f"Models page: {tm.describe()}"] = MatrixModel(tm.describe(), tm)
        if demo_mode():
            for name in ("scripted-task", "scripted-other"):
                m = parse_model_spec(f"demo:{name}")
                out[m.label] = m
        for name in EMBEDDED_MODELS:
            m = parse_model_spec(f"local:{name}")
            out.setdefault(f"embedded: {name}", m)
        return out

    # Building a request ------------------------------------------------------------------
    def prompts(self, req: MatrixRequest) -> list[PromptItem]:
        """The prompts of ``req``: the run prompts picked, then the typed ones (labels "typed N")."""
        chosen = [p for p in self.run_prompts(req.prompts_run) if p.label in set(req.run_prompts)]
        typed = prompts_from_text(req.typed, "typed") if req.typed.strip() else []
        seen = {p.text for p in chosen}
        items = chosen + [p for p in typed if p.text not in seen]
        if not items:
            raise ConfigError("Prompts", "pick a run's prompts or type at least one prompt")
        return items

    def models(self, req: MatrixRequest) -> list[MatrixModel]:
        """The task models of ``req`` (choices, then typed specs). ConfigError naming "Other models"."""
        choices = self.model_choices()
        out = [choices[c] for c in req.models if c in choices]
        for line in req.specs.splitlines():
            if line.strip():
                out.append(parse_model_spec(line.strip(), flag="Other models"))
        if not out:
            raise ConfigError("Task models", "pick at least one task model")
        return out

    def inputs(self, req: MatrixRequest) -> MatrixInputs:
        """The examples and scoring rules of ``req``."""
        if req.source == LOADED_TASK:
            task = self.studio.tasks.task
            if task is None:
                raise ConfigError("Examples", "load a task on the Task page first")
            s = self.studio.draft.settings
            return inputs_from_task(task, splits=req.splits or None, dev_size=s.splits.dev_size,
                                    test_size=s.splits.test_size, seed=s.splits.seed, metric=s.optimizer.metric,
                                    metric_options=s.optimizer.metric_options, protocol=s.optimizer.protocol)
        state = load_run(self.studio.runs.store().run_dir(req.source))
        return inputs_from_run(state, splits=req.splits or None)

    # The job -----------------------------------------------------------------------------
    def submit(self, req: MatrixRequest) -> Job:
        """Check ``req`` (ConfigError before any call) and score it in a background job that
        saves the matrix; the job's result is the saved folder. JobBusyError when one runs."""
        prompts, models, inputs = self.prompts(req), self.models(req), self.inputs(req)
        cfg = self.studio.models
        key = cfg.api_key
        draft_task = self.studio.draft.settings.task_model
        built = [(m, cfg.override.task if cfg.override is not None and m.settings == draft_task  # test seam
                  else cfg.provider.chat_model(m.settings, key if m.settings.backend in ("openai", "compatible")
                                               else None, cfg.use_cache)) for m in models]
        concurrency = max(m.settings.concurrency for m in models)
        root = self.root

        def work(job: Job) -> str:
            result = score_matrix(prompts, built, inputs.splits, task=inputs.task, source=inputs.source,
                                  answer_type=inputs.answer_type, position=inputs.position, metric=inputs.metric,
                                  protocol=inputs.protocol, concurrency=concurrency, on_progress=job.on_progress,
                                  should_stop=job.should_stop)
            folder = save_matrix(result, None if root is None else root / result.matrix_id)
            try:
                from gpo_core.studio.matrix_chart import matrix_png

                save_png(folder, matrix_png(result))
            except RuntimeError as e:  # no kaleido/Chromium: the CSV and the page still have everything
                job.add_log(str(e))
            return str(folder)

        n = len(prompts) * len(models) * len(inputs.splits)
        return self.studio.runs.registry.submit(self.slot, "matrix", f"Scoring {n} cells…", work,
                                                describe=lambda folder: f"Matrix saved in {folder}.")

    def job(self) -> JobView | None:
        """This session's matrix job (running, or finished and not collected), as a view."""
        job = self.studio.runs.registry.get(self.slot)
        return job.view() if job is not None else None

    def stop(self) -> None:
        job = self.studio.runs.registry.get(self.slot)
        if job is not None:
            job.request_stop()

    def collect(self) -> JobView | None:
        """The finished job's outcome once (then it leaves the registry), or None."""
        job = self.studio.runs.registry.collect(self.slot)
        return job.view() if job is not None else None

    # Saved matrices ---------------------------------------------------------------------
    def saved(self) -> list[Path]:
        """Saved matrix folders, newest first."""
        return list_matrices(self.root if self.root is not None else matrices_root())

    @staticmethod
    def load(folder: Path) -> MatrixResult:
        return load_matrix(folder)
