"""GPO Studio engine: prompt optimization after GPO (Tang et al. 2024, arXiv 2402.17564).

Pure Python, no UI imports. The web app in ``pages/`` and the CLI (``python -m gpo_core``)
only call into this package. Subpackages, in the order a step flows through them:
``studio`` (the app's per-session logic), ``optimizer``, ``runs``, ``scoring``, ``tasks``,
``models``; plus ``settings`` (every setting once) and ``cli``.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
