"""The Python client beside hostile records on its reply partition (python-client.e2e.test.ts): connects,
prints "ready <partition>", waits for "go" on stdin (the test has written the records by then), sends one
request and prints its result as JSON. Exits through the interpreter's normal shutdown, where a lost
reference to None aborts it. KAFKA_BROKERS, TOPIC_PREFIX."""

import asyncio
import json
import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../clients/python"))

from pattern_learning_client.client import PatternWorkerClient  # noqa: E402


async def main():
    client = PatternWorkerClient(timeout=20)
    await client.connect()
    try:
        print(f"ready {client.reply_partition}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        result = await client.request(
            {"operation": "get_top", "correlation_id": str(uuid.uuid4()), "limit": 1}
        )
        alive = client._thread is not None and client._thread.is_alive()
        print(json.dumps({"success": result.success, "error_code": result.error_code, "reader_alive": alive}))
    finally:
        await client.close()


asyncio.run(main())
