import subprocess
import sys

import pytest

from gpo_core.errors import ConfigError
from gpo_core.optimizer.schedule import budget_schedule, edit_budget

PAPER_COSINE = [49, 48, 47, 45, 42, 40, 36, 33, 30, 26, 23, 20, 17, 14, 12, 11, 10, 10]
PAPER_LINEAR = [47, 45, 43, 41, 38, 36, 34, 32, 30, 27, 25, 23, 21, 18, 16, 14, 12, 10]


def test_cosine_matches_the_papers_convention():
    assert budget_schedule(kind="cosine", initial=50, final=10, total_steps=18) == PAPER_COSINE


def test_linear_matches_the_papers_convention():
    assert budget_schedule(kind="linear", initial=50, final=10, total_steps=18) == PAPER_LINEAR


def test_fixed_is_constant():
    assert set(budget_schedule(kind="fixed", initial=25, final=10, total_steps=5)) == {25}


def test_warmup_rises_then_decays():
    b = budget_schedule(kind="cosine", initial=50, final=10, total_steps=10, warmup=2)
    assert b[:2] == [25, 50]
    assert b[-1] == 10
    assert all(x >= y for x, y in zip(b[2:], b[3:]))


@pytest.mark.parametrize("kw,setting", [
    (dict(initial=10, final=50), "budget_final"),
    (dict(total_steps=0), "steps"),
    (dict(kind="exponential"), "schedule"),
    (dict(warmup=18), "warmup"),
])
def test_bad_schedules_are_refused_naming_the_setting(kw, setting):
    args = dict(kind="cosine", initial=50, final=10, total_steps=18) | kw
    with pytest.raises(ConfigError, match=setting):
        budget_schedule(**args)


def test_step_outside_range_is_refused():
    with pytest.raises(ConfigError):
        edit_budget(19, total_steps=18)


def test_cli_prints_one_budget_per_line():
    out = subprocess.run([sys.executable, "-m", "gpo_core", "schedule", "--kind", "cosine", "--initial", "50",
                          "--final", "10", "--steps", "18"], capture_output=True, text=True, check=True).stdout
    assert [int(x) for x in out.split()] == PAPER_COSINE
