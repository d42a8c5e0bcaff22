"""Scripted task and optimizer models for engine tests (no real model).

Task: "Is N even?" -> yes/no. The scripted task model answers correctly only when the
instruction in its prompt contains the word "carefully"; otherwise it always says "yes"
(so accuracy = share of even numbers). The scripted optimizer answers by sample index.
"""

import re
from dataclasses import dataclass
from typing import Any

from gpo_core.models.base import ChatRequest
from gpo_core.optimizer.session import Models
from gpo_core.settings import RunSettings
from gpo_core.tasks.task import Example, Task, TaskSplits
from gpo_testkit.embedders import HashingEmbedder
from gpo_testkit.flat_settings import flat_run_settings
from gpo_testkit.scripted import ScriptedChatModel

OPTIMIZER_REPLIES = {
    0: "<INS>Let's think step by step carefully.</INS>",
    1: "<INS>Answer with yes or no.</INS>",
    2: "Sure! Here it is:\nSolve the problem and reply with one word.",
    3: "",
    4: "<INS>Answer with yes or no.</INS>",        # same as sample 1: a duplicate on resampling
    5: "<INS>Let's think step by step.</INS>",     # the starting prompt again
}


def task_answer(req: ChatRequest) -> str:
    prompt = req.messages[-1][1]
    n = int(re.search(r"Is (\d+) even", prompt).group(1))
    if "carefully" in prompt:
        return "The answer is " + ("yes" if n % 2 == 0 else "no") + "."
    return "yes"


def optimizer_answer(req: ChatRequest) -> str:
    i = req.sample_index
    if i in OPTIMIZER_REPLIES:
        return OPTIMIZER_REPLIES[i]
    return f"<INS>Check carefully whether the number is even, variant {i}.</INS>"


def parity_task() -> Task:
    ex = [Example(f"Is {n} even?", "yes" if n % 2 == 0 else "no") for n in range(1, 41)]
    return Task(name="parity", examples=ex, answer_type="yes_no", instruction_position="Q_end",
                initial_instruction="Let's think step by step.")


def parity_splits() -> TaskSplits:
    ex = parity_task().examples
    # dev: 3 of 8 even -> "always yes" scores 0.375
    odd = [e for e in ex if int(e.input.split()[1]) % 2 == 1]
    even = [e for e in ex if int(e.input.split()[1]) % 2 == 0]
    dev = odd[:5] + even[:3]
    rest = [e for e in ex if e not in dev]
    return TaskSplits(train=rest[:20], dev=dev, test=rest[20:30], exemplars=rest[:20])


@dataclass
class ScriptedModels(Models):
    """:class:`Models` whose task and optimizer models are scripted (their ``calls`` are
    the requests they got)."""

    task: ScriptedChatModel
    optimizer: ScriptedChatModel


def fake_models() -> ScriptedModels:
    task = ScriptedChatModel(task_answer, name="fake-task", max_concurrency=8)
    opt = ScriptedChatModel(optimizer_answer, name="fake-optimizer", max_concurrency=8)
    return ScriptedModels(task, opt, HashingEmbedder())


def run_settings(concurrency: int = 8, **flat: Any) -> RunSettings:
    """RunSettings from flat names (steps=, candidates=, dev_size=, seed=, task_max_tokens=,
    optimizer_temperature=, ...): the optimizer's, the split's, and ``<role>_<field>`` of
    each model; both models on the scripted ``demo`` backend with ``concurrency``.

    The meta-prompt layout defaults to "short" here (not the product's "gpo"): the scripted
    optimizer replies above exercise the graceful extraction rules that go with it. The GPO
    layout's path (tags, whole-reply fallback, echo refusals) is tested in test_fidelity.py."""
    flat.setdefault("layout", "short")
    return flat_run_settings(
        {"task": {"backend": "demo", "model": "fake-task", "temperature": 0.0, "concurrency": concurrency},
         "optimizer": {"backend": "demo", "model": "fake-optimizer", "temperature": 1.0, "max_tokens": 200,
                       "concurrency": concurrency}}, **flat)
