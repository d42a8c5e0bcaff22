"""GPO Studio engine: prompt optimization after GPO (Tang et al. 2024, arXiv 2402.17564).

Pure Python, no UI imports. The web app in ``pages/`` and the CLI (``python -m gpo_core``)
only call into this package.
"""

__version__ = "0.1.0"
