"""Background work of the app: one job per run, in its own thread, never tied to a page.

Long actions (scoring the starting prompt, a step, an accept that scores on test, "reject
all and resample", N automatic steps) run as a :class:`Job` in a worker thread. Jobs live in
a process-wide :class:`JobRegistry` keyed by run id, so a browser reload or a page change
neither cancels nor loses them: whichever browser session opens the run next finds the job,
its progress, its log of finished steps and, at the end, its result or error message.

A job holds a :class:`threading.Event` for Stop, which the engine polls through
``should_stop`` (``GPOSession.start/propose/run_auto``): a stop ends the job after the model
call in flight, keeping every finished step (the engine saves after each one).

No Streamlit here: the pages observe jobs (``st.fragment(run_every=...)`` while one runs)
and submit them from button callbacks through :class:`~gpo_core.studio.actions.RunActions`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from gpo_core.costs.spend import SpendCapReached
from gpo_core.errors import GPOError
from gpo_core.runs.storage import storage_error
from gpo_core.scoring.evaluation import EvaluationCancelled

__all__ = ["Job", "JobBusyError", "JobRegistry", "JobView", "REGISTRY"]

log = logging.getLogger(__name__)

#: The result type of a job's work, which its ``describe`` callable reads.
T = TypeVar("T")

#: Job states: queued (thread not started yet), running, done, stopped (Stop pressed; the
#: finished steps are kept), failed (an error message in ``error``).
STATES = ("queued", "running", "done", "stopped", "failed")


class JobBusyError(GPOError):
    """A run already has a job running: one job per run at a time."""


@dataclass(frozen=True)
class JobView:
    """A consistent copy of a job's state for one render (the job itself keeps changing)."""

    id: str
    run_id: str
    kind: str
    label: str
    state: str
    phase: str | None
    done: int
    total: int
    log: tuple[str, ...]
    message: str | None
    error: str | None
    stop_requested: bool
    stoppable: bool
    seconds: float

    @property
    def running(self) -> bool:
        return self.state in ("queued", "running")


class Job:
    """One piece of long work on one run.

    ``work(job)`` runs in the job's thread; it reports through :meth:`on_progress` (the
    engine's ``(phase, done, total)`` callback), :meth:`add_log` (a finished step) and
    polls :meth:`should_stop`. Its return value becomes ``result``; ``describe(result)``
    (optional) the success ``message``. An exception becomes ``error`` (its message; a
    :class:`~gpo_core.errors.GPOError` is already user-facing), except a cancellation
    after Stop, which ends the job as "stopped".

    session: the engine session the job works on (kept so a reopened browser session can
    attach to the live object instead of a stale copy from disk).
    """

    def __init__(self, run_id: str, kind: str, label: str, session: Any = None, *, stoppable: bool = True):
        self.id = uuid.uuid4().hex[:12]
        self.run_id = run_id
        self.kind = kind
        self.label = label
        self.session = session
        self.stoppable = stoppable
        self.stop_event = threading.Event()
        self.result: Any = None
        self.message: str | None = None
        self.error: str | None = None
        self.state = "queued"
        self._lock = threading.Lock()
        self._phase: str | None = None
        self._done = 0
        self._total = 0
        self._log: list[str] = []
        self._finished = threading.Event()
        self._t0 = time.monotonic()
        self._t1: float | None = None
        self.thread: threading.Thread | None = None

    # Reported by the work --------------------------------------------------------------
    def on_progress(self, phase: str, done: int, total: int) -> None:
        """The engine's progress callback: ``(phase, done, total)``."""
        with self._lock:
            self._phase, self._done, self._total = phase, int(done), int(total)

    def add_log(self, line: str) -> None:
        """Record one finished piece of work (e.g. "Step 2: auto ... s1a1c2 ...")."""
        with self._lock:
            self._log.append(line)

    def should_stop(self) -> bool:
        """True once Stop was requested (the engine's ``should_stop``)."""
        return self.stop_event.is_set()

    # Observed by the pages ---------------------------------------------------------------
    @property
    def running(self) -> bool:
        return not self._finished.is_set()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def request_stop(self) -> bool:
        """Ask the job to stop after the model call in flight. False when it already ended."""
        if self._finished.is_set():
            return False
        self.stop_event.set()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (or ``timeout`` seconds pass); True when it ended."""
        return self._finished.wait(timeout)

    def view(self) -> JobView:
        """A snapshot of the job for one render."""
        with self._lock:
            end = self._t1 if self._t1 is not None else time.monotonic()
            return JobView(self.id, self.run_id, self.kind, self.label, self.state, self._phase, self._done,
                           self._total, tuple(self._log), self.message, self.error, self.stop_event.is_set(),
                           self.stoppable, end - self._t0)

    # Run by the registry -------------------------------------------------------------------
    def _run(self, work: Callable[[Job], T], describe: Callable[[T], str] | None) -> None:
        with self._lock:
            self.state = "running"
        state, result, message, error = "done", None, None, None
        try:
            result = work(self)
            if self.stop_event.is_set():
                state = "stopped"
            elif describe is not None:
                message = describe(result)
        except SpendCapReached as e:  # the run's spend cap: a clean stop at a call boundary, saying why
            state, message = "stopped", f"Stopped: {e}."
        except EvaluationCancelled:
            state = "stopped" if self.stop_event.is_set() else "failed"
            error = None if state == "stopped" else "the work was cancelled"
        except GPOError as e:
            state, error = "failed", str(e)
        except OSError as e:  # a disk fault no layer named: still one line with the file and the fix
            log.exception("job %s (%s) on run %s failed on the disk", self.id, self.kind, self.run_id)
            state, error = "failed", str(storage_error(e.filename or "a file of the run", e, ""))
        except Exception as e:  # noqa: BLE001 - a worker must never die silently
            log.exception("job %s (%s) on run %s failed", self.id, self.kind, self.run_id)
            state, error = "failed", f"unexpected {type(e).__name__}: {e}"
        with self._lock:
            self.state, self.result, self.message, self.error = state, result, message, error
            self._t1 = time.monotonic()
        self._finished.set()


class JobRegistry:
    """The jobs of this process, one slot per run id: the running job, or the last finished
    one until a page collects its outcome (:meth:`collect`). Beside it, per run, the last
    outcome a page made of a collected job (:meth:`keep_outcome`), so that a reloaded tab,
    whose session state is new, still shows what the last job did. Thread-safe."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._outcomes: dict[str, Any] = {}
        self._lock = threading.Lock()

    def submit(self, run_id: str, kind: str, label: str, work: Callable[[Job], T], *,
               session: Any = None, describe: Callable[[T], str] | None = None,
               stoppable: bool = True) -> Job:
        """Start ``work(job)`` in a new thread for ``run_id``. Raises JobBusyError when the
        run already has a running job (its finished job, if any, is replaced)."""
        with self._lock:
            current = self._jobs.get(run_id)
            if current is not None and current.running:
                raise JobBusyError(f"{current.label.rstrip('…')} is still running on run {run_id}: "
                                   "wait for it or press Stop")
            job = Job(run_id, kind, label, session, stoppable=stoppable)
            self._jobs[run_id] = job
            self._outcomes.pop(run_id, None)  # a new job: the last one's outcome is history
        job.thread = threading.Thread(target=job._run, args=(work, describe), name=f"gpo-job-{run_id}-{kind}",
                                      daemon=True)
        job.thread.start()
        return job

    def get(self, run_id: str | None) -> Job | None:
        """The run's job (running, or finished and not collected yet), or None."""
        if run_id is None:
            return None
        with self._lock:
            return self._jobs.get(run_id)

    def running(self, run_id: str | None) -> Job | None:
        """The run's running job, or None."""
        job = self.get(run_id)
        return job if job is not None and job.running else None

    def collect(self, run_id: str | None) -> Job | None:
        """Take the run's finished job out of the registry (to show its outcome once), or
        None when there is none or it still runs."""
        if run_id is None:
            return None
        with self._lock:
            job = self._jobs.get(run_id)
            if job is None or job.running:
                return None
            del self._jobs[run_id]
            return job

    def keep_outcome(self, run_id: str | None, outcome: Any) -> None:
        """Keep ``outcome`` (what a page showed for the run's last collected job; None
        forgets it) until the run's next job is submitted."""
        if run_id is None:
            return
        with self._lock:
            if outcome is None:
                self._outcomes.pop(run_id, None)
            else:
                self._outcomes[run_id] = outcome

    def kept_outcome(self, run_id: str | None) -> Any:
        """The outcome kept by :meth:`keep_outcome` for the run, or None."""
        if run_id is None:
            return None
        with self._lock:
            return self._outcomes.get(run_id)

    def session_for(self, run_id: str) -> Any:
        """The engine session the run's job works on (running or uncollected), or None."""
        job = self.get(run_id)
        return job.session if job is not None else None

    def active(self) -> list[Job]:
        """Every running job of the process."""
        with self._lock:
            return [j for j in self._jobs.values() if j.running]


#: The process-wide registry the app uses (one per Streamlit server process).
REGISTRY = JobRegistry()
