"""Prices per model, from an editable, dated table (never hard-coded as truth).

The default table ships as ``gpo_core/data/prices.toml`` (OpenAI list prices with an
``as_of`` date and a ``source``); a file of the same layout at ``$GPO_HOME/prices.toml``,
or given with ``--prices FILE``, replaces or adds entries. Layout (TOML, read with the
standard library's :mod:`tomllib`)::

    as_of = "2025-08-15"
    source = "where the numbers come from"
    [models."gpt-4o-mini"]
    input = 0.15      # US dollars per 1 million prompt tokens
    output = 0.60     # US dollars per 1 million completion tokens

A model is matched by its configured name, or as a dated snapshot of a listed name
("gpt-4o-mini-2024-07-18", "gpt-4-0613"). The embedded model (backend ``local``) and the
demo models cost 0 unless the table names them. Anything else without an entry has no price (None): estimates then
show no dollar figure and a dollar cap is refused, rather than guessing.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from gpo_core.errors import ConfigError
from gpo_core.settings import ModelSettings

__all__ = ["DEFAULT_PRICES", "FREE", "Price", "PriceTable", "load_prices", "user_prices_path"]

#: The default table inside the package.
DEFAULT_PRICES = "prices.toml"
_SNAPSHOT = re.compile(r"^-(\d{4}(-\d{2}-\d{2})?|latest)$")


@dataclass(frozen=True)
class Price:
    """US dollars per 1 million tokens: ``input`` (prompt) and ``output`` (completion);
    ``source``: which table (and date) it came from."""

    input: float
    output: float
    source: str = ""

    def dollars(self, prompt_tokens: int, completion_tokens: int) -> float:
        """The price of these tokens, in US dollars."""
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000


#: The price of the embedded and demo models: nothing per token.
FREE = Price(0.0, 0.0, "embedded model: no per-token price")


@dataclass
class PriceTable:
    """Model name -> :class:`Price`, with where the table came from (``sources``: the
    files read, in order, each with its as-of date)."""

    prices: dict[str, Price] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)

    @property
    def note(self) -> str:
        """One line for people: "prices: default table as of 2025-08-15 (gpo_core/data/prices.toml), a dated
        default: check your provider and override with --prices FILE or $GPO_HOME/prices.toml"."""
        return ("prices: " + "; ".join(self.sources) + " -- a dated default, not a quote: check your provider "
                "and override with --prices FILE or $GPO_HOME/prices.toml")

    def price_for(self, model: ModelSettings) -> Price | None:
        """The price of ``model``'s calls: the table's entry for its name (or a dated snapshot
        of a listed name); else FREE for the embedded and demo backends (an entry naming one,
        e.g. to price local compute, wins), else None."""
        name = model.model.strip()
        if name in self.prices:
            return self.prices[name]
        if model.backend in ("local", "demo"):
            return FREE
        base = max((k for k in self.prices if name.startswith(k) and _SNAPSHOT.match(name[len(k):])),
                   key=len, default=None)
        return self.prices[base] if base is not None else None

    def merged(self, other: PriceTable) -> PriceTable:
        """This table with ``other``'s entries replacing or adding to it."""
        return PriceTable({**self.prices, **other.prices}, self.sources + other.sources)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0


def parse_prices(data: Mapping[str, Any], where: str, label: str) -> PriceTable:
    """A PriceTable from parsed TOML ``data``; ``where`` names the file in errors, ``label``
    describes it in the note. ConfigError naming the file and the field for a bad entry."""
    models = data.get("models", {})
    if not isinstance(models, Mapping):
        raise ConfigError("prices", f"{where}: 'models' must be a table of [models.\"name\"] entries")
    as_of = data.get("as_of")
    if as_of is None:
        raise ConfigError("prices", f"{where}: missing as_of = \"YYYY-MM-DD\" (the date the prices were read)")
    source = f"{label} as of {as_of}"
    out: dict[str, Price] = {}
    for name, entry in models.items():
        if not isinstance(entry, Mapping):
            raise ConfigError("prices", f"{where}: models.{name!r} must be a table with input and output")
        for key in entry:
            if key not in ("input", "output"):
                raise ConfigError("prices", f"{where}: models.{name!r}.{key}: unknown field; expected input, output "
                                            "(US dollars per 1M tokens)")
        for key in ("input", "output"):
            if not _number(entry.get(key)):
                raise ConfigError("prices", f"{where}: models.{name!r}.{key}: must be a number >= 0 (US dollars "
                                            f"per 1M tokens), got {entry.get(key)!r}")
        out[str(name)] = Price(float(entry["input"]), float(entry["output"]), source)
    return PriceTable(out, [source])


def read_prices(path: Path, label: str | None = None) -> PriceTable:
    """The table in the TOML file ``path``. ConfigError naming the file (and line) when it
    cannot be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("prices", f"{path}: cannot read the price table ({exc.strerror or exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("prices", f"{path}: not valid TOML ({exc})") from None
    return parse_prices(data, str(path), label or str(path))


def user_prices_path() -> Path:
    """``$GPO_HOME/prices.toml`` (the per-user data folder without GPO_HOME)."""
    from gpo_core.runs.repository import gpo_home

    return gpo_home() / "prices.toml"


def load_prices(path: str | Path | None = None) -> PriceTable:
    """The price table in force: the packaged default, then ``$GPO_HOME/prices.toml`` if it
    exists, then ``path`` (``--prices FILE``) if given; later entries win. ConfigError
    naming the file for a bad one (a missing ``path`` included)."""
    ref = resources.files("gpo_core") / "data" / DEFAULT_PRICES
    data = tomllib.loads(ref.read_text(encoding="utf-8"))
    table = parse_prices(data, "gpo_core/data/prices.toml", "default table (gpo_core/data/prices.toml)")
    user = user_prices_path()
    if user.is_file():
        table = table.merged(read_prices(user, f"{user}"))
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ConfigError("prices", f"{p}: no such price table file")
        table = table.merged(read_prices(p))
    return table
