"""Request/reply with the pattern worker over Kafka, with confluent_kafka only.

Each request carries a fresh correlation id in its body and in ``kafka_correlationId``, and names this
client's partition of the shared reply topic (``<prefix>pattern.reply``, as the TypeScript PatternClient)
in ``kafka_replyTopic`` / ``kafka_replyPartition`` (4 bytes big-endian, Spring's encoding). A background
thread reads that one partition from its end, taken before anything is sent, so no reply is missed, and
hands each reply to the coroutine waiting for its correlation id (the result's ``metadata.correlation_id``);
a record there that is not a reply is passed over, whatever its bytes. A call that gets no reply in time
returns a failed ModelResult (error_code ``TIMEOUT``); a write may still be applied, and
``get_result(correlation_id)`` asks the worker what became of it (late-reply pickup).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import struct
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any, Dict, Optional, Tuple

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from .models import ModelResult, to_json

REPLY_TOPIC = "pattern.reply"

_log = logging.getLogger("pattern_learning_client")

# A request's coordinates (topic, partition, offset), as results name them in metadata.source.
Source = Tuple[str, int, int]
_MAX_UNCLAIMED = 1024

# Where each operation goes (the worker's operation registry, src/contracts/operations.ts).
TOPIC_OF_OPERATION = {
    **{op: "pattern.insert" for op in ("insert", "update", "delete", "batch_insert")},
    **{
        op: "pattern.search.request"
        for op in (
            "search",
            "get_by_id",
            "filter",
            "get_related",
            "get_top",
            "get_by_type",
            "get_by_name",
            "get_result",
        )
    },
    **{
        op: "pattern.usage"
        for op in ("record_usage", "update_stats", "create_relationship", "update_relationship")
    },
    **{
        op: "pattern.analytics.compute"
        for op in (
            "compute_analytics",
            "get_usage_trends",
            "get_quality_trends",
            "get_effectiveness",
            "get_global_stats",
        )
    },
}
WRITES = {
    "insert",
    "update",
    "delete",
    "batch_insert",
    "record_usage",
    "update_stats",
    "create_relationship",
    "update_relationship",
    "compute_analytics",
}

# The worker derives an inserted pattern's id from the message identity (src/nodes/ids.ts: a name-based
# UUID v5 in this namespace); keying the insert by it keeps that pattern's later requests in order.
_ID_NAMESPACE = uuid.UUID("6f1c2a4e-8b5d-4f3a-a7c9-e2d1b0f49a37")


def derived_pattern_id(correlation_id: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, f"cid:{correlation_id.lower()}|pattern|0"))


def key_of(operation: str, body: Dict[str, Any]) -> Optional[str]:
    """The message key: the pattern the request concerns, so one pattern's requests stay in order."""
    if body.get("pattern_id"):
        return str(body["pattern_id"])
    data = body.get("data") or {}
    if operation == "insert":
        return str(data.get("pattern_id") or derived_pattern_id(body["correlation_id"]))
    relationship = body.get("relationship_data") or {}
    if relationship.get("source_pattern_id"):
        return str(relationship["source_pattern_id"])
    # A write of no one pattern (batch_insert, global compute_analytics): its own key. The worker keeps a
    # partition's writes without a key in order, one after the other, so one slow one held up the rest.
    if operation in WRITES:
        return str(body["correlation_id"])
    return None


class PatternWorkerClient:
    """One connection to the worker's topics; share it between the node objects."""

    def __init__(
        self,
        bootstrap_servers: Optional[str] = None,
        topic_prefix: Optional[str] = None,
        timeout: float = 30.0,
        client_id: str = "pattern-client-python",
        config: Optional[Dict[str, Any]] = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers or os.environ.get("KAFKA_BROKERS", "127.0.0.1:9092")
        self.topic_prefix = topic_prefix if topic_prefix is not None else os.environ.get("TOPIC_PREFIX", "")
        self.timeout = timeout
        self.reply_topic = f"{self.topic_prefix}{REPLY_TOPIC}"
        self.reply_partition = -1
        self._config = {"bootstrap.servers": self.bootstrap_servers, "client.id": client_id, **(config or {})}
        self._producer: Optional[Producer] = None
        self._consumer: Optional[Consumer] = None
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pending: Dict[str, Tuple[asyncio.AbstractEventLoop, asyncio.Future]] = {}
        # A refused request's result may have no correlation id (its body did not decode); it names the
        # request's coordinates, known once the broker acknowledged the request.
        self._by_source: Dict[Source, str] = {}
        self._unclaimed: "OrderedDict[Source, Dict[str, Any]]" = OrderedDict()

    # -- lifecycle -------------------------------------------------------------------------------

    async def connect(self) -> "PatternWorkerClient":
        await asyncio.get_running_loop().run_in_executor(None, self._connect)
        return self

    def _connect(self) -> None:
        self._producer = Producer({**self._config, "enable.idempotence": True})
        partitions = self._reply_partitions()
        self.reply_partition = random.randrange(partitions)
        consumer = Consumer(
            {
                **self._config,
                "group.id": f"pattern-client-py-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "auto.offset.reset": "latest",
            }
        )
        _low, high = consumer.get_watermark_offsets(
            TopicPartition(self.reply_topic, self.reply_partition), timeout=10
        )
        consumer.assign([TopicPartition(self.reply_topic, self.reply_partition, high)])
        self._consumer = consumer
        self._thread = threading.Thread(target=self._read_replies, name="pattern-replies", daemon=True)
        self._thread.start()

    def _reply_partitions(self) -> int:
        assert self._producer is not None
        deadline = time.monotonic() + 30
        created = False
        while True:
            topic = self._producer.list_topics(timeout=10).topics.get(self.reply_topic)
            if topic is not None and topic.error is None and topic.partitions:
                return len(topic.partitions)
            if not created:
                admin = AdminClient(self._config)
                futures = admin.create_topics([NewTopic(self.reply_topic, num_partitions=3, replication_factor=1)])
                try:
                    futures[self.reply_topic].result(timeout=30)
                except KafkaException as err:
                    if "TOPIC_ALREADY_EXISTS" not in str(err):
                        raise
                created = True
            if time.monotonic() > deadline:
                raise TimeoutError(f"reply topic {self.reply_topic} is not available")
            time.sleep(0.2)

    async def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 5)
        if self._producer is not None:
            self._producer.flush(5)
        if self._consumer is not None:
            self._consumer.close()
        with self._lock:
            pending, self._pending = self._pending, {}
        for loop, future in pending.values():
            loop.call_soon_threadsafe(_settle, future, None)

    async def __aenter__(self) -> "PatternWorkerClient":
        return await self.connect()

    async def __aexit__(self, *_exc: Any) -> None:
        await self.close()

    # -- requests --------------------------------------------------------------------------------

    async def request(self, body: Dict[str, Any], timeout: Optional[float] = None) -> ModelResult:
        """Sends one request body (with its operation and correlation_id) and awaits its result."""
        if self._producer is None:
            raise RuntimeError("PatternWorkerClient is not connected: await client.connect() first")
        operation = body["operation"]
        topic = TOPIC_OF_OPERATION.get(operation)
        if topic is None:
            return ModelResult(
                success=False,
                error=f"Unsupported operation: {operation}",
                error_code="VALIDATION_ERROR",
                metadata={"correlation_id": body.get("correlation_id")},
            )
        correlation_id = str(body["correlation_id"])
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        with self._lock:
            self._pending[correlation_id.lower()] = (loop, future)
        headers = [
            ("kafka_correlationId", correlation_id.encode("utf-8")),
            ("kafka_replyTopic", self.reply_topic.encode("utf-8")),
            ("kafka_replyPartition", struct.pack(">i", self.reply_partition)),
            ("content-type", b"application/json"),
        ]
        key = key_of(operation, body)
        delivered: asyncio.Future = loop.create_future()

        def on_delivery(err: Any, msg: Any) -> None:
            where = None if err is not None else (msg.topic(), msg.partition(), msg.offset())
            loop.call_soon_threadsafe(_settle, delivered, (err, where))

        self._producer.produce(
            f"{self.topic_prefix}{topic}",
            value=to_json(body),
            key=key.encode("utf-8") if key else None,
            headers=headers,
            on_delivery=on_delivery,
        )
        wait = self.timeout if timeout is None else timeout
        source: Optional[Source] = None
        try:
            await loop.run_in_executor(None, self._producer.flush, wait)
            err, source = await asyncio.wait_for(delivered, wait)
            if err is not None:
                return ModelResult(
                    success=False,
                    error=f"the request could not be sent: {err}",
                    error_code="SEND_FAILED",
                    metadata={"correlation_id": correlation_id, "operation": operation},
                )
            with self._lock:
                early = self._unclaimed.pop(source, None)
                if early is None:
                    self._by_source[source] = correlation_id.lower()
            if early is not None:
                _settle(future, early)
            reply = await asyncio.wait_for(future, wait)
        except asyncio.TimeoutError:
            later = (
                f"it may still be applied: ask later with get_result('{correlation_id}')"
                if operation in WRITES
                else "reads are not recorded: send it again"
            )
            return ModelResult(
                success=False,
                error=f"no result for {operation} within {wait:g} s (correlation id {correlation_id}); {later}",
                error_code="TIMEOUT",
                metadata={"correlation_id": correlation_id, "operation": operation, "timed_out": True},
            )
        finally:
            with self._lock:
                self._pending.pop(correlation_id.lower(), None)
                if source is not None:
                    self._by_source.pop(source, None)
        if reply is None:
            return ModelResult(success=False, error="the client was closed", error_code="CLOSED")
        return ModelResult.from_wire(reply)

    async def get_result(
        self, correlation_id: Any, operation: Optional[str] = None, timeout: Optional[float] = None
    ) -> ModelResult:
        """Late-reply pickup: what the worker recorded for an earlier request (data.status applied,
        unknown or not_stored; data.result is the result first published)."""
        return await self.request(
            {
                "operation": "get_result",
                "correlation_id": str(uuid.uuid4()),
                "request_correlation_id": str(correlation_id),
                "request_operation": operation,
            },
            timeout,
        )

    # -- replies ---------------------------------------------------------------------------------

    def _read_replies(self) -> None:
        assert self._consumer is not None
        while not self._stop.is_set():
            message = self._consumer.poll(0.2)
            if message is None or message.error():
                continue
            # Anyone who may write to the reply topic can put any bytes there: a record that is not a
            # reply is passed over, and nothing in one can stop this thread (every request would then
            # time out).
            try:
                reply = _reply_of(message)
            except Exception:  # noqa: BLE001 - a bad record must not end the thread
                _log.debug("passing over an unreadable record on the reply topic", exc_info=True)
                continue
            if reply is None:
                continue
            correlation_id, source, value = reply
            with self._lock:
                if correlation_id is None and source is not None:
                    correlation_id = self._by_source.get(source)
                    if correlation_id is None:
                        # Its request's acknowledgement may not have been handled yet.
                        self._unclaimed[source] = value
                        while len(self._unclaimed) > _MAX_UNCLAIMED:
                            self._unclaimed.popitem(last=False)
                waiting = self._pending.get(correlation_id) if correlation_id else None
            if waiting is not None:
                loop, future = waiting
                loop.call_soon_threadsafe(_settle, future, value)


def _reply_of(message: Any) -> Optional[Tuple[Optional[str], Optional[Source], Dict[str, Any]]]:
    """(correlation id, request coordinates, result) of a reply record, or None for anything else. Both are
    read from the result's metadata, which the worker fills from the request (its body's correlation_id,
    and metadata.source), never from the record's headers: confluent-kafka before 1.8.2 loses a reference
    to None for each header without a value (confluentinc/confluent-kafka-python#1191; Debian 12 ships
    1.7.0) and may crash on a header name that is not UTF-8, so reading the headers of whatever is on the
    reply topic could abort this process."""
    try:
        value = json.loads(message.value())
    except (TypeError, ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    metadata = value.get("metadata")
    if not isinstance(metadata, dict):
        return None
    correlation_id = metadata.get("correlation_id")
    correlation_id = correlation_id.lower() if isinstance(correlation_id, str) and correlation_id else None
    source = metadata.get("source")
    where: Optional[Source] = None
    if isinstance(source, dict):
        topic, partition, offset = source.get("topic"), source.get("partition"), source.get("offset")
        if isinstance(topic, str) and isinstance(partition, int) and isinstance(offset, str) and offset.isdigit():
            where = (topic, partition, int(offset))
    if correlation_id is None and where is None:
        return None
    return correlation_id, where, value


def _settle(future: asyncio.Future, value: Any) -> None:
    if not future.done():
        future.set_result(value)


async def get_pattern_client(
    bootstrap_servers: Optional[str] = None, topic_prefix: Optional[str] = None, timeout: float = 30.0
) -> PatternWorkerClient:
    """A connected client (KAFKA_BROKERS and TOPIC_PREFIX from the environment by default): what the
    seed's get_pattern_db_manager() was to its nodes."""
    return await PatternWorkerClient(bootstrap_servers, topic_prefix, timeout).connect()
