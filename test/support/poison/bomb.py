"""Produces record batches that decompress to far more than they weigh (decompression bombs), each in a
batch of its own, with librdkafka: stdin {brokers, records: [{topic, codec, key, zeros | value, headers?}]},
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
                # Checked before compression: the broker sees only the compressed batch.
                "message.max.bytes": 1000000000,
            }
        )
        value = b"\0" * r["zeros"] if "zeros" in r else r["value"].encode()
        sent = {}

        def report(err, msg):
            if err is not None:
                sent["error"] = str(err)
            else:
                sent.update(topic=msg.topic(), partition=msg.partition(), offset=msg.offset())

        headers = [("h", b"")] * r.get("headers", 0)
        producer.produce(r["topic"], value=value, key=r["key"].encode(), headers=headers or None, on_delivery=report)
        left = producer.flush(120)
        if left or "error" in sent:
            sys.exit(f"not delivered: {sent.get('error', 'timeout')}")
        out.append(sent)
    json.dump(out, sys.stdout)


main()
