"""Figure 1 - step time against the limit.

One full GPO step (propose: 8 optimizer calls, then 8 x 48 dev calls; decide_auto: the
chosen prompt's test calls) through the engine's real OpenAI path (OpenAIChatModel ->
openai SDK -> HTTP) against the loopback fake server (100 ms latency, own process), at
concurrency 32, with no response cache, saving the run to a temp folder as the app does.

Floor: the bare openai SDK (openai.OpenAI + a ThreadPoolExecutor of 32) replaying the very
same request bodies the engine sent (recorded by the server), in the same three phases,
against the same server, in the same process run. Ratio = engine step / floor. Engine and
floor alternate order over the repetitions; the median ratio is reported.

Wave bound: sum over the three dependent phases of ceil(calls / 32) x latency.

Usage: .venv/bin/python benchmarks/step_time.py [--reps 5] [--task date_understanding]
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchlib import ServerProcess, bbh_task, bench_settings, emit, median, openai_model, r, timer

GOAL = 1.15
CPU: dict[str, list[float]] = {"engine": [], "floor": []}


def make_session(task, models, run_dir: Path, concurrency: int, base_url: str):
    from gpo_core.optimizer.session import GPOSession

    settings = bench_settings(concurrency, base_url, steps=18, candidates=8, k=3, dev_size=48, seed=0)
    return GPOSession.create(task, settings, models, run_dir=run_dir)


def engine_step(session) -> tuple[float, dict]:
    t0, c0 = timer(), time.process_time()
    step = session.propose()
    session.decide_auto()
    dt = timer() - t0
    CPU["engine"].append(time.process_time() - c0)
    counts = {"optimizer": len(step.optimizer_calls), "dev": step.usage_dev.calls,
              "test": step.usage_test.calls if step.usage_test else 0}
    return dt, counts


def floor_replay(client, pool, phases: list[list[dict]]) -> float:
    def call(body):
        resp = client.chat.completions.create(**body)
        return resp.choices[0].message.content

    t0, c0 = timer(), time.process_time()
    for bodies in phases:
        list(pool.map(call, bodies))
    dt = timer() - t0
    CPU["floor"].append(time.process_time() - c0)
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--task", default="date_understanding")
    ap.add_argument("--latency-ms", type=float, default=100.0)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--profile", help="write a pyinstrument HTML profile of one engine step here")
    a = ap.parse_args()

    import openai

    from gpo_core.optimizer.session import Models
    from gpo_testkit.embedders import HashingEmbedder

    conc, lat = a.concurrency, a.latency_ms / 1000.0
    task = bbh_task(a.task)
    tmp = Path(tempfile.mkdtemp(prefix="gpo-bench-step-"))
    engine_times, floor_times, ratios = [], [], []
    try:
        with ServerProcess(latency_s=lat) as server:
            task_model = openai_model(server.base_url, conc)
            opt_model = openai_model(server.base_url, conc)
            # Retrieval is measured on its own (retrieval.py); a hashing embedder keeps torch out
            # of this process. In step 1 the real embedder would embed 1 text (~10 ms).
            models = Models(task_model, opt_model, HashingEmbedder())
            client = openai.OpenAI(base_url=server.base_url, api_key="bench-not-a-key", max_retries=0)
            pool = ThreadPoolExecutor(max_workers=conc)

            # Warm-up repetition (not timed): records the bodies the floor replays.
            s = make_session(task, models, tmp / "warm", conc, server.base_url)
            s.start()
            server.reset()
            _, counts = engine_step(s)
            bodies = server.bodies()
            n_opt, n_dev, n_test = counts["optimizer"], counts["dev"], counts["test"]
            assert len(bodies) == n_opt + n_dev + n_test, (len(bodies), counts)
            phases = [bodies[:n_opt], bodies[n_opt:n_opt + n_dev], bodies[n_opt + n_dev:]]
            floor_replay(client, pool, phases)  # warm the floor's connections

            for rep in range(a.reps):
                s = make_session(task, models, tmp / f"rep{rep}", conc, server.base_url)
                s.start()  # step 0 (not timed)
                order = ("engine", "floor") if rep % 2 == 0 else ("floor", "engine")
                e = f = None
                for which in order:
                    if which == "engine":
                        server.reset()
                        e, c = engine_step(s)
                        assert c == counts, (c, counts)
                        assert server.stats()["chat_requests"] == n_opt + n_dev + n_test
                    else:
                        f = floor_replay(client, pool, phases)
                engine_times.append(e)
                floor_times.append(f)
                ratios.append(e / f)
                print(f"rep {rep}: engine {e:.3f}s floor {f:.3f}s ratio {e / f:.3f}", flush=True)

            if a.profile:
                from pyinstrument import Profiler  # pyright: ignore[reportMissingImports]  # bench extra, may be absent

                s = make_session(task, models, tmp / "prof", conc, server.base_url)
                s.start()
                prof = Profiler(interval=0.0005)
                prof.start()
                engine_step(s)
                prof.stop()
                Path(a.profile).write_text(prof.output_html(), encoding="utf-8")
                print(prof.output_text(unicode=False, color=False, show_all=False)[:6000])
            pool.shutdown()
            client.close()
            task_model.close()
            opt_model.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    waves = [math.ceil(n / conc) for n in (n_opt, n_dev, n_test) if n]
    wave_bound = sum(waves) * lat
    ratio = median(ratios)
    emit({
        "figure": "step_time",
        "goal": f"engine step / bare-SDK floor <= {GOAL}",
        "measured": f"{ratio:.3f}",
        "met": ratio <= GOAL,
        "ratio_median": r(ratio),
        "ratios": [r(x) for x in ratios],
        "engine_step_s_median": r(median(engine_times)),
        "floor_s_median": r(median(floor_times)),
        "wave_bound_s": r(wave_bound),
        "engine_over_wave_bound": r(median(engine_times) / wave_bound),
        "floor_over_wave_bound": r(median(floor_times) / wave_bound),
        "client_cpu_s_median": {"engine": r(median(CPU["engine"][1:])), "floor": r(median(CPU["floor"][1:]))},
        "calls": {"optimizer": n_opt, "dev": n_dev, "test": n_test},
        "waves": waves,
        "task": a.task, "latency_ms": a.latency_ms, "concurrency": conc, "reps": a.reps,
    })


if __name__ == "__main__":
    main()
