#!/usr/bin/python3
# Opens a transaction with librdkafka (Debian's python3-confluent-kafka), writes one record in it and
# never ends it: what anyone allowed a transactional id can do to hold a partition for read_committed
# readers until the broker aborts the transaction (after transaction.timeout.ms).
# Usage: open-transaction.py BROKERS TOPIC PARTITION VALUE TIMEOUT_MS; prints "open" once the record is
# written, then waits to be killed.
import sys
import time
import uuid

from confluent_kafka import Producer

brokers, topic, partition, value, timeout_ms = sys.argv[1:6]
producer = Producer(
    {
        "bootstrap.servers": brokers,
        "transactional.id": f"open-transaction-{uuid.uuid4()}",
        "transaction.timeout.ms": int(timeout_ms),
    }
)
producer.init_transactions()
producer.begin_transaction()
producer.produce(topic, value=value.encode("utf-8"), partition=int(partition))
producer.flush()
print("open", flush=True)
while True:
    time.sleep(60)
