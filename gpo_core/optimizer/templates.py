"""Meta-prompt wording, one :class:`Layout` per named layout (assembly is in
:mod:`gpo_core.optimizer.metaprompt`). The wording is ours in every layout; only the
structure follows its source.

- ``gpo`` (default): the structure of GPO's reference code (RUCAIBox/GPO,
  ``utilize_gradient/generate_without_gradient.py`` with the ``k_update`` trajectory list
  and the ``w_lr`` step-size sentence; Tang et al. 2024, Sec. 3.3): a task line naming the
  ``<Prompt>`` placeholder, the retrieved prompts with scores, the current prompt, a
  sentence on how to read the exemplars, the exemplars (input with ``<Prompt>`` at the
  instruction position, output), the request, the edit-budget sentence and the answer
  tags ``<START>``/``<END>``. The reference prints scores rounded in [0, 1] under a text
  that says "0 to 100"; we print 0-100, as the text says.
- ``opro``: the OPRO-style layout (Yang et al. 2023, "Large Language Models as
  Optimizers") that this project once mislabelled "paper"; kept for the token comparison.
- ``short``: GPO Studio's own short wording (fewest tokens: every word is paid N times a
  step), tags ``<INS>``/``</INS>``.

Candidates the user rejected by hand are marked "rejected by the user" in every layout
(our addition: the paper has no human in the loop).
"""

from __future__ import annotations

from dataclasses import dataclass

PLACEHOLDER = "<Prompt>"

#: Where the instruction sits, as the exemplar-reading sentence describes it.
POSITION_WORDS = {"before_Q": "before the question", "Q_begin": "at the beginning of the question",
                  "Q_end": "at the end of the question", "A_begin": "at the beginning of the answer"}


@dataclass(frozen=True)
class Layout:
    """The wording of one meta-prompt layout. ``{...}`` fields are filled by the assembler.

    header: first part (may name ``{placeholder}``). trajectory_header: line before the
    retrieved prompts ("" = none). trajectory_item: one retrieved prompt (``{prompt}``,
    ``{score}`` 0-100). current: the current prompt (``{current}``). exemplars_header:
    how to read the exemplars (``{placeholder}``, ``{where}``). exemplar_item: one exemplar
    (``{rendered}`` input with the placeholder, ``{target}``). request: what to write
    (``{where}``). budget: the edit-budget sentence (``{budget}`` words). answer_format:
    where to put the answer. open_tag / close_tag: the answer tags. fallback: the
    extraction rule when the tags are missing: "whole_reply" (reference) or "graceful"
    (our rules, see :mod:`gpo_core.optimizer.extraction`). exemplars_first: exemplars
    before the current prompt (OPRO, short) or after it (GPO).
    """

    header: str
    trajectory_header: str
    trajectory_item: str
    current: str
    exemplars_header: str
    exemplar_item: str
    request: str
    budget: str
    answer_format: str
    open_tag: str
    close_tag: str
    fallback: str
    exemplars_first: bool
    label: str

    def reply_grammar(self, max_words: int | None = None) -> str:
        """A GBNF grammar (llama.cpp's grammar format, ``llama_cpp.LlamaGrammar``) that
        admits exactly one reply shape: this layout's open tag, one single-paragraph
        instruction of :data:`GRAMMAR_MIN_WORDS` to ``max_words`` words (default
        :data:`GRAMMAR_MAX_WORDS`; the optimizer passes
        :func:`gpo_core.optimizer.proposer.grammar_max_words`) (single
        spaces; no tag bracket or line break; the first word starts with a letter; a colon
        only at the end of a lower-case word, as in "in the format: YYYY-MM-DD", so no
        field label such as "Review:", "Input:" or "Output:" can start an echo of the
        exemplars), and the close tag. Used for embedded optimizer models only (remote models get the
        meta-prompt unconstrained)."""
        return REPLY_GRAMMAR.format(open=_gbnf_literal(self.open_tag), close=_gbnf_literal(self.close_tag),
                                    more_min=GRAMMAR_MIN_WORDS - 1,
                                    more_max=max(GRAMMAR_MIN_WORDS, max_words or GRAMMAR_MAX_WORDS) - 1)


#: The system message embedded optimizer models get before the meta-prompt (ours; remote
#: models get the meta-prompt alone). Measured on Qwen2.5-Coder-1.5B (benchmarks/
#: embedded_optimizer.py): without it the model often copies an exemplar's input or the
#: meta-prompt's own sentences as its "prompt", which the echo filter then refuses.
EMBEDDED_OPTIMIZER_SYSTEM = ("You write instructions for a language model that solves a task. Reply with one short, "
                             "general instruction (at most 30 words) telling it how to solve every example and "
                             "exactly how to write its answer. Do not quote the examples, the answers or this "
                             "message, and do not repeat an earlier prompt.")

#: Bounds (words) of the instruction a reply grammar admits: at least GRAMMAR_MIN_WORDS, at most
#: GRAMMAR_MAX_WORDS or the current prompt's length plus GRAMMAR_GROWTH_WORDS when that is more
#: (a fixed cap of 40 kept a 40-word prompt from growing: the model glued words together at the
#: cap and copied the prompt, issue 14), never more than GRAMMAR_CEILING_WORDS.
GRAMMAR_MIN_WORDS = 4
GRAMMAR_MAX_WORDS = 40
GRAMMAR_GROWTH_WORDS = 10
GRAMMAR_CEILING_WORDS = 400
#: The reply grammar of :meth:`Layout.reply_grammar` (GBNF; ``{open}``/``{close}`` are the
#: layout's tags as GBNF string literals). Words are at most 40 characters.
REPLY_GRAMMAR = """root ::= {open} " "? instruction " "? {close}
instruction ::= first (" " word){{{more_min},{more_max}}}
first ::= [A-Za-z] [^ <>:\\n\\r\\t]{{0,39}}
word ::= [a-z] [^ <>:\\n\\r\\t]{{0,38}} ":"? | [^a-z <>:\\n\\r\\t] [^ <>:\\n\\r\\t]{{0,39}}
"""


def _gbnf_literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


GPO = Layout(
    label="GPO (reference structure, default)",
    header="Write a prompt that will take the place of {placeholder} in the task below.",
    trajectory_header="Earlier prompts and the scores they got (0 to 100; higher is better):",
    trajectory_item="Prompt: {prompt}\nScore: {score}",
    current="The prompt in use now:\n{current}",
    exemplars_header=("In each example, {placeholder} marks where your prompt goes, {where}; the model reads "
                      "the input with your prompt in place and must produce the given output exactly, "
                      "otherwise its answer counts as wrong."),
    exemplar_item="Input:\n{rendered}\nOutput:\n{target}",
    request=("Study the earlier prompts and their scores, then write a better prompt to take the place of "
             "{placeholder} {where} in these examples."),
    budget="Change no more than {budget} words of the prompt in use now.",
    answer_format="Put the new prompt between <START> and <END>.",
    open_tag="<START>", close_tag="<END>", fallback="whole_reply", exemplars_first=False,
)

OPRO = Layout(
    label="OPRO wording (for comparison)",
    header="Your job is to write a new instruction <INS>. Earlier instructions follow with their scores, "
           "from 0 to 100.",
    trajectory_header="",
    trajectory_item="text:\n{prompt}\nscore:\n{score}",
    current="The instruction in use now is:\n{current}",
    exemplars_header="Some problems:",
    exemplar_item="input:\n{rendered}\nGround truth answer:\n{target}",
    request=("Write an instruction unlike every instruction <INS> above, scoring higher than all of them, "
             "short, effective and applicable to every problem above."),
    budget="You may change up to {budget} words of the instruction in use now.",
    answer_format="Start the instruction with <INS> and end it with </INS>.",
    open_tag="<INS>", close_tag="</INS>", fallback="graceful", exemplars_first=True,
)

SHORT = Layout(
    label="Short (GPO Studio's, fewest tokens)",
    header="Improve an instruction for a task.",
    trajectory_header="Earlier instructions and their scores (0-100, higher is better):",
    trajectory_item="Instruction: {prompt}\nScore: {score}",
    current="Current instruction: {current}",
    exemplars_header="Task examples; {placeholder} marks where the instruction goes:",
    exemplar_item="{rendered}\nCorrect answer: {target}",
    request="Write one new instruction that scores higher.",
    budget="Change at most {budget} words of the current instruction.",
    answer_format="Reply with only the new instruction between <INS> and </INS>.",
    open_tag="<INS>", close_tag="</INS>", fallback="graceful", exemplars_first=True,
)

#: Meta-prompt layouts by name (OptimizerSettings.layout, ``--layout``).
LAYOUTS: dict[str, Layout] = {"gpo": GPO, "opro": OPRO, "short": SHORT}

#: Candidates the user rejected (OptimizerSettings.show_rejections): appended to the text of
#: a retrieved prompt that was rejected, and listed after the trajectory for the others.
REJECTED_MARK = " (rejected by the user)"
REJECTED_HEADER = "Prompts the user rejected; do not propose them again:"
REJECTED_ITEM = "Prompt: {prompt}" + REJECTED_MARK

#: Failure feedback (OptimizerSettings.failure_feedback > 0, :mod:`gpo_core.optimizer.failure_feedback`):
#: wrong dev examples of the current prompt, after the current prompt and the exemplars. Wording
#: after the reference's feedback gradient (src/optimization/gradient/feedback_gradient.py).
FAILURES_HEADER = ("The current prompt gets the following examples wrong. Analyze the differences between the "
                   "wrong answers and the ground truth answers, and consider why the prompt led to them.")
FAILURE_ITEM = "Input: {input}\nWrong answer: {answer}\nGround truth answer: {target}"
FAILURE_REASON = "\nWhy it is wrong: {reason}"
