"""ContractError shows any value, however hostile, in a short message and never fails doing so."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tariffmon.errors import MAX_SHOWN_CHARS, ContractError, show_value


def _deep_list(depth: int) -> list[Any]:
    # built iteratively: building it recursively would hit the limit this test is about
    root: list[Any] = []
    cur = root
    for _ in range(depth):
        nxt: list[Any] = []
        cur.append(nxt)
        cur = nxt
    return root


class _Raises:
    def __repr__(self) -> str:
        raise ValueError("no repr for you")


class _Recurses:
    def __repr__(self) -> str:
        return repr(self)


class _NotText:
    def __repr__(self) -> Any:
        return 42


def _message_bound(field: str, rule: str) -> int:
    return len(field) + len("=") + MAX_SHOWN_CHARS + len(": ") + len(rule)


def test_a_very_deep_value_is_shown_cut_short() -> None:
    deep = _deep_list(100_000)
    for value in (deep, {"v": deep}, (deep,)):
        err = ContractError("v", value, "must be schema version 1", reason="bad_version")
        assert len(str(err)) <= _message_bound("v", "must be schema version 1")
        assert "..." in str(err)
        assert err.value is value and err.reason == "bad_version"


def test_a_value_whose_repr_fails_is_shown_as_a_fixed_placeholder() -> None:
    for value, name in ((_Raises(), "_Raises"), (_Recurses(), "_Recurses"),
                        (_NotText(), "_NotText"), (10**5000, "int")):
        err = ContractError("price", value, "must be a number")
        assert str(err) == f"price=<unprintable {name}>: must be a number"
    # inside a container the rest is still shown; the same value always reads the same
    text = str(ContractError("tags", ["ok", _Raises()], "must be strings"))
    assert text == "tags=['ok', <unprintable _Raises>]: must be strings"
    assert text == str(ContractError("tags", ["ok", _Raises()], "must be strings"))


def test_ordinary_values_are_shown_as_their_repr() -> None:
    for value in (146.5, float("nan"), "EURUSD", None, True, [1, 2], {"a": 1}):
        assert show_value(value) == repr(value)


def test_long_values_are_abridged() -> None:
    assert len(show_value("y" * 5000)) <= MAX_SHOWN_CHARS
    assert len(show_value(list(range(10_000)))) <= MAX_SHOWN_CHARS
    assert len(show_value({str(i): "x" * 100 for i in range(100)})) <= MAX_SHOWN_CHARS
    assert len(show_value(b"\x00" * 10_000)) <= MAX_SHOWN_CHARS


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(), inner, max_size=8),
    max_leaves=200,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_value_renders_within_the_bound(value: Any) -> None:
    assert len(str(ContractError("f", value, "r"))) <= _message_bound("f", "r")
