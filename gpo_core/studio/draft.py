"""The draft settings of a browser session's next run: one :class:`RunSettings` that the Task
page (splits), the Models page (one :class:`ModelSettings` per role) and the Optimize page
(the optimizer settings) edit, and that a new run is created with.

Also the app's demo mode switch (``GPO_STUDIO_FAKE_MODELS=1``, for the browser tests): both
roles start on the ``demo`` backend, which the model provider builds like any other.
"""

from __future__ import annotations

import os

from gpo_core.optimizer.schedule import budget_schedule
from gpo_core.settings import OptimizerSettings, RunSettings, default_run_settings

#: Environment variable that switches the app to the scripted demo models (browser tests).
FAKE_MODELS_ENV = "GPO_STUDIO_FAKE_MODELS"


def demo_mode() -> bool:
    """Whether the app runs on the scripted demo models (``GPO_STUDIO_FAKE_MODELS=1``)."""
    return os.environ.get(FAKE_MODELS_ENV) == "1"


#: In demo mode, the demo optimizer model's name (default "scripted-optimizer"; the browser
#: test of issue 11 sets "scripted-optimizer-worse", see gpo_core.models.demo.DEMO_MODELS).
FAKE_OPTIMIZER_ENV = "GPO_STUDIO_FAKE_OPTIMIZER"


def initial_settings() -> RunSettings:
    """The draft settings of a new browser session: the defaults for the embedded model,
    or the demo models in demo mode (the optimizer named by ``GPO_STUDIO_FAKE_OPTIMIZER``)."""
    settings = default_run_settings("local")
    if demo_mode():
        optimizer = os.environ.get(FAKE_OPTIMIZER_ENV) or "scripted-optimizer"
        settings = settings.replace(
            task_model=settings.task_model.replace(backend="demo", model="scripted-task", concurrency=8),
            optimizer_model=settings.optimizer_model.replace(backend="demo", model=optimizer, concurrency=8),
            judge_model=settings.judge().replace(backend="demo", model="scripted-judge", concurrency=8))
    return settings


class DraftSettings:
    """The settings the next run of this browser session is created with. The task loader
    sets :attr:`settings`' splits, the model configuration its model settings; the optimizer
    settings are set here."""

    def __init__(self, settings: RunSettings | None = None):
        self.settings: RunSettings = settings if settings is not None else initial_settings()

    @property
    def optimizer(self) -> OptimizerSettings:
        """The draft optimizer settings of the next run."""
        return self.settings.optimizer

    def update_optimizer(self, **values: object) -> RunSettings:
        """Set draft optimizer settings (OptimizerSettings field names); validated, with
        ConfigError naming the widget otherwise (the previous draft stays)."""
        opt = self.settings.optimizer.replace(**values).validate("app")
        self.settings = self.settings.replace(optimizer=opt)
        return self.settings

    def budgets(self) -> list[int]:
        """The edit-budget schedule of the draft settings, steps 1..T (words)."""
        c = self.settings.optimizer
        return budget_schedule(kind=c.schedule, initial=c.budget_initial, final=c.budget_final,
                               total_steps=c.steps, warmup=c.warmup)
