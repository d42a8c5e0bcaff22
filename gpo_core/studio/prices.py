"""The price table as the app edits it: the price of each model of the next run, and saving
the user's prices to ``$GPO_HOME/prices.toml`` (read by :func:`gpo_core.costs.prices.load_prices`
after the dated default table, so the CLI and every later estimate and spend meter use them).

No price is taken as truth: the default table is dated and says so; a price the user types
here is saved with today's date as its "as of" and the file says it was edited in the app.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from gpo_core.costs.prices import FREE, PriceTable, user_prices_path
from gpo_core.errors import ConfigError
from gpo_core.settings import ROLES, RunSettings

__all__ = ["model_price_rows", "save_user_prices"]


def model_price_rows(settings: RunSettings, table: PriceTable) -> list[dict]:
    """One row per model of ``settings`` that can have a price (not the embedded or demo
    models, which cost nothing per token), each model once: model, roles, input and output
    in US dollars per 1M tokens (None when the table has no price), and where the price
    comes from ("default table ... as of 2025-08-15", or "no price known")."""
    rows: dict[str, dict] = {}
    for role in ROLES:
        spec = settings.model(role)
        price = table.price_for(spec)
        if price is FREE or spec.backend in ("local", "demo"):
            continue
        row = rows.setdefault(spec.model, {"model": spec.model, "roles": [], "input": price.input if price else None,
                                           "output": price.output if price else None,
                                           "from": price.source if price else "no price known"})
        row["roles"].append(role)
    return [{**r, "roles": " and ".join(r["roles"])} for r in rows.values()]


def _toml_string(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a TOML basic string is a JSON string for these names


def save_user_prices(prices: Mapping[str, tuple[float, float]], path: Path | None = None,
                     today: date | None = None) -> Path:
    """Add or replace ``prices`` (model name -> (input, output) US dollars per 1M tokens, each
    >= 0) in the user's price table ``path`` (default ``$GPO_HOME/prices.toml``), keeping its
    other entries, with ``as_of`` set to ``today``. Written atomically; returns the path.
    ConfigError naming the model for a bad price, or the file when it cannot be read."""
    path = Path(path) if path is not None else user_prices_path()
    entries: dict[str, tuple[float, float]] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError("prices", f"{path}: cannot read the price table ({e})") from None
        for name, entry in (data.get("models") or {}).items():
            if isinstance(entry, Mapping):
                entries[str(name)] = (float(entry.get("input", 0.0)), float(entry.get("output", 0.0)))
    for name, (inp, out) in prices.items():
        for what, v in (("input", inp), ("output", out)):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not v >= 0:
                raise ConfigError(f"price of {name} ({what})", f"must be a number of US dollars >= 0, got {v!r}")
        entries[str(name)] = (float(inp), float(out))
    lines = ["# GPO Studio: your prices, US dollars per 1 million tokens (edited in the app).",
             "# They replace or add to the dated default table (gpo_core/data/prices.toml).", "",
             f'as_of = "{(today or date.today()).isoformat()}"', 'source = "edited in GPO Studio"', ""]
    for name, (inp, out) in sorted(entries.items()):
        lines += [f"[models.{_toml_string(name)}]", f"input = {inp!r}", f"output = {out!r}", ""]
    from gpo_core.runs.storage import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "\n".join(lines))
    return path
