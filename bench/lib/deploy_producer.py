#!/usr/bin/python3
# The deploy scenario's load: an open-loop producer on librdkafka (Debian's python3-confluent-kafka), a
# client independent of the worker's. First stdin line, JSON: {"brokers", "usageTopic", "searchTopic",
# "replyTopic", "usageRate", "searchRate", "usage": [{"pattern_id", "usage_data"}], "searches": [{...}]}.
# Requests are due at fixed times (t0 + i / rate per stream) whatever happened to earlier ones; each gets a
# fresh correlation id (body and kafka_correlationId header) and kafka_replyTopic. A usage event's
# usage_data.file_path is "deploy/<correlation id>", so its row can be counted in the database.
# It produces until stdin says "stop" (or closes), then flushes. Output, one JSON line per request once the
# broker acknowledged it: {"k": "req", "id", "op": "u"|"s", "due", "sent", "ack" (epoch ms), "p", "o",
# "ts" (the record's timestamp: LogAppendTime on topics `patterns topics create` made)} or with "err";
# at the end {"k": "end", "produced", "maxLagMs"}.
import json
import sys
import threading
import time
import uuid

from confluent_kafka import KafkaException, Producer


def now_ms():
    return time.time() * 1000.0


def main():
    cfg = json.loads(sys.stdin.readline())
    stop = threading.Event()

    def watch():
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()

    threading.Thread(target=watch, daemon=True).start()
    producer = Producer(
        {
            "bootstrap.servers": cfg["brokers"],
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 1,
            # murmur2 as the Java client, kafkajs and the worker's client library key their records.
            "partitioner": "murmur2_random",
        }
    )
    out = sys.stdout
    reply = cfg["replyTopic"].encode("utf-8")
    usage, searches = cfg["usage"], cfg["searches"]
    streams = [
        ("u", cfg["usageTopic"], 1000.0 / cfg["usageRate"]),
        ("s", cfg["searchTopic"], 1000.0 / cfg["searchRate"]),
    ]
    sent_count = {"u": 0, "s": 0}
    max_lag = 0.0
    produced = 0

    def report(cid, kind, due, sent):
        def callback(err, msg):
            line = {"k": "req", "id": cid, "op": kind, "due": due, "sent": sent, "ack": now_ms()}
            if err is not None:
                line["err"] = str(err)
            else:
                line.update(p=msg.partition(), o=msg.offset(), ts=msg.timestamp()[1])
            out.write(json.dumps(line) + "\n")
            out.flush()

        return callback

    t0 = now_ms() + 20
    while not stop.is_set():
        kind, topic, due = min(
            ((k, t, t0 + sent_count[k] * iv) for k, t, iv in streams), key=lambda x: x[2]
        )
        wait = due - now_ms()
        if wait > 0.5:
            producer.poll(min(wait - 0.3, 50.0) / 1000.0)
            continue
        i = sent_count[kind]
        sent_count[kind] += 1
        cid = str(uuid.uuid4())
        if kind == "u":
            ev = usage[i % len(usage)]
            data = dict(ev["usage_data"])
            data["file_path"] = "deploy/" + cid
            value = {"operation": "record_usage", "correlation_id": cid, "pattern_id": ev["pattern_id"], "usage_data": data}
            key = ev["pattern_id"].encode("utf-8")
        else:
            q = searches[i % len(searches)]
            value = dict(q)
            value.update(operation="search", correlation_id=cid, limit=10)
            key = None
        sent = now_ms()
        max_lag = max(max_lag, sent - due)
        kwargs = {
            "topic": topic,
            "value": json.dumps(value).encode("utf-8"),
            "key": key,
            "headers": [("kafka_correlationId", cid.encode("utf-8")), ("kafka_replyTopic", reply)],
            "on_delivery": report(cid, kind, due, sent),
        }
        while True:
            try:
                producer.produce(**kwargs)
                break
            except BufferError:
                producer.poll(0.05)
            except KafkaException as e:
                out.write(json.dumps({"k": "req", "id": cid, "op": kind, "due": due, "sent": sent, "err": str(e)}) + "\n")
                break
        produced += 1
        producer.poll(0)
    left = producer.flush(60)
    out.write(json.dumps({"k": "end", "produced": produced, "maxLagMs": round(max_lag, 1), "undelivered": left}) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
