#!/usr/bin/python3
# The deploy scenario's reader: librdkafka (Debian's python3-confluent-kafka), independent of the worker's
# client. First stdin line, JSON: {"brokers", "results": [topics], "dlqs": [topics]}. Every partition of
# those topics is assigned from its beginning (no consumer group is joined, nothing is committed), and
# read until stdin says "stop" (or closes). Output, one JSON line per record:
#   results and replies: {"k": "res", "t", "p", "rcv" (epoch ms when read), "ts", "id" (metadata.correlation_id,
#   else the kafka_correlationId header), "ok", "code", "dup", "st", "sp" (metadata.source topic/partition)}
#   dead letters: {"k": "dlq", "t", "rcv", "id", "code" (kafka_dlt-exception-fqcn)}
# then {"k": "ready"} once assigned, and {"k": "end", "records"} at the end.
import json
import sys
import threading
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition


def now_ms():
    return time.time() * 1000.0


def text(b):
    if b is None:
        return None
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b.hex()


def main():
    cfg = json.loads(sys.stdin.readline())
    stop = threading.Event()

    def watch():
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()

    threading.Thread(target=watch, daemon=True).start()
    consumer = Consumer(
        {
            "bootstrap.servers": cfg["brokers"],
            "group.id": "deploy-bench-reader-" + uuid.uuid4().hex[:8],
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 10,
            "fetch.error.backoff.ms": 10,
        }
    )
    out = sys.stdout
    dlqs = set(cfg["dlqs"])
    topics = list(cfg["results"]) + list(cfg["dlqs"])
    metadata = consumer.list_topics(timeout=15)
    assignment = []
    for topic in topics:
        t = metadata.topics.get(topic)
        if t is None or t.error is not None:
            raise RuntimeError(f"topic {topic} does not exist")
        for p in t.partitions:
            assignment.append(TopicPartition(topic, p, OFFSET_BEGINNING))
    consumer.assign(assignment)
    out.write(json.dumps({"k": "ready", "partitions": len(assignment)}) + "\n")
    out.flush()
    records = 0
    try:
        while not stop.is_set():
            msg = consumer.poll(0.1)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                out.write(json.dumps({"k": "error", "error": str(msg.error())}) + "\n")
                continue
            records += 1
            rcv = now_ms()
            headers = {k: v for k, v in (msg.headers() or [])}
            try:
                value = json.loads(msg.value() or b"null")
            except ValueError:
                value = None
            if not isinstance(value, dict):
                value = {}
            if msg.topic() in dlqs:
                line = {
                    "k": "dlq",
                    "t": msg.topic(),
                    "rcv": rcv,
                    "id": value.get("correlation_id") or text(headers.get("kafka_correlationId")),
                    "code": text(headers.get("kafka_dlt-exception-fqcn")),
                }
            else:
                meta = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
                source = meta.get("source") if isinstance(meta.get("source"), dict) else {}
                error = value.get("error") if isinstance(value.get("error"), dict) else {}
                line = {
                    "k": "res",
                    "t": msg.topic(),
                    "p": msg.partition(),
                    "rcv": rcv,
                    "ts": msg.timestamp()[1],
                    "id": meta.get("correlation_id") or text(headers.get("kafka_correlationId")),
                    "ok": value.get("success") is True,
                    "code": error.get("code"),
                    "dup": meta.get("duplicate") is True,
                    "st": source.get("topic"),
                    "sp": source.get("partition"),
                }
            out.write(json.dumps(line) + "\n")
            out.flush()
    finally:
        consumer.close()
    out.write(json.dumps({"k": "end", "records": records}) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
