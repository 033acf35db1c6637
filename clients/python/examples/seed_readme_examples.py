"""The seed README's four usage examples, run against the pattern worker.

Each example is the seed's, unchanged apart from the lines marked `# changed:` (the import, and the
connection handed to the node constructors: a client of the worker instead of an asyncpg pool). What
is added around them: a `main()` to run them in order (the seed's snippets used top-level await), and
`pattern_id` taken from example 1's result, which examples 3 and 4 use without defining it.
Broker and topic prefix come from KAFKA_BROKERS and TOPIC_PREFIX.
"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


async def main():
    # ### Example 1: Insert a Pattern
    from pattern_learning_client import (  # changed: the import
        get_pattern_client,
        NodePatternStorageEffect,
        ModelContractEffect,
    )
    from uuid import uuid4

    # Initialize
    client = await get_pattern_client()  # changed: a client of the worker instead of the pool manager
    storage_node = NodePatternStorageEffect(client)  # changed: the constructor's argument

    # Insert pattern
    contract = ModelContractEffect(
        operation="insert",
        data={
            "pattern_name": "AsyncDatabaseWriterPattern",
            "pattern_type": "code",
            "language": "python",
            "template_code": "async def execute_effect(self, contract): ...",
            "confidence_score": 0.92,
            "tags": ["onex", "effect", "database"],
            "context": {"framework": "onex", "version": "1.0"}
        },
        correlation_id=uuid4()
    )

    result = await storage_node.execute_effect(contract)
    print(f"Success: {result.success}, Pattern ID: {result.data['pattern_id']}")
    pattern_id = result.data["pattern_id"]  # added: examples 3 and 4 use it

    # ### Example 2: Search Patterns
    from pattern_learning_client import NodePatternQueryEffect  # changed: the import

    query_node = NodePatternQueryEffect(client)  # changed: the constructor's argument

    contract = ModelContractEffect(
        operation="search",
        search_query="async database",
        filters={"language": "python", "min_confidence_score": 0.8},
        limit=10
    )

    result = await query_node.execute_effect(contract)
    for pattern in result.data:
        print(f"{pattern['pattern_name']}: {pattern['confidence_score']}")

    # ### Example 3: Track Pattern Usage
    from pattern_learning_client import NodePatternUpdateEffect  # changed: the import

    update_node = NodePatternUpdateEffect(client)  # changed: the constructor's argument

    contract = ModelContractEffect(
        operation="record_usage",
        pattern_id=pattern_id,
        usage_data={
            "file_path": "/project/api/database.py",
            "success": True,
            "execution_time_ms": 125,
            "quality_before": 0.65,
            "quality_after": 0.88,
            "tags": ["production"]
        }
    )

    result = await update_node.execute_effect(contract)
    print(f"Quality improvement: {result.data['quality_improvement']}")

    # ### Example 4: Compute Analytics
    from pattern_learning_client import NodePatternAnalyticsEffect  # changed: the import
    from datetime import datetime, timedelta

    analytics_node = NodePatternAnalyticsEffect(client)  # changed: the constructor's argument

    contract = ModelContractEffect(
        operation="compute_analytics",
        pattern_id=pattern_id,
        period_start=datetime.utcnow() - timedelta(days=30),
        period_end=datetime.utcnow()
    )

    result = await analytics_node.execute_effect(contract)
    print(f"Usage count: {result.data['total_usage_count']}")
    print(f"Success rate: {result.data['success_rate']}")
    print(f"Avg quality improvement: {result.data['average_quality_improvement']}")

    await client.close()  # added: the seed's pool was closed by its manager


if __name__ == "__main__":
    asyncio.run(main())
