"""The message contract: every message type on the wire, its units, validation and JSON form.

This package is the single definition used by the producers, the Faust workers, the recorder,
the replayer and the backtest (``README.md``, "One contract"; topics and keys in
``docs/ARCHITECTURE.md``).  Wire format: one UTF-8 JSON object per Kafka value; ``ts`` and
every other time is event time in integer milliseconds since the Unix epoch, UTC; ``v`` is the
schema version; prices are in the quote currency of the symbol (JPY per USD for ``USDJPY``,
index points for ``N225`` and ``NIY``); returns are natural-log returns (dimensionless);
horizons and windows are in seconds; numbers are always finite.

Decoding never trusts its input: any problem raises :class:`~tariffmon.errors.ContractError`
naming the field, the value and the rule.  Upper time bounds depend on "now", which this
package never reads: callers pass ``Limits.max_ts_ms`` (producers and workers use the wall
clock plus a day; the offline backtest leaves the fixed ceiling).

- :mod:`~tariffmon.contract.fields`: units, bounds, :class:`Limits` and the field checks;
- :mod:`~tariffmon.contract.codec`: the JSON ``loads`` / ``dumps``;
- :mod:`~tariffmon.contract.messages`: the message dataclasses and :data:`MESSAGE_TYPES`.

Everything is re-exported here: import from ``tariffmon.contract``.
"""

from __future__ import annotations

from tariffmon.contract.codec import dumps, loads
from tariffmon.contract.fields import (
    DEFAULT_LIMITS,
    DEFAULT_SYMBOLS,
    DIRECTIONS,
    FUTURE_SLACK_MS,
    MAX_ATTRIBUTED,
    MAX_ID_CHARS,
    MAX_MESSAGE_BYTES,
    MAX_SOURCE_CHARS,
    MAX_SUMMARY_CHARS,
    MAX_TAGS,
    MAX_TITLE_CHARS,
    MAX_TS_MS,
    MAX_URL_CHARS,
    MIN_TS_MS,
    MOVE_DIRECTIONS,
    NO_PRICE_BANDS,
    SCHEMA_VERSION,
    TICK_KINDS,
    Direction,
    Limits,
    MoveDirection,
    PriceBands,
    TickKind,
    check_bool,
    check_choice,
    check_float,
    check_non_negative_int,
    check_number,
    check_positive_int,
    check_price,
    check_price_band,
    check_symbol,
    check_tags,
    check_text,
    check_ts,
    check_version,
    reject_unknown,
    require,
)
from tariffmon.contract.messages import (
    GAP_KINDS,
    MESSAGE_TYPES,
    Alert,
    AttributedHeadline,
    ClassifiedHeadline,
    DeadLetter,
    Headline,
    Message,
    Reaction,
    ReactionRequest,
    SharpMoveLike,
    Tick,
    reaction_key,
    wire_message,
)

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_SYMBOLS",
    "DIRECTIONS",
    "FUTURE_SLACK_MS",
    "GAP_KINDS",
    "MAX_ATTRIBUTED",
    "MAX_ID_CHARS",
    "MAX_MESSAGE_BYTES",
    "MAX_SOURCE_CHARS",
    "MAX_SUMMARY_CHARS",
    "MAX_TAGS",
    "MAX_TITLE_CHARS",
    "MAX_TS_MS",
    "MAX_URL_CHARS",
    "MESSAGE_TYPES",
    "MIN_TS_MS",
    "MOVE_DIRECTIONS",
    "NO_PRICE_BANDS",
    "SCHEMA_VERSION",
    "TICK_KINDS",
    "Alert",
    "AttributedHeadline",
    "ClassifiedHeadline",
    "DeadLetter",
    "Direction",
    "Headline",
    "Limits",
    "Message",
    "MoveDirection",
    "PriceBands",
    "Reaction",
    "ReactionRequest",
    "SharpMoveLike",
    "Tick",
    "TickKind",
    "check_bool",
    "check_choice",
    "check_float",
    "check_non_negative_int",
    "check_number",
    "check_positive_int",
    "check_price",
    "check_price_band",
    "check_symbol",
    "check_tags",
    "check_text",
    "check_ts",
    "check_version",
    "dumps",
    "loads",
    "reaction_key",
    "reject_unknown",
    "require",
    "wire_message",
]
