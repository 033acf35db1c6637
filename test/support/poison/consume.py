#!/usr/bin/python3
# Reads every record of the given topics, from the low to the high watermark of each partition, with
# librdkafka (no consumer group is joined or committed). Input (stdin, JSON): {"brokers", "topics"}.
# Output (stdout, JSON): {"records": [...], "missing": [topics that do not exist]}; each record has its
# coordinates, timestamp, and key, value and header values as {len, sha, hex} (hex only up to 2 KB).
import ctypes
import hashlib
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, TopicPartition, version

HEX_LIMIT = 2048

# Before 1.8.2, Message.headers() hands out None for a header without a value without taking a reference
# to it (confluentinc/confluent-kafka-python#1191); Debian 12 ships 1.7.0. Enough such headers abort the
# interpreter ("deallocating None"), so each one gets its reference back here.
NONE_UNREFERENCED = tuple(int(n) for n in version()[0].split(".")[:3]) < (1, 8, 2)


def headers_of(msg):
    headers = msg.headers() or []
    if NONE_UNREFERENCED:
        for _, value in headers:
            if value is None:
                ctypes.pythonapi.Py_IncRef(ctypes.py_object(None))
    return headers


def describe(b):
    if b is None:
        return None
    d = {"len": len(b), "sha": hashlib.sha256(b).hexdigest()}
    if len(b) <= HEX_LIMIT:
        d["hex"] = b.hex()
    return d


def main():
    spec = json.load(sys.stdin)
    consumer = Consumer(
        {
            "bootstrap.servers": spec["brokers"],
            "group.id": "poison-reader",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.max.bytes": 64 * 1024 * 1024,
            "max.partition.fetch.bytes": 16 * 1024 * 1024,
            "receive.message.max.bytes": 128 * 1024 * 1024,
        }
    )
    records, missing = [], []
    try:
        metadata = consumer.list_topics(timeout=15)
        assignment, ends = [], {}
        for topic in spec["topics"]:
            t = metadata.topics.get(topic)
            if t is None or t.error is not None:
                missing.append(topic)
                continue
            for p in t.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)
                if high > low:
                    assignment.append(TopicPartition(topic, p, low))
                    ends[(topic, p)] = high
        if assignment:
            consumer.assign(assignment)
        deadline = time.time() + 60
        while ends and time.time() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    ends.pop((msg.topic(), msg.partition()), None)
                    continue
                raise RuntimeError(str(msg.error()))
            records.append(
                {
                    "topic": msg.topic(),
                    "partition": msg.partition(),
                    "offset": msg.offset(),
                    "timestamp": msg.timestamp()[1],
                    "key": describe(msg.key()),
                    "value": describe(msg.value()),
                    "headers": [[k, describe(v)] for k, v in headers_of(msg)],
                }
            )
            if msg.offset() + 1 >= ends.get((msg.topic(), msg.partition()), 0):
                ends.pop((msg.topic(), msg.partition()), None)
        if ends:
            raise RuntimeError(f"partitions not read to their end in 60 s: {sorted(ends)}")
    finally:
        consumer.close()
    json.dump({"records": records, "missing": missing}, sys.stdout)


if __name__ == "__main__":
    main()
