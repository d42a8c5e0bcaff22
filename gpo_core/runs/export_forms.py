"""Exports of a run's final prompt in the form it is used (issue 13, item 3).

- :func:`messages_json`: the chat messages exactly as the task model saw them, with an
  ``{input}`` placeholder where the example's input goes (rendered by the evaluation's own
  :func:`gpo_core.scoring.task_prompt.task_messages`, so replacing the placeholder with a
  stored record's input gives its ``rendered_prompt`` byte for byte).
- :func:`openai_snippet`: a Python script using the ``openai`` SDK that sends those
  messages for one input (key and base URL from ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``).
- :func:`promptfoo_config`: a promptfoo config (YAML) with the prompt, the provider and the
  test split as test cases, each with an assertion mirroring the answer type's rule.

Every export states the accuracy it was measured at, its 95% Wilson interval and the split
(:func:`measured_at`). No API key is ever part of a run; base URLs are redacted
(:func:`gpo_core.models.redact.redact_url`).
"""

from __future__ import annotations

import json

from gpo_core.models.redact import redact_url
from gpo_core.optimizer.session import GPOSession
from gpo_core.runs.final import candidates_by_id, entry_score
from gpo_core.scoring.task_prompt import task_messages

PLACEHOLDER = "{input}"


def _placeholder(instruction: str) -> str:
    """``{input}``, or ``{input_2}``... when the instruction itself holds the placeholder."""
    ph, i = PLACEHOLDER, 1
    while ph in instruction:
        i += 1
        ph = f"{{input_{i}}}"
    return ph


def measured_at(session: GPOSession) -> dict:
    """Where the final prompt's accuracy was measured: ``{"dev": {...}, "test": {...}}``, each
    ``{"accuracy": share, "ci95": [low, high], "correct": int, "answered": int, "text": str}``
    (None when not scored), plus ``"summary"``: one line for people. Source: Wilson interval
    (:mod:`gpo_core.stats`), final prompt rule (:mod:`gpo_core.runs.final`)."""
    s = session.state
    best = session.final_comparison().entry
    cands = candidates_by_id(s)
    out: dict = {}
    parts = []
    for split in ("dev", "test"):
        p = entry_score(s, best, split, cands)
        if p is None or p.value is None:
            out[split] = None
            continue
        lo, hi = p.interval()
        out[split] = {"accuracy": round(p.value, 6), "ci95": [round(lo, 6), round(hi, 6)],
                      "correct": p.correct,
                      "answered": p.answered, "text": p.text()}
        parts.append(f"{split} accuracy {p.text()} (95% Wilson interval; {len(s.splits.get(split) or [])} examples)")
    out["summary"] = ("Measured in GPO Studio run " + s.run_id + ": " + ("; ".join(parts) or "not scored")
                      + f"; task model {s.settings.task_model.describe()}")
    return out


def _model_info(session: GPOSession) -> dict:
    tm = session.state.settings.task_model
    return {"backend": tm.backend, "model": tm.model, "base_url": redact_url(tm.base_url),
            "temperature": tm.temperature, "max_tokens": tm.max_tokens}


def message_template(session: GPOSession) -> tuple[list[dict], str]:
    """The final prompt's chat messages with a placeholder for the input:
    ``([{"role": "user", "content": ...}], placeholder)``. Same code as the evaluation."""
    s = session.state
    instruction = session.final_comparison().prompt
    ph = _placeholder(instruction)
    msgs = task_messages(instruction, ph, s.task.instruction_position)
    return [{"role": r, "content": c} for r, c in msgs], ph


def messages_json(session: GPOSession) -> str:
    """The final prompt as chat messages (JSON text). Fields: ``messages`` (role/content, the
    input replaced by ``placeholder``), ``placeholder``, ``instruction``,
    ``instruction_position``, ``answer_type``, ``metric``, ``protocol``, ``task_model``
    (no key; base URL redacted) and ``measured_at`` (:func:`measured_at`). To use: replace
    the placeholder in each content with the input (``str.replace``)."""
    s = session.state
    msgs, ph = message_template(session)
    opt = s.settings.optimizer
    data = {"format": "gpo-studio.messages/1", "run_id": s.run_id, "task": s.task.name,
            "messages": msgs, "placeholder": ph, "instruction": session.final_comparison().prompt,
            "instruction_position": s.task.instruction_position, "answer_type": s.task.answer_type,
            "metric": opt.metric or s.task.answer_type, "protocol": opt.protocol,
            "task_model": _model_info(session), "measured_at": measured_at(session)}
    if opt.protocol == "reference":
        data["protocol_note"] = ("the run scored with the two-turn reference protocol: the task model got the "
                                 "question and instruction without Q:/A: labels, then an answer re-prompt; these "
                                 "messages are the single-turn form, so accuracy may differ")
    return json.dumps(data, ensure_ascii=False, indent=1) + "\n"


_SNIPPET = '''"""Send GPO Studio's final prompt to an OpenAI-compatible chat model, for one input.

{measured}
Answer type {answer_type}, instruction position {position}, metric {metric}.
Needs: pip install openai. The key and endpoint come from the environment:
OPENAI_API_KEY (and OPENAI_BASE_URL for another server{base_hint}); none is stored here.
Usage: python this_file.py "your input"   (or pipe the input on stdin)
"""

import json
import sys

from openai import OpenAI

MODEL = {model!r}
TEMPERATURE = {temperature!r}
MAX_TOKENS = {max_tokens!r}
PLACEHOLDER = {placeholder!r}
MESSAGES = json.loads({messages!r})


def render(input_text: str) -> list[dict]:
    """The messages with the input in place of the placeholder."""
    return [{{"role": m["role"], "content": m["content"].replace(PLACEHOLDER, input_text)}} for m in MESSAGES]


def answer(input_text: str) -> str:
    """The task model's reply text for one input."""
    client = OpenAI()  # reads OPENAI_API_KEY and OPENAI_BASE_URL
    reply = client.chat.completions.create(model=MODEL, messages=render(input_text),
                                           temperature=TEMPERATURE, max_tokens=MAX_TOKENS)
    return reply.choices[0].message.content or ""


if __name__ == "__main__":
    text = sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read()
    sys.stdout.write(answer(text))
'''


def openai_snippet(session: GPOSession) -> str:
    """A runnable Python script (text) that sends the final prompt's messages for one input
    through the ``openai`` SDK and prints the reply. Holds no key or base URL: both come from
    ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``."""
    s = session.state
    msgs, ph = message_template(session)
    info = _model_info(session)
    opt = s.settings.optimizer
    base = f"; the run used {info['base_url']}" if info["base_url"] else ""
    note = "\nNote: " + json.loads(messages_json(session))["protocol_note"] if opt.protocol == "reference" else ""
    return _SNIPPET.format(measured=measured_at(session)["summary"].replace('"""', "'''") + "." + note,
                           answer_type=s.task.answer_type, position=s.task.instruction_position,
                           metric=opt.metric or s.task.answer_type, base_hint=base, model=info["model"],
                           temperature=info["temperature"], max_tokens=info["max_tokens"], placeholder=ph,
                           messages=json.dumps(msgs, ensure_ascii=False))


#: promptfoo ``javascript`` assertions mirroring the answer types' extraction (the last
#: matching answer in the reply, compared with the target); ``context.vars.target``.
_JS_ASSERT = {
    "yes_no": ("const m = output.toLowerCase().match(/\\b(yes|no)\\b/g); "
               "return !!m && m[m.length - 1] === String(context.vars.target).toLowerCase();"),
    "multiple_choice": ("const m = output.toUpperCase().match(/\\(([A-R])\\)|\\b([A-R])\\b/g); "
                        "if (!m) return false; const last = m[m.length - 1].replace(/[()]/g, ''); "
                        "return last === String(context.vars.target).replace(/[()]/g, '').toUpperCase();"),
    "true_false": ("const m = output.toLowerCase().match(/\\b(true|false)\\b/g); "
                   "return !!m && m[m.length - 1] === String(context.vars.target).toLowerCase();"),
    "valid_invalid": ("const m = output.toLowerCase().match(/\\b(valid|invalid)\\b/g); "
                      "return !!m && m[m.length - 1] === String(context.vars.target).toLowerCase();"),
    "exact_match": ("const n = s => String(s).toLowerCase().replace(/\\s+/g, ' ').trim().replace(/[.!?]+$/, ''); "
                    "return n(output) === n(context.vars.target);"),
    "number": ("const m = output.replace(/,/g, '').match(/-?\\d+(?:\\.\\d+)?/g); "
               "return !!m && Math.abs(parseFloat(m[m.length - 1]) - parseFloat(context.vars.target)) < 1e-6;"),
}


def _nunjucks_safe(text: str, ph: str) -> str:
    """Text for a promptfoo (Nunjucks) prompt: the placeholder becomes ``{{input}}`` and
    everything else is wrapped in raw blocks when it holds template syntax."""
    parts = text.split(ph)
    safe = [("{% raw %}" + p + "{% endraw %}") if ("{" in p or "%" in p) else p for p in parts]
    return "{{input}}".join(safe)


def promptfoo_config(session: GPOSession) -> str:
    """A promptfoo config (YAML text): ``description``, ``prompts`` (the user message as a text
    prompt, which promptfoo sends as one user message; chat JSON when there is a system
    message; the input as ``{{input}}``), ``providers`` (``openai:chat:<model>`` with the
    run's temperature and max tokens; key from ``OPENAI_API_KEY``) and ``tests``: one per
    test example (``vars: {input, target}``) with an assertion mirroring the answer type
    (``javascript`` for the labelled and numeric answer types and exact_match, ``icontains``
    for contains; a custom metric is not mirrored, and the metadata says so). A
    ``metadata`` block states the accuracy measured and the split.
    Source: promptfoo configuration reference (promptfoo.dev/docs/configuration/reference)."""
    import yaml

    s = session.state
    msgs, ph = message_template(session)
    info = _model_info(session)
    answer_type = s.task.answer_type
    if len(msgs) == 1 and msgs[0]["role"] == "user":  # a plain text prompt is sent as one user message
        prompt = _nunjucks_safe(msgs[0]["content"], ph)
    else:  # chat JSON; the input through Nunjucks' dump filter (JSON-escaped, quotes included)
        prompt = json.dumps([{"role": m["role"], "content": m["content"]} for m in msgs], ensure_ascii=False)
        prompt = _nunjucks_safe(prompt, json.dumps(ph)).replace("{{input}}", "{{ input | dump }}")
    if answer_type in _JS_ASSERT:  # several lines: promptfoo runs them as a function body (one line: an expression)
        assertion = {"type": "javascript", "value": _JS_ASSERT[answer_type].replace("; ", ";\n") + "\n"}
    else:  # "contains": the target appears in the output, case-insensitive
        assertion = {"type": "icontains", "value": "{{target}}"}
    tests = [{"description": f"test example {i + 1}", "vars": {"input": ex["input"], "target": ex["target"]},
              "assert": [dict(assertion)]} for i, ex in enumerate(s.splits.get("test") or [])]
    provider: dict = {"id": f"openai:chat:{info['model']}",
                      "config": {"temperature": info["temperature"], "max_tokens": info["max_tokens"]}}
    cfg = {"description": f"GPO Studio final prompt, run {s.run_id} ({s.task.name}). "
                          + measured_at(session)["summary"],
           "prompts": [{"id": "gpo-final", "label": "GPO final prompt", "raw": prompt}],
           "providers": [provider],
           "tests": tests,
           "metadata": {"gpo_run": s.run_id, "answer_type": answer_type,
                        "metric": s.settings.optimizer.metric or answer_type,
                        "instruction_position": s.task.instruction_position,
                        "measured_at": measured_at(session)["summary"],
                        "assertion_note": ("mirrors the answer type's rule in JavaScript; GPO's own extraction "
                                           "may differ on unusual replies"
                                           + ("" if (s.settings.optimizer.metric or answer_type) == answer_type else
                                              f"; the run was scored with metric {s.settings.optimizer.metric!r}, "
                                              "which this assertion does not reproduce"))}}
    head = (f"# {measured_at(session)['summary']}\n# tests: the run's test split ({len(tests)} examples). "
            "Set OPENAI_API_KEY (and OPENAI_BASE_URL for another server) before `promptfoo eval`.\n")
    return head + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True, width=1000)
