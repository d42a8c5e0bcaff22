"""The Task page's metric panel: which metrics there are, their options, their definition,
and the score of one example before any run (issue 12, item 6).

The page reads widgets and calls :class:`MetricSetup`; the choice is kept in the draft
settings (``OptimizerSettings.metric`` / ``metric_options``), so the next run scores with it
and saves it. Bad settings (an unknown key, a regex that does not compile, user code that
raises) are refused here with the engine's ConfigError before any model call, and the
previous choice stays.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gpo_core.errors import ConfigError
from gpo_core.metrics import build_metric, is_user_code, metric_names, user_metrics_allowed
from gpo_core.metrics.base import Metric, MetricResult
from gpo_core.metrics.common import references
from gpo_core.metrics.judge import LLMJudgeMetric, judge_messages
from gpo_core.studio.draft import DraftSettings
from gpo_core.tasks.task import ANSWER_TYPES, Task

__all__ = ["ANSWER_TYPE_CHOICE", "OPTION_FIELDS", "USER_CODE_CHOICE", "MetricSetup", "Preview"]

#: The page's label of the default choice ("" in the settings: the answer type's rule).
ANSWER_TYPE_CHOICE = "answer type (exact rule)"
#: The page's label of user code (offered only with GPO_ALLOW_USER_METRICS=1).
USER_CODE_CHOICE = "user code (path.py:function)"

#: Options each metric takes, as (key, help) pairs, for the page's text inputs.
OPTION_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "regex": (("pattern", "regular expression; its first group (or the whole match) is the answer"),
              ("compare", "true: compare the match with the target; false: any match scores 1"),
              ("ignore_case", "true (default) or false")),
    "numeric": (("abs_tol", "absolute tolerance (default 0)"), ("rel_tol", "relative tolerance (default 0.01)")),
    "json_keys": (("keys", "keys to compare, comma-separated (default: every key of the target)"),),
    "set_f1": (("separator", "label separator (default ,)"),),
    "rouge_l": (("stemmer", "true (default) or false: Porter stemming"),),
    "llm_judge": (("rubric", "what a right answer does, in words (default: matches the reference answer)"),
                  ("scale", "1-10 (default; partial credit) or pass-fail")),
    "user_code": (("binary", "true if it returns only 0 or 1"),),
}


@dataclass(frozen=True)
class Preview:
    """The score of one output against one example: score in [0, 1], the answer the metric
    read (parsed), its reason and error (when the metric raised on it), the example's target
    and the metric's name and definition."""

    score: float | None
    parsed: str | None
    reason: str | None
    error: str | None
    target: str
    metric: str
    definition: str
    judge_prompt: str | None = None

    def text(self) -> str:
        """"Score 0.67 (json_keys): 2 of 3 keys right; wrong or missing: city"; for the LLM
        judge (score None: no model is called here) what happens in the run instead."""
        if self.score is None:
            return (f"Not scored here ({self.metric}): the judge model grades each answer during the run, one call "
                    "per answer. The prompt it gets for this example and output:")
        why = self.error or self.reason
        return f"Score {self.score:.2f} ({self.metric})" + (f": {why}" if why else "")


class MetricSetup:
    """The metric panel over a session's draft settings and loaded task."""

    def __init__(self, draft: DraftSettings):
        self.draft = draft

    @staticmethod
    def choices() -> list[str]:
        """The metric choices: the answer type's rule, the registered metrics (not the answer
        types again), and user code only when the server allows it."""
        names = [n for n in metric_names() if n not in ANSWER_TYPES and n != "user_code"]
        return [ANSWER_TYPE_CHOICE, *names, *([USER_CODE_CHOICE] if user_metrics_allowed() else [])]

    def current(self) -> tuple[str, dict[str, str]]:
        """The draft's choice as (choice label, options); user code as :data:`USER_CODE_CHOICE`."""
        opt = self.draft.settings.optimizer
        if not opt.metric:
            return ANSWER_TYPE_CHOICE, dict(opt.metric_options)
        if is_user_code(opt.metric):
            return USER_CODE_CHOICE, dict(opt.metric_options)
        return opt.metric, dict(opt.metric_options)

    @staticmethod
    def setting(choice: str, user_code: str = "") -> str:
        """The ``OptimizerSettings.metric`` value of a page choice."""
        if choice == ANSWER_TYPE_CHOICE:
            return ""
        if choice == USER_CODE_CHOICE:
            return user_code.strip()
        return choice

    @staticmethod
    def option_fields(choice: str) -> tuple[tuple[str, str], ...]:
        """(key, help) of each option of a page choice."""
        return OPTION_FIELDS.get("user_code" if choice == USER_CODE_CHOICE else choice, ())

    def build(self, task: Task, metric: str, options: Mapping[str, str]) -> Metric:
        """Validate the choice as the app's settings and check it on every target of ``task``;
        returns the metric. ConfigError naming the widget ("Metric", "Metric options") or the
        target's line otherwise. Nothing is changed."""
        clean = {k: v for k, v in options.items() if str(v).strip() != ""}
        self.draft.settings.optimizer.replace(metric=metric, metric_options=clean).validate("app")
        m = build_metric(metric, clean, task.answer_type)
        examples = [*task.examples, *(e for split in task.explicit_splits.values() for e in split)]
        try:
            m.check(examples)
        except ConfigError as e:  # name the widget and the task's file, as the page shows them
            head, _, key = e.setting.partition(".")
            widget = {"metric_options": "Metric options", "metric": "Metric", "answer_type": "Answer type",
                      "target": "Target"}.get(head, e.setting)
            where = f"{task.source}: " if task.source else ""
            raise ConfigError(f"{widget} · {key}" if key else widget, where + e.reason) from None
        return m

    def apply(self, task: Task, metric: str, options: Mapping[str, str]) -> Metric:
        """:meth:`build`, then keep the choice in the draft settings (the next run's). On
        ConfigError the previous choice stays."""
        m = self.build(task, metric, options)
        clean = {k: v for k, v in options.items() if str(v).strip() != ""}
        opt = self.draft.settings.optimizer.replace(metric=metric, metric_options=clean)
        self.draft.settings = self.draft.settings.replace(optimizer=opt)
        return m

    def preview(self, task: Task, metric: Metric, index: int, output: str | None = None) -> Preview:
        """Score ``output`` (None: the example's own target, its first reference for a list of
        references; it should score 1 unless the metric reads answers differently) against
        example ``index`` (0-based) of the task; no model is called. Raises ConfigError for
        an index outside the task."""
        examples = [*task.examples, *(e for split in task.explicit_splits.values() for e in split)]
        if not 0 <= index < len(examples):
            raise ConfigError("Preview example", f"must be between 1 and {len(examples)}")
        ex = examples[index]
        text = references(ex.target)[0] if output is None else output
        if isinstance(metric, LLMJudgeMetric):  # no model call before the run: show what the judge will read
            prompt = "\n\n".join(c for _, c in judge_messages(metric.rubric, metric.scale, ex, text))
            return Preview(None, None, None, None, ex.target, metric.name, metric.definition(), prompt)
        res: MetricResult = metric.score_many([text], [ex])[0]
        return Preview(res.score, res.parsed, res.reason, res.error, ex.target, metric.name, metric.definition())
