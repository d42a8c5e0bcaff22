"""What a browser session does to its open run: the long work as background jobs, and the
quick decisions in the caller's thread.

Long actions (scoring the start, a step, accepting, resampling, automatic steps) have
``submit_*`` methods that run them as a background :class:`~gpo_core.studio.worker.Job` in
the process-wide registry, keyed by run id: a reload or a page change never cancels or
loses them. A submit waits up to ``quick_wait_s`` for its job, so quick work is drawn in the
same page run. The job's outcome (success message, "stopped" note or error) is kept in
:attr:`RunActions.outcome` to show once, where the job was shown. The plain methods
(``start``, ``next_step``, ...) run the same work in the caller's thread (tests, benchmarks).
Actions that conflict with a running job are refused with JobBusyError.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from gpo_core.errors import ConfigError
from gpo_core.optimizer.scorer import Progress
from gpo_core.optimizer.session import GPOSession
from gpo_core.runs.records import CandidateRecord, StepRecord
from gpo_core.settings import RunSettings
from gpo_core.studio.draft import DraftSettings
from gpo_core.studio.messages import Flash
from gpo_core.studio.model_config import ModelConfig
from gpo_core.studio.runs import Runs
from gpo_core.studio.views.markup import pct
from gpo_core.studio.views.step_view import decision_text
from gpo_core.studio.worker import Job, JobBusyError, JobView

#: Seconds a submit waits for its job before the page renders: short jobs (cached or fast
#: models) then show their result in the same page run instead of a progress box first.
QUICK_WAIT_S = 0.3

T = TypeVar("T")


class RunActions:
    """The actions on the open run of :class:`~gpo_core.studio.runs.Runs` (which also holds
    the job registry). Clears :attr:`outcome` whenever another run is opened."""

    def __init__(self, runs: Runs, models: ModelConfig, draft: DraftSettings):
        self.runs, self.models, self.draft = runs, models, draft
        #: The outcome of the open run's last job (or a refused action), shown once.
        self.outcome: Flash | None = None
        #: The last number of automatic steps asked for (the page's default).
        self.auto_steps: int = 1
        #: Seconds a submit waits for its job before returning (see QUICK_WAIT_S).
        self.quick_wait_s: float = QUICK_WAIT_S
        runs.on_switch = self.forget_outcome

    # The job of the open run -----------------------------------------------------------
    def job(self) -> JobView | None:
        """The open run's job (running, or finished and not collected), as a snapshot."""
        job = self.runs.registry.get(self.runs.run_id)
        return job.view() if job is not None else None

    def busy(self) -> bool:
        """Whether a job is running on the open run (conflicting actions are refused)."""
        return self.runs.registry.running(self.runs.run_id) is not None

    def require_idle(self) -> None:
        job = self.runs.registry.running(self.runs.run_id)
        if job is not None:
            raise JobBusyError(f"{job.label.rstrip('…')} is still running: wait for it or press Stop")

    def stop(self) -> bool:
        """Ask the open run's job to stop after the model call in flight (every finished step
        is kept). False when nothing is running."""
        job = self.runs.registry.running(self.runs.run_id)
        return job.request_stop() if job is not None else False

    def say(self, kind: str, text: str) -> None:
        """Show ``text`` once where the job is shown (e.g. why an action was refused)."""
        self.outcome = Flash(kind, text)

    def forget_outcome(self) -> None:
        self.outcome = None

    def collect_outcome(self) -> Flash | None:
        """When the open run's job has finished: take it out of the registry and keep its
        outcome (success message, "stopped" note or error) in :attr:`outcome`, to show once."""
        job = self.runs.registry.collect(self.runs.run_id)
        if job is None:
            return None
        v = job.view()
        session: GPOSession | None = job.session or self.runs.session
        done = len(session.state.decided_steps) if session is not None else 0
        total = session.config.steps if session is not None else 0
        what = v.label.split(":")[0].rstrip("…").rstrip(".")
        if v.state == "stopped":
            flash = Flash("info", f"Stopped. Every finished step is kept: {done} of {total} steps done.")
        elif v.state == "failed":
            kept = f" Every finished step is kept: {done} of {total} steps done." if v.kind != "start" else ""
            flash = Flash("error", f"{what} failed: {(v.error or 'unknown error').rstrip('.')}.{kept}")
        elif v.message:
            flash = Flash("success", v.message)
        else:
            flash = None
        self.outcome = flash
        return flash

    def pop_outcome(self) -> Flash | None:
        """The outcome of the open run's last finished job (collected first when it has just
        finished), once."""
        self.collect_outcome()
        out, self.outcome = self.outcome, None
        return out

    # In the background (the app) -------------------------------------------------------
    def _submit(self, kind: str, label: str, work: Callable[[GPOSession, Job], T],
                describe: Callable[[T], str] | None = None, *, stoppable: bool = True) -> Job:
        session = self.runs.require_session()
        job = self.runs.registry.submit(session.state.run_id, kind, label, lambda j: work(session, j),
                                        session=session, describe=describe, stoppable=stoppable)
        self.outcome = None
        if self.quick_wait_s > 0 and job.wait(self.quick_wait_s):
            self.collect_outcome()
        return job

    def submit_start(self) -> Job:
        """Score the starting prompt on dev and test, in the background."""
        def describe(init: dict) -> str:
            test = f", test {pct(init['test_accuracy'])}" if init.get("test_accuracy") is not None else ""
            return f"Starting prompt scored: dev {pct(init['dev_accuracy'])}{test}."

        return self._submit("start", "Scoring the starting prompt on dev and test…",
                            lambda s, j: s.start(j.on_progress, j.should_stop), describe)

    def submit_new_run(self) -> Job:
        """Create a run with the draft settings and score its starting prompt in the background."""
        self.runs.create()
        return self.submit_start()

    def submit_next_step(self) -> Job:
        """The next step's model work (sampling, scoring on dev), in the background."""
        session = self.runs.require_session()
        t, total = session.next_step_number, session.config.steps
        return self._submit("step",
                            f"Running step {t} of {total}: retrieving, sampling candidates, scoring them on dev…",
                            lambda s, j: s.propose(j.on_progress, j.should_stop),
                            lambda step: f"Step {step.step}: {len(step.candidates)} candidates ready. "
                                         "Accept one or reject all.")

    def submit_accept(self, candidate_id: str, text: str | None = None) -> Job:
        """Accept a candidate (hand-edited ``text``: scored on dev first); the chosen prompt
        is scored on test, in the background."""
        label = (f"Scoring the edited {candidate_id} on dev, then test…" if text is not None
                 else f"Accepting {candidate_id}: scoring it on test…")
        return self._submit("accept", label, lambda s, j: s.accept(candidate_id, text=text, on_progress=j.on_progress),
                            stoppable=False)

    def submit_accept_best(self) -> Job:
        """Accept the best not-yet-chosen candidate (scored on test), in the background."""
        return self._submit("accept", "Accepting the best candidate…",
                            lambda s, j: s.accept_best(j.on_progress), stoppable=False)

    def submit_reject_all(self) -> Job:
        """Reject every candidate of the pending step now; sample the step again in the background."""
        self.require_idle()
        step = self.runs.require_session().reject_all()
        return self._submit("resample", f"Rejected all; sampling step {step.step} again…",
                            lambda s, j: s.propose(j.on_progress, j.should_stop),
                            lambda st: f"Step {st.step}, attempt {st.attempt}: {len(st.candidates)} new candidates.")

    def submit_run_auto(self, n_steps: int) -> Job:
        """Run up to ``n_steps`` steps with the paper's automatic choice, in the background;
        each finished step is logged in the job and saved at once."""
        if n_steps < 1:
            raise ConfigError("Steps", "run at least 1 step")
        self.runs.require_session()
        self.auto_steps = n = int(n_steps)

        def work(session: GPOSession, job: Job) -> list[StepRecord]:
            return session.run_auto(n, on_step=lambda st: job.add_log(decision_text(st)),
                                    on_progress=job.on_progress, should_stop=job.should_stop)

        return self._submit("auto", f"Running {n} steps automatically…", work,
                            lambda done: f"Ran {len(done)} steps automatically.")

    # In the caller's thread --------------------------------------------------------------
    def reject(self, candidate_id: str, rejected: bool = True) -> CandidateRecord:
        """Reject one candidate of the pending step (``rejected=False``: restore it). The
        engine saves it at once and no decision path (auto, Accept best) chooses it."""
        self.require_idle()
        return self.runs.require_session().reject(candidate_id, rejected=rejected)

    def unreject(self, candidate_id: str) -> CandidateRecord:
        """Restore a rejected candidate of the pending step."""
        return self.reject(candidate_id, rejected=False)

    def undo(self) -> StepRecord:
        """Remove the last step record and restore the prompt from before it."""
        self.require_idle()
        return self.runs.require_session().undo()

    def use_draft_models(self) -> RunSettings:
        """Switch the open run to the model settings of the Models page: every later request
        uses them (temperature and max tokens included) and run.json records them. Refused
        (JobBusyError) while a job runs on the run."""
        session = self.runs.require_session()
        self.require_idle()
        draft = self.draft.settings
        new = session.settings.replace(task_model=draft.task_model, optimizer_model=draft.optimizer_model)
        session.use_models(self.models.build(new), new)
        return new

    def start(self, on_progress: Progress | None = None) -> dict:
        """Score the starting prompt on dev (and test). Returns the run's initial record."""
        return self.runs.require_session().start(on_progress)

    def next_step(self, on_progress: Progress | None = None) -> StepRecord:
        """Run the next step's model work (retrieve, meta-prompt, sample, score on dev) and
        leave it pending a decision; returns the pending step if there is one already."""
        return self.runs.require_session().propose(on_progress)

    def accept_best(self, on_progress: Progress | None = None) -> StepRecord:
        """Accept the best not-yet-chosen candidate of the pending step."""
        return self.runs.require_session().accept_best(on_progress)

    def run_auto(self, n_steps: int, on_step: Callable[[StepRecord], None] | None = None,
                 on_progress: Progress | None = None,
                 should_stop: Callable[[], bool] | None = None) -> list[StepRecord]:
        """Run up to n_steps steps with the paper's automatic choice (a pending step is
        decided first and counts as one). Every finished step is saved at once, so an
        interrupted run keeps them."""
        session = self.runs.require_session()
        if n_steps < 1:
            raise ConfigError("steps", "run at least 1 step")
        return session.run_auto(n_steps, on_step=on_step, on_progress=on_progress, should_stop=should_stop)
