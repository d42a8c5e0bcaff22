"""Metrics (issue 12, item 1): each metric on hand-made examples, the protocol's error
contract, and the answer types unchanged as metrics."""

from __future__ import annotations

import pytest

from gpo_core.errors import ConfigError
from gpo_core.metrics import build_metric, get_metric, metric_names
from gpo_core.metrics.base import Metric
from gpo_core.metrics.common import references
from gpo_core.metrics.options import parse_metric_options
from gpo_core.scoring.answers import extract_answer, is_correct
from gpo_core.tasks.task import ANSWER_TYPES, Example


def score(metric: Metric, output: str, target: str) -> float:
    return metric.score_many([output], [Example("q", target, 1)])[0].score


def test_every_builtin_is_registered_and_follows_the_protocol():
    names = metric_names()
    for name in (*ANSWER_TYPES, "regex", "numeric", "json_keys", "set_f1", "token_f1", "rouge_l", "user_code"):
        assert name in names
    for name in (*ANSWER_TYPES, "numeric", "json_keys", "set_f1", "token_f1", "rouge_l"):
        m = get_metric(name)
        assert isinstance(m, Metric) and m.definition()
    assert get_metric("number").binary and not get_metric("rouge_l").binary


@pytest.mark.parametrize("answer_type,output,target", [
    ("multiple_choice", "The answer is (C). Not (A).", "(C)"),
    ("number", "I think 12, no wait, 1,234.50", "1234.5"),
    ("yes_no", "Yes, it returns.", "yes"),
    ("exact_match", "Answer: Apple, banana", "apple banana"),
    ("contains", "it is 15 apples", "5"),
    ("true_false", "false", "True"),
])
def test_answer_type_metrics_score_as_the_answer_rules(answer_type, output, target):
    m = get_metric(answer_type)
    res = m.score_many([output], [Example("q", target)])[0]
    assert res.score == float(is_correct(extract_answer(output, answer_type), target, answer_type))
    assert res.parsed == extract_answer(output, answer_type)
    assert (res.reason is None) == (res.score == 1.0)


def test_answer_type_metric_refuses_a_target_of_another_type_naming_the_line():
    with pytest.raises(ConfigError, match="line 7: target 'maybe' is not a number"):
        get_metric("number").check([Example("q", "3", 6), Example("q", "maybe", 7)])


def test_regex_extracts_a_group_and_refuses_a_pattern_that_does_not_compile():
    m = get_metric("regex", pattern=r"Label:\s*(\w+)")
    assert score(m, "blah\nLabel: Spam", "spam") == 1.0
    assert score(m, "Label: ham", "spam") == 0.0
    assert score(m, "no label here", "spam") == 0.0
    assert score(get_metric("regex", pattern=r"\d{4}-\d{2}", compare="false"), "on 2021-03", "anything") == 1.0
    with pytest.raises(ConfigError) as e:
        get_metric("regex", pattern="Answer: (")
    assert e.value.setting == "metric_options.pattern" and "not a valid regular expression" in e.value.reason
    with pytest.raises(ConfigError, match="needs a pattern"):
        get_metric("regex")


def test_numeric_tolerance_absolute_and_relative():
    assert score(get_metric("numeric"), "about 101", "100") == 1.0  # default rel_tol 1%
    assert score(get_metric("numeric"), "about 102", "100") == 0.0
    assert score(get_metric("numeric", abs_tol="0.5", rel_tol="0"), "3.4", "3") == 1.0
    assert score(get_metric("numeric", abs_tol="0.5", rel_tol="0"), "3.6", "3") == 0.0
    with pytest.raises(ConfigError, match="must be a number >= 0"):
        get_metric("numeric", abs_tol="-1")
    with pytest.raises(ConfigError, match="line 2"):
        get_metric("numeric").check([Example("q", "x", 2)])


def test_json_keys_partial_credit_fenced_block_and_unknown_key():
    m = get_metric("json_keys", keys="name,city,order")
    target = '{"name": "Ada Byron", "city": "Leeds", "order": "48213"}'
    fenced = 'Sure!\n```json\n{"name": "ada byron", "city": "Leeds", "order": 48213}\n```'
    assert score(m, fenced, target) == 1.0  # case, and the number 48213 vs text "48213": normalized text
    res = m.score_many(['{"name": "Ada Byron", "city": "York"}'], [Example("q", target)])[0]
    assert res.score == pytest.approx(1 / 3) and "city, order" in res.reason
    assert score(m, "no json at all", target) == 0.0
    assert score(get_metric("json_keys"), 'x {"a": 1, "b": 2} y', '{"a": 1, "b": 3}') == 0.5  # all target keys
    with pytest.raises(ConfigError) as e:
        get_metric("json_keys", keys="name,zip").check([Example("q", target, 4)])
    assert e.value.setting == "metric_options.keys" and "line 4" in e.value.reason and "'zip'" in e.value.reason
    with pytest.raises(ConfigError, match="line 3: the target is not a JSON object"):
        m.check([Example("q", "plain", 3)])


def test_set_f1_multi_label():
    m = get_metric("set_f1")
    assert score(m, "Answer: red, Blue", "blue,red") == 1.0
    assert score(m, "Answer: red, green", "red,blue") == 0.5  # 2*1/(2+2)
    assert score(m, '["red", "blue", "green"]', '["red"]') == 0.5  # 2*1/(3+1)
    assert score(m, "", "red") == 0.0
    assert score(get_metric("set_f1", separator=";"), "a; b", "a;b") == 1.0


def test_token_f1_is_squads_and_takes_the_best_reference():
    m = get_metric("token_f1")
    assert score(m, "The cat sat.", "a cat sat") == 1.0  # articles and punctuation dropped
    assert score(m, "cat sat on mat", "cat sat") == pytest.approx(2 * (2 / 4) * 1 / (2 / 4 + 1))
    assert score(m, "dog", '["cat", "dog"]') == 1.0


def test_rouge_l_by_the_rouge_score_library_against_one_or_several_references():
    from rouge_score import rouge_scorer

    m = get_metric("rouge_l")
    out, ref = "the cat was found under the bed", "the cat was under the bed"
    expected = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True).score(ref, out)["rougeL"].fmeasure
    assert score(m, out, ref) == pytest.approx(expected) and 0 < expected < 1
    assert score(m, "Oslo: sunny, calm wind.", '["In Oslo it will be sunny.", "Oslo: sunny, calm wind."]') == 1.0
    assert references('["a", "b"]') == ["a", "b"] and references("[not json") == ["[not json"]


def test_user_code_scores_records_errors_and_is_refused_when_it_cannot_run(tmp_path):
    code = tmp_path / "mymetric.py"
    code.write_text("def score(output, target, input):\n"
                    "    if output == 'boom':\n        raise ValueError('bad output')\n"
                    "    return (0.5, 'half') if output == 'half' else output.strip() == target\n")
    m = build_metric(f"{code}:score", {}, "exact_match")
    res = m.score_many(["42", "half", "boom", "7"], [Example("q", "42")] * 4)
    assert [r.score for r in res] == [1.0, 0.5, 0.0, 0.0]
    assert res[1].reason == "half" and res[2].error == "ValueError: bad output" and res[0].error is None
    m.check([Example("q", "42", 1)])  # its own target scores: accepted
    broken = tmp_path / "broken.py"
    broken.write_text("import nonexistent_module_xyz\n")
    with pytest.raises(ConfigError, match="raised on import: ModuleNotFoundError"):
        build_metric(f"{broken}:score", {}, "exact_match")
    raises = tmp_path / "raises.py"
    raises.write_text("def score(output, target, input):\n    raise RuntimeError('no')\n")
    with pytest.raises(ConfigError, match="failed on line 3 .*RuntimeError: no"):
        build_metric(f"{raises}:score", {}, "exact_match").check([Example("q", "t", 3)])
    with pytest.raises(ConfigError, match="has no function 'nope'"):
        build_metric(f"{code}:nope", {}, "exact_match")


def test_options_are_parsed_and_unknown_options_refused():
    assert parse_metric_options(["keys=a,b", "pattern=x=y"]) == {"keys": "a,b", "pattern": "x=y"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_metric_options(["novalue"])
    with pytest.raises(ConfigError, match="has no option 'keyz'"):
        get_metric("json_keys", keyz="a")
    with pytest.raises(ConfigError, match="unknown metric 'bleu'"):
        build_metric("bleu", {}, "exact_match")


def test_a_metric_raising_on_one_example_scores_it_zero_with_the_error():
    m = get_metric("json_keys")
    # the target of the second example is not JSON: _one raises there; the others are scored
    res = m.score_many(['{"a": 1}', '{"a": 1}'], [Example("q", '{"a": 1}'), Example("q", "oops")])
    assert res[0].score == 1.0 and res[1].score == 0.0 and res[1].error
