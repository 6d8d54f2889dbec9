"""The JSON form of the contract: one UTF-8 JSON object per Kafka value.

Parsing refuses anything but a JSON object of at most :data:`MAX_MESSAGE_BYTES`, raising
:class:`~tariffmon.errors.ContractError` with reason ``bad_json`` or ``too_large``;
serialising sorts the keys so that a replay writes byte-identical records.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tariffmon.contract.fields import MAX_MESSAGE_BYTES
from tariffmon.errors import ContractError


def loads(data: bytes | str) -> dict[str, Any]:
    """Parse one JSON object from bytes (UTF-8) or text; anything else is a ContractError."""
    # text is measured in characters, which never outnumber its UTF-8 bytes
    if isinstance(data, bytes | bytearray | memoryview | str) and len(data) > MAX_MESSAGE_BYTES:
        raise ContractError(
            "$", f"<{len(data)} bytes>", f"must be at most {MAX_MESSAGE_BYTES} bytes",
            reason="too_large",
        )
    if isinstance(data, memoryview):
        data = bytes(data)
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        # orjson's own limits (nesting deeper than 1024, numbers beyond a double) land here too
        shown = data[:80] if isinstance(data, bytes | bytearray | str) else data
        raise ContractError("$", shown, f"must be UTF-8 JSON ({exc})", reason="bad_json") from exc
    if not isinstance(obj, dict):
        raise ContractError("$", obj, "must be a JSON object", reason="bad_json")
    return obj


def dumps(obj: Mapping[str, Any]) -> bytes:
    """Serialise to compact UTF-8 JSON, keys in a stable order (byte-identical on replay)."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
