"""The web app's per-session logic, without Streamlit: see :mod:`gpo_core.studio.studio`."""
