"""Produces record batches that decompress to far more than they weigh (decompression bombs), each in a
batch of its own, with librdkafka: stdin {brokers, records: [{topic, codec, key, zeros | value | values,
headers?}]} (`values`: several records in one batch),
stdout [{topic, partition, offset}] in order. A record of `zeros` bytes of 0x00 compresses ~1,000 to 30,000
times; one of `headers` empty headers takes about two bytes each before compression, a few after."""
import json
import sys

from confluent_kafka import Producer


def main():
    spec = json.load(sys.stdin)
    out = []
    for r in spec["records"]:
        producer = Producer(
            {
                "bootstrap.servers": spec["brokers"],
                "acks": "all",
                "compression.type": r["codec"],
                # Every value of a record spec in one batch.
                "linger.ms": 5000,
                "batch.size": 2000000000,
                "batch.num.messages": 1000000,
                # Checked before compression: the broker sees only the compressed batch.
                "message.max.bytes": 1000000000,
            }
        )
        # "values": several records in one batch (the producer lingers until flushed).
        values = r["values"] if "values" in r else [r["value"]] if "value" in r else None
        values = [v.encode() for v in values] if values is not None else [b"\0" * r["zeros"]]
        sent = [{} for _ in values]

        def reporter(i):
            def report(err, msg):
                if err is not None:
                    sent[i]["error"] = str(err)
                else:
                    sent[i].update(topic=msg.topic(), partition=msg.partition(), offset=msg.offset())

            return report

        headers = [("h", b"")] * r.get("headers", 0)
        for i, value in enumerate(values):
            producer.produce(
                r["topic"], value=value, key=r["key"].encode(), headers=headers or None, on_delivery=reporter(i)
            )
        left = producer.flush(120)
        failed = [s.get("error", "timeout") for s in sent if "offset" not in s]
        if left or failed:
            sys.exit(f"not delivered: {failed[0] if failed else 'timeout'}")
        out.extend(sent)
    json.dump(out, sys.stdout)


main()
