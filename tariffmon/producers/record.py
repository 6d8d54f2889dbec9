"""Copy topics into a recorded-stream file: one line per Kafka record.

Each record becomes ``{"stream","key","ts","value"}`` with ``ts`` the Kafka timestamp (the
event time) and ``value`` the decoded JSON object; a value that is not a JSON object is kept
losslessly as ``{"_raw_b64": "<base64>"}`` (replay publishes those bytes again).  The lines
are written sorted by ``(ts, stream, partition, offset)``, as
:func:`tariffmon.recorded.merge_events` requires: a record that arrived out of event-time
order on its partition (a late headline, an out-of-order tick) is recorded at its event time,
so a replay or backtest of the file sees it on time.  The records are buffered until the end:
bound a long recording with ``max_messages``.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from tariffmon.contract import loads
from tariffmon.errors import ContractError
from tariffmon.producers.replay import RAW_FIELD
from tariffmon.recorded import RecordedEvent, RecordedWriter

log = logging.getLogger(__name__)


def record_to_event(rec: Any, stream: str) -> RecordedEvent:
    """The recorded form of one Kafka record."""
    key = None if rec.key is None else rec.key.decode("utf-8", "replace")
    try:
        value: dict[str, Any] = loads(rec.value)
    except ContractError as exc:
        log.warning("%s[%d]@%d: value is not a JSON object (%s); recorded raw",
                    rec.topic, rec.partition, rec.offset, exc.rule)
        value = {RAW_FIELD: base64.b64encode(rec.value or b"").decode("ascii")}
    return RecordedEvent(stream=stream, key=key, ts=int(rec.timestamp), value=value)


def record_records(
    records: Iterable[Any],
    streams_by_topic: Mapping[str, str],
    out: str | Path,
    *,
    on_record: Callable[[], None] | None = None,
) -> int:
    """Write ``records`` (kafka-python ConsumerRecords) to ``out``; returns the line count."""
    order = {t: i for i, t in enumerate(sorted(streams_by_topic))}
    rows: list[tuple[int, int, int, int, bytes]] = []
    for rec in records:
        ev = record_to_event(rec, streams_by_topic[rec.topic])
        rows.append((ev.ts, order[rec.topic], rec.partition, rec.offset, ev.to_line()))
        if on_record is not None:
            on_record()
    rows.sort()
    with RecordedWriter(out) as w:
        for row in rows:
            w.write_line(row[4])
        return w.count
