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
from gpo_core.runs.seeds import SeedSummary
from gpo_core.runs.warm_start import WarmStart
from gpo_core.settings import RunSettings
from gpo_core.studio.draft import DraftSettings
from gpo_core.studio.messages import Flash
from gpo_core.studio.model_config import ModelConfig
from gpo_core.studio.runs import Runs
from gpo_core.studio.views.run_view import start_scored_text
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
        #: Per run id, the summary of its last "Repeat with seeds" (gpo_core.runs.seeds.SeedSummary).
        self.seed_summaries: dict[str, SeedSummary] = {}
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
        """Show ``text`` once where the job is shown (e.g. why an action was refused); the
        last job's kept outcome (:meth:`last_job_outcome`) gives way to it."""
        self.outcome = Flash(kind, text)
        self.runs.registry.keep_outcome(self.runs.run_id, None)

    def last_job_outcome(self) -> Flash | None:
        """The outcome of the open run's last finished job, shown where the job ran until the
        next action on the run, even after a reload (the tab's session state is new then;
        the process-wide registry keeps it), or None."""
        return self.runs.registry.kept_outcome(self.runs.run_id)

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
        # Say exactly what is on disk: "every finished step is kept" only when it is true
        # (a save refused after a take-over or by a full disk keeps less; issue 15, item 7).
        all_saved = session is None or session.repo.all_saved(session.state)
        exact = session.repo.kept_text(session.state) if session is not None else ""
        if v.state == "stopped":
            kept = f"Every finished step is kept: {done} of {total} steps done." if all_saved else exact
            flash = Flash("info", f"{v.message or 'Stopped.'} {kept}")
        elif v.state == "failed":
            error = (v.error or "unknown error").rstrip(".")
            kept = exact if not all_saved else (
                f"Every finished step is kept: {done} of {total} steps done." if v.kind != "start" else "")
            if exact and exact.rstrip(".") in error:
                kept = ""  # the error already says what is saved
            flash = Flash("error", f"{what} failed: {error}." + (f" {kept}" if kept else ""))
        elif v.message:
            flash = Flash("success", v.message)
        else:
            flash = None
        self.outcome = flash
        self.runs.registry.keep_outcome(self.runs.run_id, flash)
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
        session = self.runs.require_session()

        def describe(init: dict) -> str:  # with intervals; test hidden while a blind test is
            return start_scored_text(session.state)

        return self._submit("start", "Scoring the starting prompt on dev and test…",
                            lambda s, j: s.start(j.on_progress, j.should_stop), describe)

    def submit_new_run(self, start_from: WarmStart | None = None) -> Job:
        """Create a run with the draft settings and score its starting prompt in the background.
        start_from: a warm start (see :meth:`gpo_core.studio.runs.Runs.create`)."""
        self.runs.create(start_from)
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

    def submit_complete_step(self) -> Job:
        """Send again the dev calls of the pending step that were not answered (issue 15:
        such a step is not decided until they are), in the background."""
        return self._submit("step", "Sending the step's unanswered dev calls again…",
                            lambda s, j: s.complete_step(j.on_progress, j.should_stop),
                            lambda step: (f"Step {step.step}: every dev call is answered now." if not step.unanswered
                                          else f"Step {step.step}: {step.unanswered} dev call(s) still unanswered."))

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

        stop_notes: list[str] = []

        def work(session: GPOSession, job: Job) -> list[StepRecord]:
            done = session.run_auto(n, on_step=lambda st: job.add_log(decision_text(st, session.state)),
                                    on_progress=job.on_progress, should_stop=job.should_stop)
            if session.stop_note:  # early stopping (patience): say why the run stopped
                stop_notes.append(session.stop_note)
                job.add_log(session.stop_note[:1].upper() + session.stop_note[1:] + ".")
            return done

        def describe(done: list[StepRecord]) -> str:
            why = f" {stop_notes[-1][:1].upper()}{stop_notes[-1][1:]}." if stop_notes else ""
            return f"Ran {len(done)} step{'' if len(done) == 1 else 's'} automatically.{why}"

        return self._submit("auto", f"Running {n} step{'' if n == 1 else 's'} automatically…", work, describe)

    def submit_seeds(self, seeds: list[int]) -> Job:
        """Repeat the open run once per seed, in the background (issue 11, item 8): each seed is
        a new saved run "<run id>-seed<N>" on this run's task, examples and settings (only the
        seed differs: it draws the exemplars, so the optimizer's samples differ), run to its end
        with the run's decision policy (:func:`gpo_core.runs.seeds.repeat_runs`; a seed run
        already saved is resumed, not redone). The summary (final test accuracy: mean, sd,
        range) is kept in :attr:`seed_summaries` under the run id and is the job's message."""
        from gpo_core.runs.seeds import MAX_SEEDS, repeat_runs
        from gpo_core.studio.task_loader import task_from_run

        session = self.runs.require_session()
        seeds = [int(x) for x in seeds]
        if not seeds or len(seeds) > MAX_SEEDS or len(set(seeds)) != len(seeds):
            raise ConfigError("Seeds", f"give 1 to {MAX_SEEDS} different whole numbers, e.g. 1, 2, 3")
        run_id, task, settings, store = session.state.run_id, task_from_run(session.state), session.settings, \
            self.runs.store()

        def work(_s: GPOSession, job: Job):
            summary = repeat_runs(
                task, settings, seeds, self.models.build, lambda seed: store.run_dir(f"{run_id}-seed{seed}"),
                on_seed=lambda r: job.add_log(f"seed {r.seed}: done ({r.steps} steps)"),
                on_step=lambda seed, st: job.add_log(f"seed {seed}: " + decision_text(st)),
                should_stop=job.should_stop)
            self.seed_summaries[run_id] = summary
            return summary

        return self._submit("seeds", f"Repeating the run with seeds {', '.join(map(str, seeds))}…", work,
                            lambda summary: summary.lines()[-1][:1].upper() + summary.lines()[-1][1:] + ".")

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

    def reveal_test(self, by: str = "user") -> None:
        """Show the open run's blind test scores from now on ("Reveal test scores", or ``by``
        "export" when a download reveals them); recorded in the run and saved."""
        self.require_idle()
        self.runs.require_session().reveal_test(by)

    def set_spend_caps(self, max_cost: float | None, max_spend_tokens: int | None) -> RunSettings:
        """Change the open run's spend caps (None: no cap), e.g. raise a cap the run stopped
        on so it can continue; validated (ConfigError naming the widget), recorded in the
        run's settings and saved. Refused (JobBusyError) while a job runs on the run."""
        session = self.runs.require_session()
        self.require_idle()
        opt = session.settings.optimizer.replace(max_cost=max_cost, max_spend_tokens=max_spend_tokens).validate("app")
        new = session.settings.replace(optimizer=opt)
        session.use_models(session.models, new)
        return new

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
