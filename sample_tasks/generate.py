"""Generate the bundled sample tasks (deterministic: the same files on every run).

Usage: ``python sample_tasks/generate.py [OUT_DIR]`` (default: this folder).

Over 300 lines: one generator per sample task, side by side so each task's gold rule can be
read next to the others; none is imported by the engine.

Every example is generated here from a seeded ``random.Random`` and every gold answer is
computed by Python (no copied datasets):

- boolean_expressions (true_false, JSONL): gold by evaluating the expression's syntax tree
  (only True/False/not/and/or/parentheses are allowed; see ``eval_bool``).
- object_counting (number, CSV): gold by summing the counts of the asked category.
- navigation (yes_no, JSON): gold by simulating the walk on a grid.
- date_arithmetic (multiple_choice (A)-(E), CSV): gold by ``datetime.date`` arithmetic.
- word_sorting (exact_match, JSONL): gold by ``sorted()``.

Three tasks whose gold answers follow a convention that only a good instruction can tell
the task model (issue 14); each starts from a deliberately vague instruction
(:data:`INSTRUCTIONS`) and has a hand-written ideal one (:data:`IDEAL_INSTRUCTIONS`, used by
benchmarks/embedded_optimizer.py as the upper reference):

- review_sentiment (exact_match, CSV): product reviews labelled ``pos`` / ``neg`` (a label
  vocabulary); gold is the polarity the review was built from.
- date_normalization (exact_match, JSONL): a sentence mentioning one date in a spoken format;
  gold is that date as ``YYYY-MM-DD`` (an output format), by ``datetime.date.isoformat()``.
- ticket_triage (exact_match, JSON): support tickets coded ``BILL`` / ``ACCT`` / ``BUG`` /
  ``HOW`` by a rubric stated nowhere in the input; gold is the rubric code the ticket was
  built from.

Two tasks scored by metrics other than their answer type (issue 12; task.json names the
metric), also starting from a vague instruction:

- contact_extraction (JSONL, metric json_keys on name, city, order): a customer message built
  from a name, a city and an order number; gold is the JSON object of those three slots.
- weather_report (JSONL with the field ``output``, metric rouge_l): a forecast record; gold is a
  list of two reference sentences written by template from the record's fields.

Inputs stay short (under ~60 words) so the tiny embedded model answers fast.
"""

from __future__ import annotations

import ast
import csv
import datetime as dt
import io
import json
import random
import sys
from pathlib import Path

N_EXAMPLES = 180
SEEDS = {
    "boolean_expressions": 101,
    "object_counting": 102,
    "navigation": 103,
    "date_arithmetic": 104,
    "word_sorting": 105,
    "review_sentiment": 106,
    "date_normalization": 107,
    "ticket_triage": 108,
    "contact_extraction": 109,
    "weather_report": 110,
}
INSTRUCTION = "Let's think step by step."
#: Starting instructions other than :data:`INSTRUCTION`: deliberately vague, so the task model
#: does not know the answer convention until an optimized instruction tells it.
INSTRUCTIONS = {
    "review_sentiment": "Classify the review.",
    "date_normalization": "What is the date?",
    "ticket_triage": "Label the ticket.",
    "contact_extraction": "Extract the details.",
    "weather_report": "Describe this.",
}
#: Hand-written instructions that state each convention (the benchmark's upper reference).
IDEAL_INSTRUCTIONS = {
    "review_sentiment": "Is this review positive or negative? Answer with one word: pos or neg.",
    "date_normalization": "Write the date mentioned in the text in the format YYYY-MM-DD and nothing else.",
    "ticket_triage": ("Label the support ticket with one code: BILL for payments, charges, refunds or invoices; "
                      "ACCT for login, password or account access; BUG for crashes, errors or features that do "
                      "not work; HOW for questions about how to do something. Answer with the code only."),
    "contact_extraction": ('Answer with only a JSON object with the keys "name" (the full name of the person '
                           'writing), "city" and "order" (the order number, digits only), e.g. '
                           '{"name": "Ada Byron", "city": "Leeds", "order": "48213"}.'),
    "weather_report": ("Write one sentence of the form: In <city> it will be <sky> with <wind> wind and a "
                       "high of <temperature> degrees."),
}
#: Metric of the tasks not scored by their answer type (task.json "metric" / "metric_options").
METRICS = {
    "contact_extraction": ("json_keys", {"keys": "name,city,order"}),
    "weather_report": ("rouge_l", {}),
}


# --------------------------------------------------------------------------- boolean expressions


def eval_bool(expr: str) -> bool:
    """Value of a Boolean expression made only of True/False/not/and/or/parentheses.

    Evaluated on Python's syntax tree (Python precedence: not > and > or); anything else
    raises ValueError, so no code is ever executed.
    """

    def walk(node: ast.AST) -> bool:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return not walk(node.operand)
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            return all([walk(v) for v in node.values])
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            return any([walk(v) for v in node.values])
        raise ValueError(f"not allowed in a Boolean expression: {ast.dump(node)}")

    return walk(ast.parse(expr, mode="eval"))


def _bool_expr(rng: random.Random, depth: int) -> str:
    if depth == 0 or rng.random() < 0.3:
        leaf = rng.choice(["True", "False"])
        return "not " * rng.choice([0, 0, 1, 2]) + leaf
    left = _bool_expr(rng, depth - 1)
    right = _bool_expr(rng, depth - 1)
    expr = f"{left} {rng.choice(['and', 'or'])} {right}"
    if rng.random() < 0.5:
        expr = f"( {expr} )"
        if rng.random() < 0.3:
            expr = "not " + expr
    return expr


def boolean_expressions(rng: random.Random) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    while len(rows) < N_EXAMPLES:
        want = len(rows) % 2 == 0  # balanced True / False
        expr = _bool_expr(rng, rng.choice([2, 2, 3]))
        if len(expr.split()) < 5 or len(expr.split()) > 18 or eval_bool(expr) != want:
            continue
        question = f"{expr} is"
        if question in seen:
            continue
        seen.add(question)
        rows.append({"input": question, "target": str(eval_bool(expr))})
    return rows


# --------------------------------------------------------------------------- object counting

_NUMBER_WORDS = {1: "a", 2: "two", 3: "three", 4: "four", 5: "five"}
_CATEGORIES: dict[str, list[tuple[str, str]]] = {
    "musical instruments": [
        ("piano", "pianos"), ("flute", "flutes"), ("violin", "violins"), ("trumpet", "trumpets"),
        ("drum", "drums"), ("clarinet", "clarinets"), ("trombone", "trombones"), ("accordion", "accordions"),
    ],
    "fruits": [
        ("apple", "apples"), ("banana", "bananas"), ("peach", "peaches"), ("plum", "plums"),
        ("grape", "grapes"), ("orange", "oranges"), ("strawberry", "strawberries"), ("nectarine", "nectarines"),
    ],
    "vegetables": [
        ("carrot", "carrots"), ("cabbage", "cabbages"), ("potato", "potatoes"), ("onion", "onions"),
        ("yam", "yams"), ("head of garlic", "heads of garlic"), ("stalk of celery", "stalks of celery"),
        ("cauliflower", "cauliflowers"),
    ],
    "animals": [
        ("cat", "cats"), ("dog", "dogs"), ("rabbit", "rabbits"), ("goat", "goats"), ("cow", "cows"),
        ("pig", "pigs"), ("snake", "snakes"), ("mouse", "mice"), ("donkey", "donkeys"), ("frog", "frogs"),
    ],
    "objects": [
        ("chair", "chairs"), ("table", "tables"), ("lamp", "lamps"), ("couch", "couches"), ("bed", "beds"),
        ("oven", "ovens"), ("microwave", "microwaves"), ("toaster", "toasters"), ("stove", "stoves"),
        ("car", "cars"),
    ],
}


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def object_counting(rng: random.Random) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    cats = sorted(_CATEGORIES)
    while len(rows) < N_EXAMPLES:
        asked = rng.choice(cats)
        others = [c for c in cats if c != asked]
        n_asked = rng.randint(1, 4)
        n_other = rng.randint(1, 3)
        items = [(asked, it) for it in rng.sample(_CATEGORIES[asked], n_asked)]
        for cat in rng.sample(others, n_other):
            items.append((cat, rng.choice(_CATEGORIES[cat])))
        rng.shuffle(items)
        parts: list[str] = []
        total = 0
        for cat, (singular, plural) in items:
            count = rng.choice([1, 1, 1, 2, 3, 4, 5])
            if cat == asked:
                total += count
            parts.append(f"{_article(singular)} {singular}" if count == 1 else f"{_NUMBER_WORDS[count]} {plural}")
        listing = ", ".join(parts[:-1]) + f", and {parts[-1]}"
        question = f"I have {listing}. How many {asked} do I have?"
        if question in seen:
            continue
        seen.add(question)
        rows.append({"input": question, "target": str(total)})
    return rows


# --------------------------------------------------------------------------- navigation

_NAV_QUESTION = "If you follow these instructions, do you return to the starting point?"
_FORWARD_DIRS = {"forward": (0, 1), "backward": (0, -1), "right": (1, 0), "left": (-1, 0)}


def simulate_walk(instructions: list[str]) -> tuple[int, int]:
    """Final (x, y) after the instructions; start (0, 0) facing north (+y)."""
    x, y, dx, dy = 0, 0, 0, 1
    for ins in instructions:
        words = ins.rstrip(".").split()
        if ins == "Always face forward.":
            continue
        if words[0] == "Turn":
            turn = words[1]
            if turn == "left":
                dx, dy = -dy, dx
            elif turn == "right":
                dx, dy = dy, -dx
            else:  # around
                dx, dy = -dx, -dy
        else:  # "Take N step(s)[ direction]."
            n = int(words[1])
            if len(words) == 4:
                fx, fy = _FORWARD_DIRS[words[3]]
                x, y = x + n * fx, y + n * fy
            else:
                x, y = x + n * dx, y + n * dy
    return x, y


def _steps(n: int, direction: str = "") -> str:
    word = "step" if n == 1 else "steps"
    return f"Take {n} {word}{' ' + direction if direction else ''}."


def _chunks(total: int) -> list[int]:
    out = []
    while total > 0:
        out.append(min(total, 10))
        total -= out[-1]
    return out


def _nav_forward(rng: random.Random, want_return: bool) -> list[str]:
    moves = [(rng.choice(list(_FORWARD_DIRS)), rng.randint(1, 10)) for _ in range(rng.randint(2, 4))]
    if want_return:
        x = sum(n * _FORWARD_DIRS[d][0] for d, n in moves)
        y = sum(n * _FORWARD_DIRS[d][1] for d, n in moves)
        moves += [("left" if x > 0 else "right", n) for n in _chunks(abs(x))]
        moves += [("backward" if y > 0 else "forward", n) for n in _chunks(abs(y))]
        rng.shuffle(moves)
    return ["Always face forward."] + [_steps(n, d) for d, n in moves]


def _nav_turns(rng: random.Random, want_return: bool) -> list[str]:
    out: list[str] = []
    for _ in range(rng.randint(2, 4)):
        if out and rng.random() < 0.4:
            out.append(rng.choice(["Turn left.", "Turn right.", "Turn around."]))
        out.append(_steps(rng.randint(1, 10)))
    if want_return:
        # Face the origin along x, walk; then along y, walk. Turns found by trying each.
        for axis in (0, 1):
            pos = simulate_walk(out)
            if pos[axis] == 0:
                continue
            for turn in ([], ["Turn left."], ["Turn right."], ["Turn around."]):
                probe = out + turn + [_steps(1)]
                if abs(simulate_walk(probe)[axis]) < abs(pos[axis]) and simulate_walk(probe)[1 - axis] == pos[1 - axis]:
                    out += turn + [_steps(n) for n in _chunks(abs(pos[axis]))]
                    break
    return out


def navigation(rng: random.Random) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    while len(rows) < N_EXAMPLES:
        want = len(rows) % 2 == 0
        walk = _nav_forward(rng, want) if rng.random() < 0.5 else _nav_turns(rng, want)
        returns = simulate_walk(walk) == (0, 0)
        if returns != want or len(walk) > 9:
            continue
        question = f"{_NAV_QUESTION} {' '.join(walk)}\nOptions:\n- Yes\n- No"
        if question in seen:
            continue
        seen.add(question)
        rows.append({"input": question, "target": "Yes" if returns else "No"})
    return rows


# --------------------------------------------------------------------------- date arithmetic

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"]


def _mmddyyyy(d: dt.date) -> str:
    return d.strftime("%m/%d/%Y")


def _shift_month(d: dt.date, months: int) -> dt.date:
    m = d.month - 1 + months
    year, month = d.year + m // 12, m % 12 + 1
    day = min(d.day, 28)
    return dt.date(year, month, day)


def date_arithmetic(rng: random.Random) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    start, span = dt.date(1990, 1, 1), (dt.date(2030, 12, 31) - dt.date(1990, 1, 1)).days
    while len(rows) < N_EXAMPLES:
        today = start + dt.timedelta(days=rng.randint(0, span))
        offset = rng.choice([1, -1, 7, -7, 2, 3, 5, 10, 14, 30, -2, -3, -5, -10, -14, -30])
        if offset == 1:
            ask = "tomorrow"
        elif offset == -1:
            ask = "yesterday"
        elif abs(offset) == 7:
            ask = "one week from today" if offset > 0 else "one week ago"
        else:
            ask = f"{offset} days from today" if offset > 0 else f"{-offset} days ago"
        said = _mmddyyyy(today) if rng.random() < 0.5 else f"{_MONTHS[today.month - 1]} {today.day}, {today.year}"
        question = f"Today is {said}. What is the date {ask} in MM/DD/YYYY?"
        answer = today + dt.timedelta(days=offset)
        distractors = {
            answer + dt.timedelta(days=1),
            answer - dt.timedelta(days=1),
            today - dt.timedelta(days=offset),
            _shift_month(answer, 1),
            _shift_month(answer, -1),
            _shift_month(answer, 12),
            _shift_month(answer, -12),
            today,
        }
        distractors.discard(answer)
        texts = sorted({_mmddyyyy(d) for d in distractors} - {_mmddyyyy(answer)})
        options = rng.sample(texts, 4) + [_mmddyyyy(answer)]
        rng.shuffle(options)
        letters = "ABCDE"
        lines = [f"({letters[i]}) {opt}" for i, opt in enumerate(options)]
        text = question + "\nOptions:\n" + "\n".join(lines)
        if text in seen:
            continue
        seen.add(text)
        rows.append({"input": text, "target": f"({letters[options.index(_mmddyyyy(answer))]})"})
    return rows


# --------------------------------------------------------------------------- word sorting

_WORDS = sorted(set("""
apple river candle marble forest pencil window garden silver thunder lemon rocket
basket violet harbor jacket meadow pillow bottle castle dragon feather ginger helmet
island jungle kettle ladder mirror needle orange parrot quartz rabbit saddle tomato
umbrella valley walnut yellow zebra anchor button cactus desert engine falcon glacier
hammer igloo jelly kitten lantern magnet noodle oyster puzzle quiver ribbon spider
tunnel velvet wagon yogurt acorn breeze cobalt dolphin ember fossil goblet hazel
ivory jasmine kernel lobster maple nectar olive pepper quilt raisin sponge tulip
urchin vessel whistle axle banjo cedar daisy easel fiddle gravel hollow
""".split()))


def word_sorting(rng: random.Random) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    while len(rows) < N_EXAMPLES:
        words = rng.sample(_WORDS, rng.randint(3, 7))
        question = "Sort the following words alphabetically: List: " + " ".join(words)
        if question in seen:
            continue
        seen.add(question)
        rows.append({"input": question, "target": " ".join(sorted(words))})
    return rows


# --------------------------------------------------------------------------- review sentiment (pos / neg)

_PRODUCTS = ["blender", "pair of headphones", "backpack", "desk lamp", "phone case", "kettle", "pair of running shoes",
             "umbrella", "water bottle", "keyboard", "tent", "coffee grinder", "yoga mat", "charger", "frying pan"]
_OPENERS = {
    "pos": ["I love this {p}.", "Great {p} for the price.", "This {p} exceeded my expectations.",
            "Best {p} I have owned.", "Really happy with this {p}.", "This {p} is a keeper."],
    "neg": ["This {p} broke after a week.", "Very disappointed with this {p}.", "Do not buy this {p}.",
            "The {p} stopped working within days.", "This {p} was a waste of money.", "I regret buying this {p}."],
}
_DETAILS = {
    "pos": ["It feels sturdy.", "Shipping was fast.", "It works exactly as described.", "My kids use it every day.",
            "Setup took two minutes.", "It looks even better in person.", "The quality is excellent."],
    "neg": ["It feels cheap.", "It arrived scratched.", "Customer service never replied.", "A part came loose.",
            "It overheats.", "The instructions were useless.", "It is much smaller than the photos."],
}
_CONCESSIONS = {  # a minor point of the other polarity, clearly outweighed
    "pos": ["The box was a bit dented, but that does not matter.", "It is a little loud, but I can live with that."],
    "neg": ["The colour is nice, but that is all.", "Delivery was quick, but it does not help."],
}
_CLOSINGS = {"pos": ["Would buy again.", "Highly recommend.", "Five stars from me."],
             "neg": ["I am returning it.", "Avoid.", "One star."]}


def review_sentiment(rng: random.Random) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    while len(rows) < N_EXAMPLES:
        label = "pos" if len(rows) % 2 == 0 else "neg"  # balanced
        product = rng.choice(_PRODUCTS)
        parts = [rng.choice(_OPENERS[label]).format(p=product)]
        parts += rng.sample(_DETAILS[label], rng.randint(1, 2))
        if rng.random() < 0.3:
            parts.append(rng.choice(_CONCESSIONS[label]))
        parts.append(rng.choice(_CLOSINGS[label]))
        text = " ".join(parts)
        if text in seen:
            continue
        seen.add(text)
        rows.append({"input": f"Review: {text}", "target": label})
    return rows


# --------------------------------------------------------------------------- date normalization (YYYY-MM-DD)

_EVENTS = ["The warranty on my blender ends", "Our team meeting is now", "The package should arrive",
           "My passport expires", "The concert takes place", "The invoice is due", "The lease starts",
           "The library book must be back", "The workshop was held", "Registration closes"]
_ORDINAL = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"}
_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _spoken_date(d: dt.date, style: int) -> str:
    month, short = _MONTHS[d.month - 1], _MONTHS[d.month - 1][:3]
    nth = f"{d.day}{_ORDINAL.get(d.day, 'th')}"
    return [f"{month} {d.day}, {d.year}", f"{d.day} {month} {d.year}", f"the {nth} of {month}, {d.year}",
            f"{short}. {d.day}, {d.year}", f"{month} {nth} {d.year}",
            f"{_WEEKDAYS[d.weekday()]}, {month} {d.day}, {d.year}"][style]


def date_normalization(rng: random.Random) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    start, span = dt.date(1995, 1, 1), (dt.date(2035, 12, 31) - dt.date(1995, 1, 1)).days
    while len(rows) < N_EXAMPLES:
        d = start + dt.timedelta(days=rng.randint(0, span))
        text = f"{rng.choice(_EVENTS)} on {_spoken_date(d, rng.randrange(6))}."
        if rng.random() < 0.3:
            text = text[:-1] + f" at {rng.randint(1, 11)} {rng.choice(['am', 'pm'])}."
        if text in seen:
            continue
        seen.add(text)
        rows.append({"input": text, "target": d.isoformat()})
    return rows


# --------------------------------------------------------------------------- ticket triage (rubric codes)

_TICKETS = {
    "BILL": ["I was charged twice for my subscription this month.", "Please refund my last payment.",
             "I cancelled last week but you still took {amt} from my card.", "My card was declined when I renewed.",
             "The invoice for order {n} shows the wrong amount.", "Why did my monthly price go up to {amt}?"],
    "ACCT": ["I forgot my password and the reset email never arrives.", "I cannot log in since yesterday.",
             "Someone changed the email address on my account.", "My account is locked after three attempts.",
             "The login code you text me never comes.", "I lost access to the account I made with my old email."],
    "BUG": ["The app crashes when I open the settings page.", "Export to PDF fails with error {code}.",
            "The sync button does nothing on my phone.", "Photos upload but show up blank.",
            "The calendar shows every event one hour late.", "Search returns nothing even for exact titles."],
    "HOW": ["How do I share a folder with my team?", "Is there a way to switch the app to Spanish?",
            "Can I export my notes to a spreadsheet?", "Where do I turn on dark mode?",
            "How can I add a second user to my plan?", "Can I print a single page of a notebook?"],
}
_GREETINGS = ["", "Hi, ", "Hello team, ", "Good morning. ", "Hey support, "]
_CONTEXT = ["I use the desktop app.", "This started after the last update.", "I have been a customer for years.",
            "It is quite urgent for me.", "My colleague has the same question.", ""]
_SIGNOFFS = ["", " Thanks, {name}.", " Regards, {name}.", " Cheers."]
_NAMES = ["Ana", "Ben", "Chloe", "Dev", "Elif", "Farid", "Grace", "Hugo", "Ines", "Jon"]


def ticket_triage(rng: random.Random) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    codes = list(_TICKETS)
    while len(rows) < N_EXAMPLES:
        code = codes[len(rows) % len(codes)]  # balanced
        body = rng.choice(_TICKETS[code]).format(amt=f"${rng.randint(5, 99)}.{rng.randint(0, 99):02d}",
                                                 n=rng.randint(10000, 99999), code=f"E{rng.randint(100, 999)}")
        greeting = rng.choice(_GREETINGS)
        if greeting.endswith(", ") and not body.startswith("I "):
            body = body[0].lower() + body[1:]
        text = (greeting + body + " " + rng.choice(_CONTEXT)).strip()
        text += rng.choice(_SIGNOFFS).format(name=rng.choice(_NAMES))
        if text in seen:
            continue
        seen.add(text)
        rows.append({"input": f"Ticket: {text}", "target": code})
    return rows


# --------------------------------------------------------------------------- contact extraction (JSON keys)

_FIRST = ["Ana", "Ben", "Chloe", "Dev", "Elif", "Farid", "Grace", "Hugo", "Ines", "Jon", "Kemal", "Lena", "Maya",
          "Nils", "Omar", "Priya", "Rosa", "Sam", "Tariq", "Una"]
_LAST = ["Lopez", "Smith", "Nguyen", "Okafor", "Schmidt", "Rossi", "Kowalski", "Tanaka", "Silva", "Haddad",
         "Moreau", "Larsen", "Novak", "Pereira", "Quinn"]
_CITIES = ["Lisbon", "Leeds", "Oslo", "Porto", "Lyon", "Gdansk", "Turin", "Ghent", "Cork", "Bergen", "Malaga",
           "Utrecht", "Dresden", "Tampere", "Brno"]
_CONTACT_TEMPLATES = [
    "Hi, this is {name} from {city}. Order {order} never arrived.",
    "Hello, {name} here, writing from {city} about order {order}: the box was damaged.",
    "My order {order} is late. I live in {city}. Thanks, {name}",
    "Good morning! Could you check order {order}? It should go to {city}. Regards, {name}",
    "{name} ({city}) asking about order no. {order}, which was charged twice.",
    "Order #{order} has the wrong size. Please send a new one to {city}. {name}",
]


def contact_extraction(rng: random.Random) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    while len(rows) < N_EXAMPLES:
        name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        city, order = rng.choice(_CITIES), str(rng.randint(10000, 99999))
        text = rng.choice(_CONTACT_TEMPLATES).format(name=name, city=city, order=order)
        if text in seen:
            continue
        seen.add(text)
        gold = {"name": name, "city": city, "order": order}  # the slots the message was built from
        rows.append({"input": f"Message: {text}", "target": json.dumps(gold, ensure_ascii=False)})
    return rows


# --------------------------------------------------------------------------- weather report (data-to-text)

_SKIES = ["sunny", "cloudy", "rainy", "foggy", "snowy", "stormy"]
_WINDS = ["light", "strong", "gusty", "calm"]


def weather_report(rng: random.Random) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    seen: set[str] = set()
    while len(rows) < N_EXAMPLES:
        city, sky, wind = rng.choice(_CITIES), rng.choice(_SKIES), rng.choice(_WINDS)
        temp = rng.randint(-10, 35)
        record = f"city={city}; sky={sky}; wind={wind}; high={temp} C"
        if record in seen:
            continue
        seen.add(record)
        # two references written from the same record (the house style and a shorter variant)
        refs = [f"In {city} it will be {sky} with {wind} wind and a high of {temp} degrees.",
                f"{city}: {sky}, {wind} wind, high of {temp} degrees."]
        rows.append({"input": f"Forecast record: {record}", "output": refs})
    return rows


# --------------------------------------------------------------------------- writing

TASKS = {
    "boolean_expressions": (
        boolean_expressions, "examples.jsonl", "true_false",
        "Evaluate a Boolean expression of True, False, not, and, or and parentheses.",
        "gold computed by evaluating the expression's syntax tree (Python precedence)",
    ),
    "object_counting": (
        object_counting, "examples.csv", "number",
        "Count the items of one category in a list of possessions.",
        "gold computed by summing the counts of the asked category",
    ),
    "navigation": (
        navigation, "examples.json", "yes_no",
        "Decide whether a walk of steps and turns returns to the starting point.",
        "gold computed by simulating the walk on a grid",
    ),
    "date_arithmetic": (
        date_arithmetic, "examples.csv", "multiple_choice",
        "Pick the date a number of days before or after a given date, options (A)-(E).",
        "gold computed with datetime.date arithmetic",
    ),
    "word_sorting": (
        word_sorting, "examples.jsonl", "exact_match",
        "Sort a short list of words alphabetically.",
        "gold computed with sorted()",
    ),
    "review_sentiment": (
        review_sentiment, "examples.csv", "exact_match",
        "Label a product review pos or neg (a label vocabulary the starting instruction does not name).",
        "gold is the polarity each review was built from, as pos / neg",
    ),
    "date_normalization": (
        date_normalization, "examples.jsonl", "exact_match",
        "Write the date a sentence mentions as YYYY-MM-DD (a format the starting instruction does not name).",
        "gold computed with datetime.date.isoformat()",
    ),
    "ticket_triage": (
        ticket_triage, "examples.json", "exact_match",
        "Code a support ticket BILL, ACCT, BUG or HOW (a rubric stated nowhere in the input).",
        "gold is the rubric code each ticket was built from",
    ),
    "contact_extraction": (
        contact_extraction, "examples.jsonl", "exact_match",
        "Extract name, city and order number from a customer message as JSON (keys the starting instruction "
        "does not name); scored per key.",
        "gold is the JSON object of the name, city and order number each message was built from",
    ),
    "weather_report": (
        weather_report, "examples.jsonl", "exact_match",
        "Write a one-sentence forecast from a weather record; scored by ROUGE-L against two references "
        "(field 'output').",
        "gold is two reference sentences written by template from each record's fields",
    ),
}


def _serialize(rows: list[dict], filename: str) -> str:
    if filename.endswith(".csv"):
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["input", "target"])
        for r in rows:
            writer.writerow([r["input"], r["target"]])
        return buf.getvalue()
    if filename.endswith(".jsonl"):
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    return json.dumps(rows, ensure_ascii=False, indent=1) + "\n"


def main(out_dir: str | Path | None = None) -> list[Path]:
    """Write every sample task folder under ``out_dir`` (default: this folder); return the folders."""
    root = Path(out_dir) if out_dir is not None else Path(__file__).resolve().parent
    written = []
    for name, (make, filename, answer_type, description, gold) in TASKS.items():
        rows = make(random.Random(SEEDS[name]))
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / filename).write_text(_serialize(rows, filename), encoding="utf-8", newline="\n")
        meta = {
            "name": name,
            "description": description,
            "answer_type": answer_type,
            "instruction_position": "Q_end",
            "initial_instruction": INSTRUCTIONS.get(name, INSTRUCTION),
            "source": f"generated by sample_tasks/generate.py (seed {SEEDS[name]}); {gold}",
        }
        if name in METRICS:
            meta["metric"], meta["metric_options"] = METRICS[name]
        (folder / "task.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8", newline="\n")
        written.append(folder)
    return written


if __name__ == "__main__":
    for path in main(sys.argv[1] if len(sys.argv) > 1 else None):
        print(path)
