"""Train/dev/test splitting: determinism, sizes, explicit (BBH) splits, errors."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from gpo_core.errors import ConfigError
from gpo_core.tasks.io import load_task
from gpo_core.tasks.splits import split_task
from gpo_core.tasks.task import Example, Task

BBH = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "bbh"


def _task(n: int = 100) -> Task:
    return Task(name="t", examples=[Example(f"q{i}", str(i % 3), i + 2) for i in range(n)])


def _inputs(xs: list[Example]) -> list[str]:
    return [e.input for e in xs]


def test_same_seed_same_split_and_rng_equivalent_to_seed():
    task = _task()
    a = split_task(task, dev_size=20, test_size=30, seed=7)
    b = split_task(task, dev_size=20, test_size=30, seed=7)
    c = split_task(task, dev_size=20, test_size=30, rng=random.Random(7))
    assert a == b == c
    d = split_task(task, dev_size=20, test_size=30, seed=8)
    assert _inputs(d.dev) != _inputs(a.dev)


def test_sizes_disjoint_and_complete():
    task = _task()
    before = list(task.examples)
    s = split_task(task, dev_size=20, test_size=30)
    assert (len(s.dev), len(s.test), len(s.train)) == (20, 30, 50)
    all_inputs = _inputs(s.dev) + _inputs(s.test) + _inputs(s.train)
    assert sorted(all_inputs) == sorted(_inputs(before))
    assert task.examples == before  # the task itself is not shuffled
    assert _inputs(s.dev) != _inputs(before[:20])  # it was shuffled
    assert s.exemplars == s.train


def test_train_size_caps_train_only():
    s = split_task(_task(), dev_size=10, test_size=10, train_size=5)
    assert (len(s.dev), len(s.test), len(s.train)) == (10, 10, 5)
    assert split_task(_task(), dev_size=10, test_size=10, train_size=500).train.__len__() == 80


def test_test_size_zero_is_allowed():
    s = split_task(_task(10), dev_size=4, test_size=0)
    assert (len(s.dev), len(s.test), len(s.train)) == (4, 0, 6)


def test_no_train_left_uses_dev_as_exemplars():
    s = split_task(_task(10), dev_size=6, test_size=4)
    assert s.train == []
    assert s.exemplars == s.dev


def test_format_examples_are_the_exemplars():
    task = _task(20)
    task.format_examples = [Example("f1", "0"), Example("f2", "1")]
    s = split_task(task, dev_size=5, test_size=5)
    assert _inputs(s.exemplars) == ["f1", "f2"]


@pytest.mark.parametrize(
    "kwargs, setting, says",
    [
        (dict(dev_size=150, test_size=0), "dev_size", "150 dev examples asked for, but the task has only 100"),
        (dict(dev_size=10, test_size=101), "test_size", "101 test examples asked for, but the task has only 100"),
        (dict(dev_size=60, test_size=50), "dev_size", "60 dev + 50 test = 110 examples exceeds the 100"),
        (dict(dev_size=-1, test_size=10), "dev_size", "must be 0 or more examples, got -1"),
        (dict(dev_size=10, test_size=-3), "test_size", "must be 0 or more examples, got -3"),
        (dict(dev_size=10, test_size=10, train_size=-1), "train_size", "must be 0 or more examples, got -1"),
        (dict(dev_size=0, test_size=10), "dev_size", "at least 1"),
        (dict(dev_size=None, test_size=10), "dev_size", "must be set"),
        (dict(dev_size=2.5, test_size=10), "dev_size", "whole number"),
        (dict(dev_size=True, test_size=10), "dev_size", "whole number"),
    ],
)
def test_bad_sizes_name_the_setting_and_numbers(kwargs, setting, says):
    with pytest.raises(ConfigError) as info:
        split_task(_task(), **kwargs)
    assert info.value.setting == setting
    assert says in str(info.value)


def _explicit() -> Task:
    ex = lambda p, n: [Example(f"{p}{i}", "x") for i in range(n)]  # noqa: E731
    return Task(name="b", examples=[], explicit_splits={"train": ex("tr", 8), "eval": ex("ev", 6), "test": ex("te", 9)})


def test_explicit_splits_taken_in_file_order():
    s = split_task(_explicit(), dev_size=4, test_size=5, seed=123)
    assert _inputs(s.train) == [f"tr{i}" for i in range(8)]
    assert _inputs(s.dev) == [f"ev{i}" for i in range(4)]
    assert _inputs(s.test) == [f"te{i}" for i in range(5)]
    assert s.exemplars == s.train
    full = split_task(_explicit(), dev_size=None, test_size=None)
    assert (len(full.train), len(full.dev), len(full.test)) == (8, 6, 9)
    assert len(split_task(_explicit(), dev_size=2, test_size=2, train_size=3).train) == 3


def test_explicit_split_too_small():
    with pytest.raises(ConfigError) as info:
        split_task(_explicit(), dev_size=7, test_size=1)
    assert info.value.setting == "dev_size" and "eval split has only 6" in str(info.value)
    with pytest.raises(ConfigError) as info:
        split_task(_explicit(), dev_size=1, test_size=10)
    assert info.value.setting == "test_size" and "test split has only 9" in str(info.value)


def test_bbh_folder_split():
    folder = BBH / "navigate"
    if not folder.is_dir():
        pytest.skip(f"BBH data not present at {folder}")
    task = load_task(folder)
    s = split_task(task, dev_size=20, test_size=None)
    assert s.dev == task.explicit_splits["eval"][:20]
    assert s.test == task.explicit_splits["test"]
    assert s.train == task.explicit_splits["train"]
    assert s.exemplars == task.format_examples
