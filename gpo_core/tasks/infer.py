"""A task's answer type inferred from its gold targets (when neither the caller nor task.json
names one).

Inference uses the grammar that scores: a target "parses" under a type when
:func:`gpo_core.scoring.answers.normalize_target` accepts it, so a task is never inferred as a
type whose targets scoring would then refuse. The type is the first of
:data:`INFERABLE_TYPES` under which at least :data:`MIN_PARSE_SHARE` of the targets parse;
the few that do not are reported by the loader (:mod:`gpo_core.tasks.io`) and left out.
"""

from __future__ import annotations

from gpo_core.scoring.answers import target_parses

#: Types tried in order; ``exact_match`` is the fallback (every non-blank target parses).
INFERABLE_TYPES = ("multiple_choice", "number", "yes_no", "true_false", "valid_invalid")

#: Share of targets that must parse under a type for it to be inferred (BBH's
#: movie_recommendation has 1 free-text target in 250, ruin_names 2).
MIN_PARSE_SHARE = 0.9


def parse_shares(targets: list[str]) -> dict[str, float]:
    """For each type of :data:`INFERABLE_TYPES`, the share of ``targets`` that parse (0..1)."""
    n = len(targets)
    return {kind: (sum(target_parses(t, kind) for t in targets) / n if n else 0.0) for kind in INFERABLE_TYPES}


def infer_answer_type(targets: list[str]) -> str:
    """Answer type from the gold targets (one of :data:`gpo_core.tasks.task.ANSWER_TYPES`).

    The first of multiple_choice (``"(A)"``, ``"A"``), number (``"-3"``, ``"1,000"``, ``"$12"``,
    ``"seven"``), yes_no, true_false, valid_invalid (``"Yes."``, ``"True"``, any case) under
    which at least 90% of the targets parse (:func:`gpo_core.scoring.answers.normalize_target`);
    otherwise ``exact_match``. An empty list gives ``exact_match``.
    """
    if not targets:
        return "exact_match"
    for kind, share in parse_shares(targets).items():
        if share >= MIN_PARSE_SHARE:
            return kind
    return "exact_match"
