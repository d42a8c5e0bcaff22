"""The LLM judge's prompt (templates apart from logic; the logic is :mod:`gpo_core.metrics.judge`).

The judge model gets a system message and one user message holding the rubric, the task
input, the reference answer(s), the answer to grade and the reply format of the scale. The
format asks for a one-sentence reason first and the grade last ("Reason: ... / Score: 7" or
"Verdict: PASS"), the order of G-Eval-style judges (Liu et al. 2023, arXiv 2303.16634) and
MT-Bench's single-answer grading (Zheng et al. 2023, arXiv 2306.05685), which put the
explanation before the number.
"""

from __future__ import annotations

__all__ = ["DEFAULT_RUBRIC", "JUDGE_SYSTEM", "JUDGE_USER", "SCALES", "SCALE_INSTRUCTIONS"]

#: The rubric when the user writes none: "matches the reference answer".
DEFAULT_RUBRIC = ("The answer matches the reference answer in meaning and in every fact it states; "
                  "wording and format may differ.")

JUDGE_SYSTEM = ("You are a careful, strict grader. You grade one answer to one task input against a rubric and "
                "a reference answer. Reply only in the format asked.")

JUDGE_USER = """Rubric: {rubric}

Task input:
{input}

{reference_heading}:
{reference}

Answer to grade:
{output}

{scale_instruction}"""

#: The scales a judge grades on.
SCALES = ("1-10", "pass-fail")

SCALE_INSTRUCTIONS = {
    "1-10": ("Grade the answer from 1 (does not meet the rubric at all) to 10 (fully meets it). Reply with exactly "
             "two lines:\nReason: <one sentence>\nScore: <a whole number from 1 to 10>"),
    "pass-fail": ("Decide whether the answer meets the rubric. Reply with exactly two lines:\n"
                  "Reason: <one sentence>\nVerdict: <PASS or FAIL>"),
}
