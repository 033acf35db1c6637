#!/usr/bin/python3
# Produces hostile records with librdkafka (Debian's python3-confluent-kafka), an independent client.
# Input (stdin, JSON): {"brokers": "h:p", "messages": [{"topic", "partition", "key", "value", "headers"}]}
# where key, value and each header value are null or a byte spec: {"hex": "..."}, {"text": "..."},
# {"repeat": "x", "bytes": N} or {"coords_of": i} (the topic/partition/offset message i of this batch
# will get, predicted from the high watermarks; every message then needs an explicit partition).
# Headers are a list of [name, spec-or-null] pairs, so duplicates and null values are possible.
# Output (stdout, JSON): one entry per message: where it went (or the error) and digests of what was sent.
import hashlib
import json
import sys

from confluent_kafka import KafkaException, Producer, TopicPartition
from confluent_kafka import Consumer


def expand(spec, coords):
    if spec is None:
        return None
    if "hex" in spec:
        return bytes.fromhex(spec["hex"])
    if "text" in spec:
        return spec["text"].encode("utf-8")
    if "repeat" in spec:
        unit = spec["repeat"].encode("utf-8")
        n = int(spec["bytes"])
        return (unit * (n // len(unit) + 1))[:n]
    if "coords_of" in spec:
        return coords[int(spec["coords_of"])].encode("ascii")
    raise ValueError(f"unknown byte spec {spec!r}")


def digest(b):
    if b is None:
        return None
    return {"len": len(b), "sha": hashlib.sha256(b).hexdigest()}


def predict(brokers, messages):
    """topic/partition/offset each message will get: high watermark + its rank in its partition."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "poison-predict", "enable.auto.commit": False})
    highs = {}
    coords = []
    try:
        for m in messages:
            tp = (m["topic"], m["partition"])
            if tp not in highs:
                _, high = consumer.get_watermark_offsets(TopicPartition(tp[0], tp[1]), timeout=10)
                highs[tp] = high
            coords.append(f"{tp[0]}/{tp[1]}/{highs[tp]}")
            highs[tp] += 1
    finally:
        consumer.close()
    return coords


def main():
    spec = json.load(sys.stdin)
    brokers = spec["brokers"]
    messages = spec["messages"]
    needs_coords = any(
        isinstance(h, list) and isinstance(h[1], dict) and "coords_of" in h[1]
        for m in messages
        for h in (m.get("headers") or [])
    )
    coords = predict(brokers, messages) if needs_coords else []
    producer = Producer(
        {
            "bootstrap.servers": brokers,
            "acks": "all",
            "enable.idempotence": True,
            "message.max.bytes": 16 * 1024 * 1024,
            "linger.ms": 5,
            "partitioner": "murmur2_random",
        }
    )
    out = [None] * len(messages)

    def report(i, sent):
        def callback(err, msg):
            entry = dict(sent)
            if err is not None:
                entry["error"] = str(err)
            else:
                entry.update(topic=msg.topic(), partition=msg.partition(), offset=msg.offset(), timestamp=msg.timestamp()[1])
            out[i] = entry

        return callback

    for i, m in enumerate(messages):
        key = expand(m.get("key"), coords)
        value = expand(m.get("value"), coords)
        headers = [(h[0], expand(h[1], coords)) for h in (m.get("headers") or [])]
        sent = {
            "index": i,
            "key": digest(key),
            "value": digest(value),
            "headers": [[name, digest(v)] for name, v in headers],
        }
        kwargs = {"topic": m["topic"], "value": value, "key": key, "on_delivery": report(i, sent)}
        if headers:
            kwargs["headers"] = headers
        if m.get("partition") is not None:
            kwargs["partition"] = int(m["partition"])
        while True:
            try:
                producer.produce(**kwargs)
                break
            except BufferError:
                producer.poll(0.1)
            except KafkaException as e:
                out[i] = dict(sent, error=str(e))
                break
        producer.poll(0)
    left = producer.flush(60)
    if left:
        print(f"{left} messages not delivered within 60 s", file=sys.stderr)
        sys.exit(1)
    if needs_coords:
        for i, entry in enumerate(out):
            if entry and "offset" in entry and coords[i] != f"{entry['topic']}/{entry['partition']}/{entry['offset']}":
                entry["error"] = f"predicted {coords[i]}, got offset {entry['offset']}"
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
