"""Kafka client plumbing shared by producers, admin tools, recorders and tests.

:func:`client_config` turns :class:`~tariffmon.settings.KafkaSettings` into the keyword
arguments every kafka-python client takes (bootstrap, client id, security); the password is
only ever handed to a client, never logged.  :func:`wait_for_broker` and
:func:`ensure_topics` retry exactly the errors kafka-python marks ``retriable``.

Producers come in two clients: kafka-python for the live sources, aiokafka's batch API for
``replay``.  :func:`producer_spec` is the one place their settings are decided (bootstrap,
security, acks, idempotence, compression, batching, timeouts);
:func:`kafka_python_producer_config` and :func:`aiokafka_producer_config` only spell that
spec in each client's keywords, so the two cannot drift apart.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from kafka import KafkaAdminClient
from kafka.errors import (
    KafkaError,
    NodeNotReadyError,
    SaslAuthenticationFailedError,
    TopicAlreadyExistsError,
    for_code,
)

from tariffmon.errors import BrokerError, ConfigError
from tariffmon.settings import KafkaSettings, Settings

log = logging.getLogger(__name__)

#: Topic configuration applied to every topic we create: keep records whatever their age,
#: because a replay publishes 2025 event times as Kafka timestamps.
TOPIC_CONFIGS: dict[str, str] = {"retention.ms": "-1"}


#: kafka-python loggers known to log a client's whole configuration (at DEBUG)
_CONFIG_LOGGERS = ("kafka.admin.client", "kafka.producer.kafka", "kafka.consumer.group")
_REDACTED = "[redacted]"


class _RedactSecrets(logging.Filter):
    """Blanks password-like entries of mapping arguments before a record is formatted.

    KafkaAdminClient logs its configuration, ``sasl_plain_password`` included, at DEBUG;
    with ``tariffmon -vv`` that would print the password.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, Mapping):
            record.args = _redacted(args)
        elif isinstance(args, tuple) and any(isinstance(a, Mapping) for a in args):
            record.args = tuple(_redacted(a) if isinstance(a, Mapping) else a for a in args)
        return True


def _redacted(mapping: Mapping[Any, Any]) -> dict[Any, Any]:
    return {k: _REDACTED if "password" in str(k).lower() and v is not None else v
            for k, v in mapping.items()}


def _install_secret_redaction() -> None:
    for name in _CONFIG_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactSecrets) for f in logger.filters):
            logger.addFilter(_RedactSecrets())


#: the client libraries whose logs are chatter to a user: Kafka clients and Faust/mode
CLIENT_LOGGERS = ("kafka", "aiokafka", "faust", "mode")
#: a client message already shown is not shown again for this long
REPEAT_INTERVAL_S = 300.0


class _OncePerInterval(logging.Filter):
    """Drops a client library's repeats: each (logger, level, message template) once per interval.

    A client that cannot reach its broker logs the same three or four lines at every retry
    (kafka-python: about 340 lines in a minute); one of each says as much.  The next
    showing of a message says how many were dropped since.  Our own loggers pass untouched.
    """

    def __init__(self, interval_s: float = REPEAT_INTERVAL_S) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._shown: dict[tuple[str, int, str], float] = {}
        self._dropped: dict[tuple[str, int, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.partition(".")[0] not in CLIENT_LOGGERS:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = time.monotonic()
        shown = self._shown.get(key)
        if shown is not None and now - shown < self.interval_s:
            self._dropped[key] = self._dropped.get(key, 0) + 1
            return False
        self._shown[key] = now
        dropped = self._dropped.pop(key, 0)
        if dropped:
            # appended to the template, so no %-formatting of its own
            record.msg = f"{record.msg} [{dropped} more like this not shown]"
        return True


#: the Kafka clients, quiet below WARNING unless ``-vv``; Faust and mode follow the worker's
#: own ``--loglevel`` (WARNING unless asked), so that option keeps its meaning
KAFKA_CLIENT_LOGGERS = ("kafka", "aiokafka")


def quiet_client_logs(verbose: int = 0) -> None:
    """Kafka clients log at WARNING and above (everything at ``-vv``); client repeats dropped.

    Call once the root handlers exist (after ``logging.basicConfig``); idempotent.  Each
    distinct message of a client library (:data:`CLIENT_LOGGERS`) is shown once per
    :data:`REPEAT_INTERVAL_S`.
    """
    level = logging.DEBUG if verbose >= 2 else logging.WARNING
    for name in KAFKA_CLIENT_LOGGERS:
        logging.getLogger(name).setLevel(level)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _OncePerInterval) for f in handler.filters):
            handler.addFilter(_OncePerInterval())


def client_config(kafka: KafkaSettings) -> dict[str, Any]:
    """The kafka-python keyword arguments for bootstrap, client id and security.

    Valid for ``KafkaProducer``, ``KafkaConsumer`` and ``KafkaAdminClient`` alike; add the
    client-specific ones (acks, group_id, ...) on top.  Also makes sure kafka-python's own
    logging of these arguments shows no password.
    """
    _install_secret_redaction()
    cfg: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_list(),
        "client_id": kafka.client_id,
        "security_protocol": kafka.security_protocol,
        "request_timeout_ms": kafka.request_timeout_ms,
    }
    if kafka.security_protocol.startswith("SASL"):
        cfg["sasl_mechanism"] = kafka.sasl_mechanism
        cfg["sasl_plain_username"] = kafka.sasl_username
        if kafka.sasl_password is not None:
            cfg["sasl_plain_password"] = kafka.sasl_password.get_secret_value()
    if kafka.security_protocol.endswith("SSL"):
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(kafka, name)
            if path is not None:
                cfg[name] = str(path)
    return cfg


#: the ``producer.compression`` setting -> the codec name both clients take (None: none)
_COMPRESSION: dict[str, str | None] = {
    "none": None, "gzip": "gzip", "snappy": "snappy", "lz4": "lz4", "zstd": "zstd",
}


@dataclass(frozen=True, slots=True)
class ProducerSpec:
    """Every producer setting, decided once from :class:`Settings`, in no client's dialect.

    Delivery is fixed, not configurable: acknowledgement by all in-sync replicas and
    idempotence (no duplicate from a retry, order kept per partition), retried until
    ``delivery_timeout_ms``.
    """

    bootstrap_servers: tuple[str, ...]
    client_id: str
    security_protocol: str
    sasl_mechanism: str | None
    sasl_username: str | None
    sasl_password: str | None = field(repr=False)
    ssl_cafile: str | None
    ssl_certfile: str | None
    ssl_keyfile: str | None
    compression: str | None
    linger_ms: int
    batch_size: int
    request_timeout_ms: int
    delivery_timeout_ms: int
    connect_timeout_s: float
    acks: Literal["all"] = "all"
    idempotence: bool = True


def producer_spec(settings: Settings) -> ProducerSpec:
    """The producer settings both clients are built from."""
    kafka, p = settings.kafka, settings.producer
    sasl = kafka.security_protocol.startswith("SASL")
    tls = kafka.security_protocol.endswith("SSL")

    def path(name: str) -> str | None:
        value = getattr(kafka, name)
        return str(value) if tls and value is not None else None

    return ProducerSpec(
        bootstrap_servers=tuple(kafka.bootstrap_list()),
        client_id=kafka.client_id,
        security_protocol=kafka.security_protocol,
        sasl_mechanism=kafka.sasl_mechanism if sasl else None,
        sasl_username=kafka.sasl_username if sasl else None,
        sasl_password=(kafka.sasl_password.get_secret_value()
                       if sasl and kafka.sasl_password is not None else None),
        ssl_cafile=path("ssl_cafile"),
        ssl_certfile=path("ssl_certfile"),
        ssl_keyfile=path("ssl_keyfile"),
        compression=_COMPRESSION[p.compression],
        linger_ms=p.linger_ms,
        batch_size=p.batch_size,
        request_timeout_ms=kafka.request_timeout_ms,
        delivery_timeout_ms=kafka.delivery_timeout_ms,
        connect_timeout_s=kafka.connect_timeout_s,
    )


def kafka_python_producer_config(settings: Settings) -> dict[str, Any]:
    """The ``kafka.KafkaProducer`` keyword arguments of :func:`producer_spec`."""
    spec = producer_spec(settings)
    cfg = client_config(settings.kafka)  # the same bootstrap, client id and security
    cfg.update(
        acks=spec.acks,
        enable_idempotence=spec.idempotence,
        # idempotence keeps order with up to 5 requests in flight per connection
        max_in_flight_requests_per_connection=5,
        retries=2_147_483_647,  # bounded in time by delivery_timeout_ms, not by count
        delivery_timeout_ms=spec.delivery_timeout_ms,
        request_timeout_ms=spec.request_timeout_ms,
        linger_ms=spec.linger_ms,
        batch_size=spec.batch_size,
        compression_type=spec.compression,
        max_block_ms=60_000,
    )
    return cfg


def aiokafka_producer_config(settings: Settings) -> dict[str, Any]:
    """The ``aiokafka.AIOKafkaProducer`` keyword arguments of :func:`producer_spec`.

    aiokafka has no separate delivery timeout: a batch expires after its
    ``request_timeout_ms`` (retried until then), so that is given ``delivery_timeout_ms``,
    the bound kafka-python applies to the same records.  TLS is an ``ssl.SSLContext`` built
    from the same CA, certificate and key files.
    """
    spec = producer_spec(settings)
    cfg: dict[str, Any] = {
        "bootstrap_servers": list(spec.bootstrap_servers),
        "client_id": spec.client_id,
        "security_protocol": spec.security_protocol,
        "acks": spec.acks,
        "enable_idempotence": spec.idempotence,
        "compression_type": spec.compression,
        "linger_ms": spec.linger_ms,
        "max_batch_size": spec.batch_size,
        "request_timeout_ms": max(spec.request_timeout_ms, spec.delivery_timeout_ms),
    }
    if spec.sasl_mechanism is not None:
        cfg["sasl_mechanism"] = spec.sasl_mechanism
        cfg["sasl_plain_username"] = spec.sasl_username
        cfg["sasl_plain_password"] = spec.sasl_password
    if spec.security_protocol.endswith("SSL"):
        cfg["ssl_context"] = ssl_context(spec)
    return cfg


def ssl_context(spec: ProducerSpec) -> ssl.SSLContext:
    """A TLS client context verifying the broker as kafka-python does with the same files.

    Without a CA file the system's trust store is used, as kafka-python does.
    """
    ctx = ssl.create_default_context(cafile=spec.ssl_cafile)
    if spec.ssl_certfile is not None:
        ctx.load_cert_chain(spec.ssl_certfile, spec.ssl_keyfile)
    return ctx


def describe(kafka: KafkaSettings) -> str:
    """Where and how we connect, for log and error messages (never the password)."""
    who = f" as {kafka.sasl_username!r}" if kafka.security_protocol.startswith("SASL") else ""
    return f"{kafka.bootstrap_servers} ({kafka.security_protocol}{who})"


#: longest single bootstrap attempt; between attempts we look for an authentication failure
_BOOTSTRAP_SLICE_S = 3.0


class _AuthFailureWatch(logging.Handler):
    """Remembers a SASL authentication failure that kafka-python logs while bootstrapping.

    kafka-python 3 retries a rejected SASL handshake until its bootstrap timeout and then
    raises only "Unable to bootstrap"; the authentication error itself reaches us only as
    the argument of its log records.  Without this, wrong credentials look like a broker
    that is down, and cost the whole timeout.
    """

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.failure: SaslAuthenticationFailedError | None = None

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        for arg in args:
            if isinstance(arg, SaslAuthenticationFailedError):
                self.failure = arg


@contextlib.contextmanager
def _auth_failure_watch() -> Iterator[_AuthFailureWatch]:
    watch = _AuthFailureWatch()
    kafka_log = logging.getLogger("kafka")
    kafka_log.addHandler(watch)
    try:
        yield watch
    finally:
        kafka_log.removeHandler(watch)


def _auth_error(kafka: KafkaSettings, failure: SaslAuthenticationFailedError) -> BrokerError:
    return BrokerError(
        f"Kafka at {describe(kafka)} rejected our credentials: SASL authentication with "
        f"{kafka.sasl_mechanism} failed ({type(failure).__name__}); check "
        "TARIFFMON_KAFKA__SASL_USERNAME and TARIFFMON_KAFKA__SASL_PASSWORD "
        "(kafka.sasl_username / kafka.sasl_password)"
    )


def admin_client(kafka: KafkaSettings, *, bootstrap_timeout_s: float = 30.0) -> Any:
    """A connected ``KafkaAdminClient``; close it when done.

    Bootstraps in slices of a few seconds so that rejected SASL credentials raise
    BrokerError (naming bootstrap and user, never the password) within one slice instead
    of a timeout that looks like an unreachable broker.
    """
    deadline = time.monotonic() + bootstrap_timeout_s
    while True:
        slice_s = min(_BOOTSTRAP_SLICE_S, max(0.001, deadline - time.monotonic()))
        with _auth_failure_watch() as watch:
            try:
                return KafkaAdminClient(
                    **client_config(kafka), bootstrap_timeout_ms=max(1, int(slice_s * 1000))
                )
            except KafkaError as exc:
                if watch.failure is not None:
                    raise _auth_error(kafka, watch.failure) from None
                if not exc.retriable or time.monotonic() >= deadline:
                    raise


def probe(kafka: KafkaSettings, timeout_s: float = 5.0) -> dict[str, Any]:
    """One attempt to reach the cluster; returns its description (cluster id, brokers).

    Raises kafka-python's KafkaError as is; a cluster that answers without a registered
    broker yet raises a retriable KafkaError too.
    """
    admin = admin_client(kafka, bootstrap_timeout_s=timeout_s)
    try:
        cluster: dict[str, Any] = admin.describe_cluster()
    finally:
        admin.close()
    if not cluster.get("brokers"):
        raise NodeNotReadyError("the cluster answers but no broker is registered yet")
    return cluster


def unreachable(kafka: KafkaSettings, timeout_s: float, last: BaseException | None = None
                ) -> BrokerError:
    """The one message for a cluster that did not answer: the address, and what to change."""
    detail = ""
    if last is not None:
        text = str(last)  # kafka-python's errors start with their class name already
        name = type(last).__name__
        detail = f" (last error: {text if text.startswith(name) else f'{name}: {text}'})"
    return BrokerError(
        f"no Kafka broker answered at {describe(kafka)} within {timeout_s:g} s{detail}; "
        "check kafka.bootstrap_servers (TARIFFMON_KAFKA__BOOTSTRAP_SERVERS), or wait "
        "longer with kafka.connect_timeout_s (TARIFFMON_KAFKA__CONNECT_TIMEOUT_S)"
    )


def wait_for_broker(kafka: KafkaSettings, timeout: float | None = None) -> dict[str, Any]:
    """Wait until the cluster answers; raise BrokerError naming the address otherwise.

    Retriable kafka-python errors (nothing listening yet, broker still starting) are retried
    until ``timeout`` seconds (default ``kafka.connect_timeout_s``) have passed; any other
    error (e.g. failed authentication) is reported at once.
    """
    timeout = kafka.connect_timeout_s if timeout is None else timeout
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            return probe(kafka, timeout_s=min(5.0, max(0.5, remaining)))
        except KafkaError as exc:
            if not exc.retriable:
                raise BrokerError(
                    f"Kafka at {describe(kafka)} refused us: {exc}"
                ) from exc
            last = exc
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    raise unreachable(kafka, timeout, last)


def wanted_topics(settings: Settings) -> dict[str, int]:
    """Topic name -> partition count for every topic the settings name."""
    topics = settings.topics
    return {name: topics.partitions_of(stream) for stream, name in topics.all_topics().items()}


def ensure_topics(
    settings: Settings,
    topics: Mapping[str, int] | None = None,
    *,
    timeout: float = 60.0,
) -> dict[str, str]:
    """Create the topics (default: all of the settings') unless they exist; idempotent.

    Returns topic name -> ``"created"`` or ``"exists"``.  An existing topic with another
    partition count than wanted is a ConfigError: ticks and reaction requests must stay
    co-partitioned, and Kafka cannot shrink a topic.
    """
    wanted = dict(topics if topics is not None else wanted_topics(settings))
    if not wanted:
        return {}
    replication = settings.topics.replication_factor
    deadline = time.monotonic() + timeout
    outcome: dict[str, str] = {}
    # an unreachable cluster fails within the connect timeout, not the whole budget
    admin = _admin_until(settings.kafka, min(timeout, settings.kafka.connect_timeout_s))
    try:
        pending = dict(wanted)
        while pending:
            request = {
                name: {"num_partitions": n, "replication_factor": replication,
                       "configs": dict(TOPIC_CONFIGS)}
                for name, n in pending.items()
            }
            try:
                result = admin.create_topics(request, raise_errors=False)
            except KafkaError as exc:
                _retry_or_raise(exc, deadline, "creating topics", settings.kafka)
                continue
            retry_errors: list[str] = []
            for item in result["topics"]:
                name, code = item["name"], item["error_code"]
                err = for_code(code)
                if code == 0:
                    outcome[name] = "created"
                    pending.pop(name, None)
                elif err is TopicAlreadyExistsError:
                    outcome[name] = "exists"
                    pending.pop(name, None)
                elif err.retriable:
                    retry_errors.append(f"{name}: {err.__name__}")
                else:
                    raise BrokerError(
                        f"cannot create topic {name!r} at {describe(settings.kafka)}: "
                        f"{err.__name__} {item.get('error_message') or ''}".rstrip()
                    )
            if pending:
                if time.monotonic() >= deadline:
                    raise BrokerError(
                        f"topics not created within {timeout:g} s: {', '.join(retry_errors)}"
                    )
                time.sleep(0.3)
        _wait_ready(admin, list(wanted), deadline, timeout)
        _check_partitions(admin, wanted, outcome)
    finally:
        admin.close()
    created = sorted(n for n, o in outcome.items() if o == "created")
    if created:
        log.info("created topics %s", ", ".join(created))
    return outcome


def _admin_until(kafka: KafkaSettings, timeout_s: float) -> Any:
    """An admin client connected within ``timeout_s``, or the one "no broker" BrokerError."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return admin_client(kafka, bootstrap_timeout_s=max(0.5, deadline - time.monotonic()))
        except KafkaError as exc:
            if not exc.retriable:
                raise BrokerError(f"connecting at {describe(kafka)} failed: {exc}") from exc
            if time.monotonic() >= deadline:
                raise unreachable(kafka, timeout_s) from None
            time.sleep(0.3)


def _retry_or_raise(exc: KafkaError, deadline: float, doing: str, kafka: KafkaSettings) -> None:
    if not exc.retriable or time.monotonic() >= deadline:
        raise BrokerError(f"{doing} at {describe(kafka)} failed: {exc}") from exc
    log.debug("%s: retrying after %s", doing, exc)
    time.sleep(0.3)


def _wait_ready(admin: Any, names: list[str], deadline: float, timeout: float) -> None:
    """Block until every topic has a leader for each partition (KRaft propagates lazily)."""
    try:
        admin.wait_for_topics(names, timeout_ms=max(1, int((deadline - time.monotonic()) * 1000)))
    except KafkaError as exc:
        raise BrokerError(f"topics not ready within {timeout:g} s: {exc}") from exc


def _check_partitions(admin: Any, wanted: Mapping[str, int], outcome: Mapping[str, str]) -> None:
    existing = [n for n, o in outcome.items() if o == "exists"]
    if not existing:
        return
    for info in admin.describe_topics(existing):
        name = info["name"]
        have = len(info.get("partitions") or [])
        if have != wanted[name]:
            raise ConfigError(
                "topics",
                f"topic {name!r} already exists with {have} partitions, the settings want "
                f"{wanted[name]}; delete the topic or change the partition setting",
            )
