"""The seed's four effect nodes, as Kafka clients of the worker: ``await node.execute_effect(contract)``.

Each sends the fields its seed node's ModelContractEffect had (the seed's four modules each had their
own), with the same defaults, as the seed's callers would have serialised them; the worker accepts a
default in a field the operation does not use.
"""

from __future__ import annotations

from typing import List, Optional

from .client import PatternWorkerClient
from .models import ModelContractEffect, ModelResult


class _Node:
    contract_fields: List[str] = []

    def __init__(self, client: PatternWorkerClient, timeout: Optional[float] = None) -> None:
        self.client = client
        self.timeout = timeout

    async def execute_effect(self, contract: ModelContractEffect) -> ModelResult:
        return await self.client.request(contract.to_request(self.contract_fields), self.timeout)


class NodePatternStorageEffect(_Node):
    """insert, update, delete, batch_insert (topic pattern.insert)."""

    contract_fields = ["data", "pattern_id", "patterns"]


class NodePatternQueryEffect(_Node):
    """search, get_by_id, filter, get_related, get_top, get_by_type (and get_by_name, get_result)."""

    contract_fields = ["pattern_id", "filters", "search_query", "limit", "offset"]


class NodePatternUpdateEffect(_Node):
    """record_usage, update_stats, create_relationship, update_relationship (topic pattern.usage)."""

    contract_fields = ["pattern_id", "usage_data", "relationship_data"]


class NodePatternAnalyticsEffect(_Node):
    """compute_analytics and the analytics reads (topic pattern.analytics.compute)."""

    contract_fields = ["pattern_id", "period_start", "period_end", "aggregate_by"]
