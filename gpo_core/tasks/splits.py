"""Split a task into train / dev / test sets, deterministically.

Roles (GPO, Tang et al. 2024, Sec. 4 / the paper's code): *train* is the pool the meta-prompt's
task exemplars come from, *dev* scores every candidate prompt (the optimization signal), *test*
is held out and only reported.
"""

from __future__ import annotations

import random

from gpo_core.errors import ConfigError
from gpo_core.tasks.task import Example, Task, TaskSplits


def split_task(
    task: Task,
    *,
    dev_size: int | None,
    test_size: int | None,
    train_size: int | None = None,
    seed: int = 0,
    rng: random.Random | None = None,
) -> TaskSplits:
    """Split ``task`` into train, dev and test example lists (sizes in examples).

    Explicit splits (``task.explicit_splits``, e.g. a BBH folder) are used as given, in file
    order, without shuffling: ``train`` = the train file (first ``train_size`` if set),
    ``dev`` = the first ``dev_size`` examples of the eval file (all when ``None``), ``test`` =
    the first ``test_size`` of the test file (all when ``None``).

    Otherwise the examples are shuffled with ``rng`` (or ``random.Random(seed)`` when ``rng``
    is ``None``; the task is not modified) and cut in order: ``dev_size`` dev examples, then
    ``test_size`` test examples, then the rest is train (capped at ``train_size``). The same
    seed always gives the same split. ``dev_size`` and ``test_size`` are required here.

    ``exemplars`` (shown to the optimizer in the meta-prompt) are ``task.format_examples``
    when present, else train. When no train examples remain (``dev_size + test_size`` uses
    every example, or ``train_size=0``) and there are no format examples, exemplars fall back
    to dev; callers detect this as ``not splits.train and not task.format_examples`` (the
    optimizer then sees a few dev examples).

    Raises:
        ConfigError: naming the setting, when a size is negative or not an integer,
            ``dev_size`` is 0 (no dev set to score candidates), a size exceeds the examples
            available, or ``dev_size + test_size`` exceeds the number of examples.
    """
    _check_size("dev_size", dev_size, allow_none=bool(task.explicit_splits))
    _check_size("test_size", test_size, allow_none=bool(task.explicit_splits))
    _check_size("train_size", train_size, allow_none=True)
    if dev_size == 0:
        raise ConfigError("dev_size", "must be at least 1: the dev set scores every candidate prompt")

    if task.explicit_splits:
        train_all = list(task.explicit_splits.get("train", []))
        eval_all = list(task.explicit_splits.get("eval", []))
        test_all = list(task.explicit_splits.get("test", []))
        dev = _take("dev_size", eval_all, dev_size, "eval split")
        test = _take("test_size", test_all, test_size, "test split")
        train = train_all if train_size is None else train_all[:train_size]
    else:
        examples = list(task.examples)
        n = len(examples)
        assert dev_size is not None and test_size is not None  # checked above
        if dev_size > n:
            raise ConfigError("dev_size", f"{dev_size} dev examples asked for, but the task has only {n} examples")
        if test_size > n:
            raise ConfigError("test_size", f"{test_size} test examples asked for, but the task has only {n} examples")
        if dev_size + test_size > n:
            raise ConfigError(
                "dev_size",
                f"{dev_size} dev + {test_size} test = {dev_size + test_size} examples "
                f"exceeds the {n} examples of the task",
            )
        shuffler = rng if rng is not None else random.Random(seed)
        shuffler.shuffle(examples)
        dev = examples[:dev_size]
        test = examples[dev_size : dev_size + test_size]
        rest = examples[dev_size + test_size :]
        train = rest if train_size is None else rest[:train_size]

    if task.format_examples:
        exemplars = list(task.format_examples)
    elif train:
        exemplars = list(train)
    else:
        exemplars = list(dev)
    return TaskSplits(train=train, dev=dev, test=test, exemplars=exemplars)


def _check_size(name: str, value: int | None, *, allow_none: bool) -> None:
    if value is None:
        if not allow_none:
            raise ConfigError(name, "must be set (a number of examples) when the task has no explicit splits")
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, f"must be a whole number of examples, got {value!r}")
    if value < 0:
        raise ConfigError(name, f"must be 0 or more examples, got {value}")


def _take(setting: str, pool: list[Example], size: int | None, what: str) -> list[Example]:
    if size is None:
        return pool
    if size > len(pool):
        raise ConfigError(setting, f"{size} examples asked for, but the task's {what} has only {len(pool)}")
    return pool[:size]


#: Defaults as in the paper (dev = 48 examples, test = up to 144); a few examples are kept
#: for train so the meta-prompt has exemplars to draw from.
PAPER_DEV_SIZE = 48
PAPER_TEST_SIZE = 144
MIN_TRAIN_LEFT = 10


def default_split_sizes(task: Task, dev_size: int | None = None,
                        test_size: int | None = None) -> tuple[int | None, int | None]:
    """Fill in unset split sizes. Explicit splits keep ``None`` (= the whole split).
    Otherwise dev defaults to min(48, n // 4) and test to min(144, n - dev - 10), n = examples."""
    if task.explicit_splits:
        return dev_size, test_size
    n = len(task.examples)
    dev = dev_size if dev_size is not None else max(1, min(PAPER_DEV_SIZE, n // 4))
    test = test_size if test_size is not None else max(0, min(PAPER_TEST_SIZE, n - dev - MIN_TRAIN_LEFT))
    return dev, test
