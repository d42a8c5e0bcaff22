"""Cost before, during and after a run (issue 11, item 7).

- before: :func:`~gpo_core.costs.estimate.estimate_run` -> :class:`~gpo_core.costs.estimate.RunEstimate`
  (calls, prompt and completion tokens from the real meta-prompts and task prompts,
  minutes, dollars);
- during: :class:`~gpo_core.costs.spend.SpendMeter` counts every call into ``RunState.spend``;
  ``GPOSession.spend()`` gives a :class:`~gpo_core.costs.spend.Spend` snapshot;
- a hard cap: ``OptimizerSettings.max_cost`` / ``max_spend_tokens``
  (:func:`~gpo_core.costs.spend.cap_reason`);
- prices: :mod:`gpo_core.costs.prices` (a dated, editable default table);
- tokens: :mod:`gpo_core.costs.tokens` (the model's own tokenizer, tiktoken, or an approximation that says so).

Submodules are imported by name (``from gpo_core.costs.spend import ...``) so the run records
can use :mod:`gpo_core.costs.spend` without loading the estimator.
"""

__all__: list[str] = []
