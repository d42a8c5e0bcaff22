"""Classification report (issue 12, item 3): per-class precision / recall / F1, confusion
matrix, majority-class baseline; shown on the Results page for label tasks."""

from __future__ import annotations

from typing import Any

import pytest

from gpo_core.metrics.class_report import NO_ANSWER, OTHER_ANSWER, class_report, is_label_task, majority_baseline
from gpo_core.stats import wilson_interval
from gpo_core.studio.views import class_report_view
from gpo_core.studio.views.uncertainty import records_accuracy

from app_support import app_for, make_studio, no_exception, started_run, texts


def _rec(target: str, answer: str | None, error: str | None = None) -> dict[str, Any]:
    return dict(input="x", target=target, parsed_answer=answer, correct=answer == target.lower(), error=error,
                score=None)


def _always_yes() -> list[dict[str, Any]]:
    # 7 gold "yes", 5 gold "no"; the prompt answers "yes" to all
    return [_rec("Yes", "yes") for _ in range(7)] + [_rec("No", "yes") for _ in range(5)]


def test_always_answering_positive_shows_recall_one_and_zero_and_the_baseline_equals_its_accuracy():
    recs = _always_yes()
    rep = class_report(recs, "yes_no")
    assert rep is not None
    assert rep.labels == ["no", "yes"] and rep.columns == ["no", "yes", NO_ANSWER]
    assert rep.matrix == [[0, 5, 0], [0, 7, 0]]
    by = {c.label: c for c in rep.classes}
    assert by["yes"].recall == 1.0 and by["no"].recall == 0.0
    assert by["yes"].precision == pytest.approx(7 / 12) and by["no"].precision is None  # never predicted
    assert by["yes"].f1 == pytest.approx(2 * (7 / 12) / (1 + 7 / 12)) and by["no"].f1 is None
    assert (by["yes"].support, by["no"].support) == (7, 5)
    share, interval = rep.baseline
    acc = records_accuracy(recs)
    assert acc is not None and share == pytest.approx(acc.value) == pytest.approx(7 / 12)
    assert interval == pytest.approx(wilson_interval(7, 12))
    lo, hi = wilson_interval(7, 12)
    assert rep.baseline_text() == (f"majority-class baseline: 58% [{100 * lo:.0f}–{100 * hi:.0f}%] "
                                   "(always 'yes', 7 of 12)")


def test_no_answer_and_other_answers_get_their_own_columns_and_failed_calls_are_left_out():
    recs = [_rec("(A)", "(A)"), _rec("(A)", None), _rec("(B)", "(E)"), _rec("(B)", "(B)"),
            _rec("(B)", None, error="HTTP 500")]
    rep = class_report(recs, "multiple_choice")
    assert rep is not None and rep.n == 4
    assert rep.columns == ["(A)", "(B)", OTHER_ANSWER, NO_ANSWER]
    assert rep.matrix == [[1, 0, 0, 1], [0, 1, 1, 0]]
    by = {c.label: c for c in rep.classes}
    assert by["(A)"].recall == 0.5 and by["(A)"].precision == 1.0


def test_which_tasks_are_label_tasks():
    assert is_label_task("yes_no", [])
    assert is_label_task("multiple_choice", ["(A)"])
    assert not is_label_task("number", ["1", "2"])
    assert not is_label_task("yes_no", ["yes"], metric="regex")  # another metric scores something else
    assert is_label_task("exact_match", ["pos", "neg", "Pos."])
    assert not is_label_task("exact_match", [f"label {i}" for i in range(21)])
    assert not is_label_task("exact_match", ["2001-03-04", "1999-12-31", "2010-07-01"])  # no label repeats
    assert majority_baseline(["Pos", "neg", "pos."], "exact_match") == ("pos", 2, 3)


def _label_csv() -> bytes:
    # exact_match with 9 labels: sums 2..10 of distinct questions the demo task model answers
    lines = ["question,answer"] + [f"What is {a} + {b}?,{a + b}" for a in range(1, 7) for b in range(1, 5)]
    return ("\n".join(lines) + "\n").encode()


def test_results_page_shows_the_report_of_a_label_task_run_on_demo_models(tmp_path):
    studio = make_studio(tmp_path)
    studio.tasks.preview_upload(_label_csv(), "sums.csv")
    studio.tasks.load_upload("question", "answer", answer_type="exact_match")
    studio.tasks.update_splits(dev_size=8, test_size=6, seed=0)
    started_run(studio, steps=2, candidates=2)
    at = app_for(studio, "pages/results.py")
    at.selectbox(key="records_a").set_value("initial").run()
    no_exception(at)
    records = studio.runs.records("initial", "dev")
    rep = class_report_view.report_of(studio.runs.session.state, records)
    assert rep is not None
    assert any(rep.baseline_text() in t for t in texts(at.caption))
    table = next(d.value for d in at.dataframe if "recall %" in d.value.columns)
    assert list(table["class"]) == rep.labels and sum(int(x) for x in table["support"]) == rep.n
    heat = next(c for c in at.get("plotly_chart") if "Confusion matrix" in c.proto.spec)
    assert "Heatmap".lower() in heat.proto.spec.lower()
    dev_line = class_report_view.dev_baseline(studio.runs.session.state)
    assert dev_line is not None and dev_line.startswith("majority-class baseline: ")
    shown = dev_line[:1].upper() + dev_line[1:] + " on dev."
    assert shown in texts(at.caption)  # beside the run's accuracies at the top of Results
    optimize = app_for(studio, "pages/optimize.py")
    no_exception(optimize)
    assert shown in texts(optimize.caption)  # and beside the accuracies on the Optimize page


def test_results_page_shows_no_report_for_a_number_task(tmp_path):
    from app_support import arithmetic_studio

    studio = started_run(arithmetic_studio(tmp_path), steps=2, candidates=2)
    at = app_for(studio, "pages/results.py")
    no_exception(at)
    assert not any("majority-class baseline" in t for t in texts(at.caption))
    assert not any("recall %" in d.value.columns for d in at.dataframe)


def test_an_exact_match_task_whose_answers_all_differ_gets_no_majority_baseline(tmp_path):
    # seen on a screenshot of a date_normalization run: "Majority-class baseline: 8% [1–35%]
    # (always '2000-02-18', 1 of 12) on dev." Twelve different dates are answers, not classes.
    import datetime

    day = datetime.date(2000, 1, 1)
    lines = ["sentence,date"] + [f"It happened {k} days after new year 2000.,{day + datetime.timedelta(days=k)}"
                                 for k in range(30)]
    studio = make_studio(tmp_path)
    studio.tasks.preview_upload(("\n".join(lines) + "\n").encode(), "dates.csv")
    studio.tasks.load_upload("sentence", "date", answer_type="exact_match")
    studio.tasks.update_splits(dev_size=12, test_size=12, seed=0)
    started_run(studio, steps=2, candidates=2)
    assert class_report_view.dev_baseline(studio.runs.session.state) is None
    for page in ("pages/optimize.py", "pages/results.py"):
        at = app_for(studio, page)
        no_exception(at)
        assert not any("ajority-class baseline" in t for t in texts(at.caption)), page


def test_the_splits_of_one_label_run_share_one_verdict():
    from gpo_core.metrics.class_report import baselines_by_split

    # 6 test sums may all differ while the task's labels repeat: both splits get a baseline
    found = baselines_by_split({"dev": ["3", "4", "4", "5"], "test": ["2", "3", "4", "5", "6", "7"]}, "exact_match")
    assert set(found) == {"dev", "test"} and "always '4'" in found["dev"]
    assert baselines_by_split({"dev": ["2001-03-04"], "test": ["1999-12-31", "2010-07-01"]}, "exact_match") == {}


def test_numeric_labels_sort_by_value_and_undefined_scores_show_a_dash():
    rep = class_report([_rec("10", "10"), _rec("2", "10"), _rec("9", "9")], "exact_match")
    assert rep is not None and rep.labels == ["2", "9", "10"]
    frame = class_report_view.classes_frame(rep)
    assert list(frame["precision %"]) == ["–", "100.0", "50.0"] and list(frame["recall %"]) == ["0.0", "100.0", "100.0"]
