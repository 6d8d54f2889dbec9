"""The local broker's ``server.properties``: one node, broker and KRaft controller, loopback.

Defaults suit a single-node development cluster that replays old data: replication 1 for
every internal topic (so transactions and share groups work on one node), no time-based
retention (a replay of April 2025 must not be deleted on arrival) and no bound on how old a
record's timestamp may be.  Extra listeners (issue 8: SASL_SSL) and properties are merged in
by the caller.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Kafka's Long.MAX_VALUE: "no limit" for timestamp checks
_LONG_MAX = "9223372036854775807"


@dataclass(frozen=True, slots=True)
class Listener:
    """One extra client listener, e.g. ``Listener("SASL", "127.0.0.1", 9094, "SASL_SSL")``."""

    name: str
    host: str
    port: int
    security_protocol: str = "PLAINTEXT"

    @property
    def address(self) -> str:
        """``NAME://host:port`` as Kafka's ``listeners`` property spells it."""
        return f"{self.name}://{self.host}:{self.port}"


def random_cluster_id() -> str:
    """A Kafka cluster id: a random UUID as 22 characters of URL-safe base64.

    Same form as ``kafka-storage random-uuid`` (which also avoids a leading ``-`` so the id
    never looks like a command-line flag), without paying for a JVM start.
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def server_properties(
    *,
    host: str,
    port: int,
    controller_port: int,
    data_dir: Path,
    extra_listeners: Sequence[Listener] = (),
    extra_properties: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The broker's configuration as an ordered mapping (extra properties win)."""
    listeners = [Listener("PLAINTEXT", host, port), *extra_listeners]
    controller = Listener("CONTROLLER", host, controller_port)
    protocol_map = ",".join(
        f"{lst.name}:{lst.security_protocol}" for lst in [*listeners, controller]
    )
    props: dict[str, str] = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{host}:{controller_port}",
        "listeners": ",".join(lst.address for lst in [*listeners, controller]),
        "advertised.listeners": ",".join(lst.address for lst in listeners),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": protocol_map,
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        # one node: every internal topic at replication 1, few partitions (fast first use)
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "10",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        # replays carry 2025 event times: never delete by age, never reject old timestamps
        "log.retention.ms": "-1",
        "log.message.timestamp.type": "CreateTime",
        "log.message.timestamp.before.max.ms": _LONG_MAX,
        "log.message.timestamp.after.max.ms": _LONG_MAX,
        # our code creates its topics with the partition counts co-partitioning needs; an
        # auto-created topic (1 partition, from a stray client's metadata request) would
        # silently break that, so auto-creation is off
        "auto.create.topics.enable": "false",
        "delete.topic.enable": "true",
    }
    props.update(extra_properties or {})
    return props


def render_properties(props: Mapping[str, str]) -> str:
    """``key=value`` lines in Java properties syntax (backslashes escaped)."""
    lines = ["# written by tariffmon.localkafka; edits are overwritten on the next start"]
    for key, value in props.items():
        lines.append(f"{key}={value.replace(chr(92), chr(92) * 2)}")
    return "\n".join(lines) + "\n"
