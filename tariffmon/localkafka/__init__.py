"""The local development Kafka broker: Apache Kafka 4.x in KRaft mode on the JVM, no Docker.

:class:`LocalBroker` fetches the broker's jars with Maven, formats KRaft storage once, runs
``kafka.Kafka`` detached as combined broker and controller on loopback, and stops it.
"""

from tariffmon.localkafka.broker import BrokerStatus, LocalBroker
from tariffmon.localkafka.config import Listener

__all__ = ["BrokerStatus", "Listener", "LocalBroker"]
