"""Shared helpers of the app tests: a small arithmetic task, scripted models, AppTest setup."""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from gpo_core.models.demo import demo_models
from gpo_core.optimizer.session import GPOSession
from gpo_core.studio.studio import Studio

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
#: Seconds one AppTest script run may take (scripted models are instant; CI machines are slow).
TIMEOUT = 60


def _run_the_entrypoint_every_time() -> None:
    """Make every AppTest run execute app.py (and through st.navigation the page), as the
    real server does once any session has called st.navigation.

    Streamlit treats an app with a ``pages/`` folder as a legacy multipage app until
    ``st.navigation`` runs (then ``PagesManager.uses_pages_directory`` is False for the whole
    process). AppTest resets that flag before every run, so after ``switch_page`` it would
    run the page file alone, without app.py: no sidebar, no page address, unlike the app.
    """
    if getattr(PagesManager.__init__, "_gpo_entrypoint", False):
        return
    original = PagesManager.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    __init__._gpo_entrypoint = True
    PagesManager.__init__ = __init__


_run_the_entrypoint_every_time()


def arithmetic_csv(n: int = 24) -> bytes:
    """``n`` distinct "What is a + b?" questions with their sums, as CSV bytes."""
    lines = ["question,answer"]
    for i in range(n):
        a, b = 3 + 7 * i, 11 + 5 * i
        lines.append(f"What is {a} + {b}?,{a + b}")
    return ("\n".join(lines) + "\n").encode()


def make_studio(tmp_path: Path) -> Studio:
    """A Studio whose runs go to tmp_path/runs and whose models are the scripted demo models
    (task model answers arithmetic; optimizer appends a sentence; hashing embedder)."""
    return Studio(runs_root=tmp_path / "runs", models_override=demo_models())


def load_arithmetic(studio: Studio, n: int = 24, dev: int = 6, test: int = 6) -> Studio:
    """Load the arithmetic task of ``n`` questions into ``studio`` and split dev/test as given."""
    studio.tasks.preview_upload(arithmetic_csv(n), "arith.csv")
    studio.tasks.load_upload("question", "answer")
    studio.tasks.update_splits(dev_size=dev, test_size=test, seed=0)
    return studio


def arithmetic_studio(tmp_path: Path, n: int = 24, dev: int = 6, test: int = 6) -> Studio:
    """A Studio on the scripted models with the arithmetic task loaded and split dev/test as given."""
    return load_arithmetic(make_studio(tmp_path), n, dev, test)


def started_run(studio: Studio, **optimizer: object) -> Studio:
    """Set the draft optimizer settings, create a run and score its start (in this thread)."""
    studio.draft.update_optimizer(**optimizer)
    studio.runs.create()
    studio.actions.start()
    return studio


def app_for(studio: Studio, page: str | None = None) -> AppTest:
    """An AppTest of app.py with ``studio`` injected into session_state, run once, then
    switched to ``page`` (e.g. "pages/optimize.py") and run again."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["studio"] = studio
    at.run()
    if page:
        at.switch_page(page).run()
    return at


def settle(at: AppTest, timeout: float = TIMEOUT) -> AppTest:
    """Wait for the background job of the app's open run (if any) to end, then run the page
    again, as the page's polling fragment would: the finished job's result is drawn.

    AppTest runs a script synchronously and does not fire ``st.fragment(run_every=...)``, so
    a test that clicks a button submitting a job calls this before looking at the result.
    """
    studio: Studio = at.session_state["studio"]
    job = studio.runs.registry.get(studio.runs.run_id)
    if job is not None:  # running, or finished since the page was drawn
        assert job.wait(timeout), f"the job {job.label!r} did not end within {timeout} s"
        at.run()
    return at


def click(at: AppTest, key: str) -> AppTest:
    """Click the button ``key``, run the page, and :func:`settle` its job."""
    at.button(key=key).click().run()
    no_exception(at)
    return settle(at)


def wait_idle(studio: Studio, timeout: float = TIMEOUT) -> None:
    """Block until no job runs on the studio's open run."""
    job = studio.runs.registry.get(studio.runs.run_id)
    if job is not None:
        assert job.wait(timeout), f"the job {job.label!r} did not end within {timeout} s"


def open_run_id(studio: Studio) -> str:
    """The id of the studio's open run (fails when none is open)."""
    return studio.runs.require_session().state.run_id


def saved_copy(studio: Studio) -> GPOSession:
    """The studio's open run as saved on disk, opened by another session (taking it over)."""
    return GPOSession.open(studio.runs.store().run_dir(open_run_id(studio)), studio.models.build(), take_over=True)


def unescape(markdown: str) -> str:
    """Undo views.escape_markdown (backslash before punctuation), to compare shown text."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def texts(elements) -> list[str]:
    """The unescaped values of a list of AppTest text elements (markdown, error, success…)."""
    return [unescape(str(e.value)) for e in elements]


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _decode(values):
    """Plotly JSON arrays may be typed arrays ({"dtype", "bdata"}); return a plain list."""
    import base64

    import numpy as np

    if isinstance(values, dict) and "bdata" in values:
        arr = np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"]))
        if "shape" in values:
            arr = arr.reshape([int(n) for n in str(values["shape"]).split(",")])
        return arr.tolist()
    return values


def chart_traces(chart) -> dict[str, dict]:
    """The traces of an AppTest plotly_chart element by name, with x and y as lists."""
    import json

    spec = json.loads(chart.proto.spec)
    return {t.get("name"): {**t, "x": _decode(t.get("x")), "y": _decode(t.get("y"))} for t in spec["data"]}
