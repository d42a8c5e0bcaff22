"""Meta-prompt templates (wording only; assembly logic is in :mod:`gpo_core.optimizer.metaprompt`).

The parts follow GPO's generation-based update (Tang et al. 2024, Sec. 3.3 and Fig. 2):
retrieved trajectory prompts with scores 0-100, task exemplars with the instruction
position marked ``<Prompt>``, the current prompt, the edit budget, and the request to
wrap the answer in tags; when the user rejected candidates by hand, those are marked
"rejected by the user" (our addition; the paper has no human in the loop). The wording is
ours and kept short: every word here is paid for N times a step. ``PAPER_*`` reproduces
the reference code's longer layout for the token comparison in ``benchmarks/``.
"""

PLACEHOLDER = "<Prompt>"
OPEN_TAG = "<INS>"
CLOSE_TAG = "</INS>"

HEADER = "Improve an instruction for a task. Earlier instructions and their scores (0-100, higher is better):"
TRAJECTORY_ITEM = "Instruction: {prompt}\nScore: {score}"
EXEMPLARS_HEADER = "Task examples; " + PLACEHOLDER + " marks where the instruction goes:"
EXEMPLAR_ITEM = "{rendered}\nCorrect answer: {target}"
CURRENT = "Current instruction: {current}"
BUDGET = "Write one new instruction that scores higher. Change at most {budget} words of the current instruction."
NO_BUDGET = "Write one new instruction that scores higher."
ANSWER_FORMAT = "Reply with only the new instruction between " + OPEN_TAG + " and " + CLOSE_TAG + "."
#: Candidates the user rejected (OptimizerSettings.show_rejections): appended to the text of
#: a retrieved prompt that was rejected, and listed after the trajectory for the others.
REJECTED_MARK = " (rejected by the user)"
REJECTED_HEADER = "Instructions rejected by the user; do not propose them again:"
REJECTED_ITEM = "Instruction: {prompt}" + REJECTED_MARK

# The reference code's layout (OPRO-style wording plus GPO's step-size sentence), used only
# by benchmarks to compare token cost per step.
PAPER_HEADER = ("Your task is to generate the instruction <INS>. Below are some previous instructions "
                "with their scores. The score ranges from 0 to 100.")
PAPER_TRAJECTORY_ITEM = "text:\n{prompt}\nscore:\n{score}"
PAPER_EXEMPLARS_HEADER = "Below are some problems."
PAPER_EXEMPLAR_ITEM = "input:\n{rendered}\nGround truth answer:\n{target}"
PAPER_CURRENT = "The current instruction is:\n{current}"
PAPER_BUDGET = ("Generate an instruction that is different from all the instructions <INS> above, and has a "
                "higher score than all the instructions <INS> above. You are allowed to change up to {budget} "
                "words in the current instruction. The instruction should begin with <INS> and end with </INS>. "
                "The instruction should be concise, effective, and generally applicable to all problems above.")
