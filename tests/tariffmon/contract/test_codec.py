"""The JSON form: bytes that are not one bounded JSON object are refused as the whole message."""

from __future__ import annotations

import pytest

from tariffmon.contract import MAX_MESSAGE_BYTES, Tick, dumps, loads
from tariffmon.errors import ContractError
from tests.tariffmon.contract.strategies import LIMITS


def test_dumps_is_key_order_independent() -> None:
    assert dumps({"b": 1, "a": 2}) == dumps({"a": 2, "b": 1}) == b'{"a":2,"b":1}'


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b"{not json", "must be UTF-8 JSON"),
        (b"", "must be UTF-8 JSON"),
        (b'{"v":1,"ts":1', "must be UTF-8 JSON"),
        (b"\xff\xfe{}", "must be UTF-8 JSON"),  # invalid UTF-8
        (b'{"title":"\xc3\x28"}', "must be UTF-8 JSON"),  # invalid continuation byte
        (b"[1,2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"NaN", "must be UTF-8 JSON"),
        (b'{"price":1e400}', "must be UTF-8 JSON"),  # beyond a double
    ],
)
def test_bad_bytes_are_rejected_as_the_whole_message(data: bytes, rule: str) -> None:
    with pytest.raises(ContractError) as info:
        Tick.decode(data, LIMITS)
    assert info.value.field == "$"
    assert rule in str(info.value)
    assert info.value.reason == "bad_json"


@pytest.mark.parametrize("data", [
    b'{"v":1,"title":"' + b"x" * MAX_MESSAGE_BYTES + b'"}',
    bytearray(b'{"v":1,"title":"' + b"x" * MAX_MESSAGE_BYTES + b'"}'),
    memoryview(b'{"v":1,"title":"' + b"x" * MAX_MESSAGE_BYTES + b'"}'),
    '{"v":1,"title":"' + "x" * MAX_MESSAGE_BYTES + '"}',
])
def test_too_large_message_is_rejected_before_parsing(data: bytes) -> None:
    with pytest.raises(ContractError) as info:
        loads(data)
    assert info.value.field == "$" and info.value.reason == "too_large"
    assert f"at most {MAX_MESSAGE_BYTES} bytes" in str(info.value)
    assert f"<{len(data)} bytes>" in str(info.value)
