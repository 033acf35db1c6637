"""Python client of the pattern worker, with the seed storage layer's names.

    from pattern_learning_client import get_pattern_client, NodePatternStorageEffect, ModelContractEffect
    client = await get_pattern_client()
    storage_node = NodePatternStorageEffect(client)
    result = await storage_node.execute_effect(ModelContractEffect(operation="insert", data={...}))

Depends on confluent_kafka (Debian: python3-confluent-kafka) and the standard library only.
"""

from .client import PatternWorkerClient, get_pattern_client
from .models import ModelContractEffect, ModelResult
from .nodes import (
    NodePatternAnalyticsEffect,
    NodePatternQueryEffect,
    NodePatternStorageEffect,
    NodePatternUpdateEffect,
)

__all__ = [
    "ModelContractEffect",
    "ModelResult",
    "NodePatternAnalyticsEffect",
    "NodePatternQueryEffect",
    "NodePatternStorageEffect",
    "NodePatternUpdateEffect",
    "PatternWorkerClient",
    "get_pattern_client",
]
