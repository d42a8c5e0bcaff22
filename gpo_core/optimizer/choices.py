"""What each method choice means, and which is the paper's: the labels the app and the CLI
show wherever a user chooses (GPO, Tang et al. 2024, arXiv 2402.17564, and its reference
code RUCAIBox/GPO; "ours" marks GPO Studio's own variants).

``CHOICES[field][value]`` is the label of ``value`` for the OptimizerSettings ``field``.
"""

from __future__ import annotations

from gpo_core.optimizer.templates import LAYOUTS

__all__ = ["CHOICES", "PAPER", "label"]

#: The paper's (reference code's) value of each method choice.
PAPER: dict[str, str] = {"layout": "gpo", "direction_pool": "chosen", "direction_order": "reference",
                         "exemplar_draw": "once", "selection": "relevance", "protocol": "reference",
                         "policy": "paper", "schedule": "cosine"}

CHOICES: dict[str, dict[str, str]] = {
    "layout": {name: lay.label for name, lay in LAYOUTS.items()},
    "direction_pool": {"chosen": "the chosen prompts (paper)",
                       "all": "every scored prompt (ours)"},
    "direction_order": {"reference": "newest first, then by similarity (paper)",
                        "score": "by score, best last (ours)"},
    "exemplar_draw": {"once": "drawn once per run from the format split (paper)",
                      "per_step": "redrawn at every step (ours)"},
    "selection": {"relevance": "relevance: newest + most similar (paper)",
                  "recency": "recency: the last k (paper's ablation)",
                  "importance": "importance: the k best (paper's ablation)"},
    "protocol": {"auto": "auto: reference for task folders, single call for uploads",
                 "reference": "reference: plain prompt + answer re-prompt (paper, 2 calls)",
                 "single": "single call, labelled Q:/A: prompt (ours, half the calls)"},
    "policy": {"paper": "paper: best candidate not chosen before",
               "better": "better: only if better than the current prompt (ours)",
               "significant": "significant: only if significantly better, McNemar p < alpha (ours)"},
    "schedule": {"cosine": "cosine (paper)", "linear": "linear (paper's ablation)",
                 "fixed": "fixed (paper's ablation)"},
}


def label(field: str, value: str) -> str:
    """The label of ``value`` for ``field`` (the value itself when unknown)."""
    return CHOICES.get(field, {}).get(value, value)
