"""`tariffmon kafka start|stop|status|setup`: the local development broker.

The broker is Apache Kafka 4.x in KRaft mode run by the local JVM from jars that Maven
fetches (no Docker); see :mod:`tariffmon.localkafka`.  Its address, ports and home folder
come from the ``[local_broker]`` settings.
"""

from __future__ import annotations

import argparse
from typing import Any

#: ``status`` exit code when the broker does not run (0 when it does)
EXIT_NOT_RUNNING = 3


def register(sub: Any) -> None:
    """Add the `kafka` subcommand and its actions."""
    p = sub.add_parser(
        "kafka",
        help="start, stop or inspect the local Kafka broker (KRaft, no Docker)",
        description=(
            "Run a single-node Apache Kafka 4.x broker (combined broker and KRaft controller) "
            "on 127.0.0.1 with the local JVM; Maven fetches its jars into .cache/kafka/libs "
            "on first use. Address, ports and data folder come from the [local_broker] "
            "settings (e.g. TARIFFMON_LOCAL_BROKER__PORT). Wipe the home folder to start "
            "from an empty broker."
        ),
    )
    actions = p.add_subparsers(dest="kafka_action", metavar="ACTION", required=True)

    start = actions.add_parser(
        "start",
        help="start the broker unless it runs; returns once it answers",
        description=(
            "Start the broker in the background unless it already runs, and return once it "
            "answers Kafka requests. Prints its bootstrap address. Safe to repeat."
        ),
    )
    start.add_argument(
        "--timeout", type=float, default=None, metavar="SECONDS",
        help="give up after this long (default: local_broker.start_timeout_s)",
    )
    start.set_defaults(func=run)

    stop = actions.add_parser(
        "stop",
        help="stop the broker and wait until it has exited",
        description=(
            "Stop the broker (SIGTERM, then SIGKILL after the timeout) and wait until it has "
            "exited. Does nothing when it is not running. Its data stays in the home folder."
        ),
    )
    stop.add_argument(
        "--timeout", type=float, default=30.0, metavar="SECONDS",
        help="seconds to wait for a clean shutdown before killing it (default: 30)",
    )
    stop.set_defaults(func=run)

    status = actions.add_parser(
        "status",
        help="print the bootstrap address and whether the broker runs (exit 3 if not)",
        description=(
            "Print the broker's bootstrap address (host:port) and whether it runs. "
            f"Exit code 0 when it runs, {EXIT_NOT_RUNNING} when it does not."
        ),
    )
    status.set_defaults(func=run)

    setup = actions.add_parser(
        "setup",
        help="fetch the broker's jars with Maven (start does it too when needed)",
        description=(
            "Fetch Apache Kafka and its dependencies from Maven Central into the jar cache "
            "(local_broker.libs_dir) unless they are there. Needs Maven (mvn)."
        ),
    )
    setup.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Carry out one `kafka` action."""
    from tariffmon.localkafka import LocalBroker
    from tariffmon.settings import load_settings

    broker = LocalBroker(load_settings().local_broker)
    action = args.kafka_action
    if action == "setup":
        fetched = broker.ensure_jars()
        print(f"kafka jars {'fetched into' if fetched else 'present in'} {broker.libs_dir}")
        return 0
    if action == "start":
        st = broker.start(timeout=args.timeout)
        print(f"{st.bootstrap} running (pid {st.pid}); log {st.log_file}")
        return 0
    if action == "stop":
        stopped = broker.stop(timeout=args.timeout)
        print(f"{broker.bootstrap} stopped" + ("" if stopped else " (was not running)"))
        return 0
    st = broker.status()
    if st.running:
        print(f"{st.bootstrap} running (pid {st.pid}); home {st.home}")
        return 0
    print(f"{st.bootstrap} stopped; home {st.home}")
    return EXIT_NOT_RUNNING
