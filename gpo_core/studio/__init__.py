"""The web app's per-session logic, without Streamlit: :class:`Studio` and its components, the
background worker, views and charts.

Names load on first use (no import cycles between the subpackages).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names, for type checkers; at run time they load on first use
    from gpo_core.studio.studio import Studio
    from gpo_core.studio.worker import Job, JobBusyError

_EXPORTS = {
    "Studio": "gpo_core.studio.studio",
    "Job": "gpo_core.studio.worker",
    "JobBusyError": "gpo_core.studio.worker",
}
__all__ = ["Job", "JobBusyError", "Studio"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
