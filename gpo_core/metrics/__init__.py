"""Metrics: how an output is scored against its example (protocol and registry in
:mod:`gpo_core.metrics.base`). Importing this package registers every built-in metric:
the seven answer types, ``regex``, ``numeric``, ``json_keys``, ``set_f1``, ``token_f1``,
``rouge_l``, ``llm_judge`` and ``user_code``. :func:`build_metric` turns the run's settings into a metric.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gpo_core.metrics import answer_types, judge, structured, text, user_code  # noqa: F401 - registers the metrics
from gpo_core.metrics.base import Metric, MetricResult, get_metric, metric_names, register_metric
from gpo_core.metrics.user_code import USER_METRICS_ENV, is_user_code, user_metrics_allowed

if TYPE_CHECKING:
    from gpo_core.models.base import ChatModel
    from gpo_core.settings import ModelSettings, RunSettings
    from gpo_core.tasks.task import Task

__all__ = ["USER_METRICS_ENV", "Metric", "MetricResult", "build_metric", "get_metric", "is_user_code",
           "metric_label", "metric_names", "register_metric", "user_metrics_allowed", "with_task_metric"]


def build_metric(metric: str, options: Mapping[str, Any] | None, answer_type: str, *,
                 judge_model: ChatModel | None = None, judge_settings: ModelSettings | None = None) -> Metric:
    """The metric a run scores with. metric: "" (the answer type's exact rule, the paper's
    scoring), a registered name (:func:`metric_names`) or user code "path/file.py:function".
    options: the metric's options (text values from ``--metric-option KEY=VALUE``). judge_model /
    judge_settings: the judge model and its settings (temperature, token cap), used by
    ``llm_judge`` only (:mod:`gpo_core.metrics.judge`); without a judge the metric can be
    checked and described but not score.
    Raises :class:`~gpo_core.errors.ConfigError` for an unknown metric or a bad option."""
    opts = dict(options or {})
    if not metric:
        return get_metric(answer_type, **opts)
    if is_user_code(metric):
        return get_metric("user_code", path=metric, **opts)
    if metric == judge.JUDGE_METRIC:
        from gpo_core.metrics.options import refuse_unknown

        refuse_unknown(metric, opts, ("rubric", "scale"))
        extra: dict[str, Any] = {"judge": judge_model}
        if judge_settings is not None:
            extra.update(temperature=judge_settings.temperature, max_tokens=judge_settings.max_tokens)
        return get_metric(metric, **extra, **opts)
    return get_metric(metric, **opts)


def with_task_metric(settings: RunSettings, task: Task) -> RunSettings:
    """``settings`` with the metric the task suggests (``task.json``'s "metric" and
    "metric_options", :attr:`gpo_core.tasks.task.Task.metric`) when none was chosen
    (``settings.optimizer.metric`` is ""); otherwise unchanged (the user's choice wins)."""
    opt = settings.optimizer
    if opt.metric or not task.metric:
        return settings
    return settings.replace(optimizer=opt.replace(metric=task.metric, metric_options=dict(task.metric_options)))


def metric_label(metric: str, answer_type: str) -> str:
    """The metric for people: "rouge_l", or "exact_match (the answer type)" for ""."""
    return metric or f"{answer_type} (the answer type)"
