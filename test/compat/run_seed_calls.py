"""Runs the seed's calls (test/fixtures/compat/seed-calls.json) through the Python client, in order, and
prints one JSON line per case: the request body the client sent and the result it got. The vitest suite
(seed-compat.e2e.test.ts) checks both. Usage: run_seed_calls.py <fixture>; KAFKA_BROKERS, TOPIC_PREFIX."""

import asyncio
import json
import os
import sys
import uuid
from datetime import datetime, timedelta

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../clients/python"))

from pattern_learning_client import (  # noqa: E402
    ModelContractEffect,
    NodePatternAnalyticsEffect,
    NodePatternQueryEffect,
    NodePatternStorageEffect,
    NodePatternUpdateEffect,
    get_pattern_client,
)

NODES = {
    "storage": NodePatternStorageEffect,
    "query": NodePatternQueryEffect,
    "update": NodePatternUpdateEffect,
    "analytics": NodePatternAnalyticsEffect,
}


def substitute(value, saved):
    """$name, $cid and $now... placeholders; datetimes become naive datetime objects, as the seed's callers had."""
    if isinstance(value, dict):
        return {k: substitute(v, saved) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, saved) for v in value]
    if isinstance(value, str) and value.startswith("$"):
        if value == "$cid":
            return uuid.uuid4()
        if value.startswith("$now"):
            now = datetime.utcnow()
            return {"$now": now, "$now-30d": now - timedelta(days=30), "$now+1m": now + timedelta(minutes=1)}[value]
        return saved[value[1:]]
    return value


def path(data, dotted):
    for step in dotted.split("."):
        data = data[int(step)] if isinstance(data, list) else data[step]
    return data


async def main(fixture):
    with open(fixture) as f:
        cases = json.load(f)["cases"]
    client = await get_pattern_client(timeout=30)
    saved = {}
    try:
        for case in cases:
            fields = substitute(case["contract"], saved)
            node = NODES[case["node"]](client)
            contract = ModelContractEffect(**fields)
            sent = json.loads(json.dumps(contract.to_request(node.contract_fields), default=str))
            result = await node.execute_effect(contract)
            if result.success:
                for name, where in case.get("save", {}).items():
                    saved[name] = path(result.data, where)
            wire = result.to_dict()
            wire["error_code"] = result.error_code
            print(json.dumps({"name": case["name"], "sent": sent, "saved": saved, "result": wire}), flush=True)
        # A call that gets no answer in time is a failed result; its outcome can be asked for later.
        late = ModelContractEffect(
            operation="insert",
            data={"pattern_name": "CompatLate", "pattern_type": "code", "language": "python"},
        )
        timed_out = await NodePatternStorageEffect(client, timeout=0.001).execute_effect(late)
        picked = None
        for _ in range(100):
            picked = await client.get_result(late.correlation_id, operation="insert")
            if picked.success and picked.data["status"] == "applied":
                break
            await asyncio.sleep(0.1)
        print(
            json.dumps(
                {
                    "name": "late-reply pickup",
                    "timed_out": {"success": timed_out.success, "error_code": timed_out.error_code, "error": timed_out.error},
                    "picked": picked.to_dict(),
                }
            ),
            flush=True,
        )
    finally:
        await client.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
