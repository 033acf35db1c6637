"""The seed's contract and result objects, for code written against its storage layer.

ModelContractEffect takes every field any of the four seed nodes' contracts had, with the same
defaults; each node sends the fields its own seed contract had (see nodes.py). ModelResult keeps the
seed's attributes (success, data, error as a string, metadata) and adds error_code and error_details
from the worker's structured error.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import json
import uuid
from typing import Any, Dict, List, Optional


class ModelContractEffect:
    """A request, as the seed's nodes took it: ``ModelContractEffect(operation="insert", data={...})``."""

    def __init__(
        self,
        operation: str,
        data: Optional[Dict[str, Any]] = None,
        pattern_id: Optional[Any] = None,
        patterns: Optional[List[Dict[str, Any]]] = None,
        filters: Optional[Dict[str, Any]] = None,
        search_query: Optional[str] = None,
        limit: int = 10,
        offset: int = 0,
        usage_data: Optional[Dict[str, Any]] = None,
        relationship_data: Optional[Dict[str, Any]] = None,
        period_start: Optional[_dt.datetime] = None,
        period_end: Optional[_dt.datetime] = None,
        aggregate_by: Optional[str] = None,
        correlation_id: Optional[Any] = None,
        **extra: Any,
    ) -> None:
        self.operation = operation
        self.data = data or {}
        self.pattern_id = pattern_id
        self.patterns = patterns or []
        self.filters = filters or {}
        self.search_query = search_query
        self.limit = limit
        self.offset = offset
        self.usage_data = usage_data or {}
        self.relationship_data = relationship_data or {}
        self.period_start = period_start
        self.period_end = period_end
        self.aggregate_by = aggregate_by or "day"
        self.correlation_id = correlation_id or uuid.uuid4()
        # Fields the worker added (pattern_name and language of get_by_name, direction of get_related,
        # request_correlation_id of get_result, ...): sent as given.
        self.extra = extra

    def to_request(self, fields: List[str]) -> Dict[str, Any]:
        """The request body: `fields` (those of the node's seed contract), then the extra ones."""
        body = {name: getattr(self, name) for name in fields}
        body.update(self.extra)
        body["operation"] = self.operation
        body["correlation_id"] = str(self.correlation_id)
        return body


class ModelResult:
    """A result: ``success``, ``data``, ``error`` (the message, as the seed's string) and ``metadata``."""

    def __init__(
        self,
        success: bool,
        data: Any = None,
        error: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
        error_code: Optional[str] = None,
        error_details: Optional[Dict[str, Any]] = None,
    ) -> None:
        self.success = success
        self.data = data
        self.error = error
        self.metadata = metadata or {}
        self.error_code = error_code
        self.error_details = error_details

    @classmethod
    def from_wire(cls, value: Dict[str, Any]) -> "ModelResult":
        error = value.get("error")
        if isinstance(error, dict):
            return cls(
                success=bool(value.get("success")),
                data=value.get("data"),
                error=error.get("message"),
                metadata=value.get("metadata") or {},
                error_code=error.get("code"),
                error_details=error.get("details"),
            )
        return cls(
            success=bool(value.get("success")),
            data=value.get("data"),
            error=error,
            metadata=value.get("metadata") or {},
        )

    def to_dict(self) -> Dict[str, Any]:
        return {
            "success": self.success,
            "data": self.data,
            "error": self.error,
            "metadata": self.metadata,
        }

    def __repr__(self) -> str:
        return f"ModelResult(success={self.success!r}, error={self.error!r}, data={self.data!r})"


def _default(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    # A naive datetime is sent naive (isoformat without an offset); the worker reads it as UTC.
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(value: Any) -> bytes:
    return json.dumps(value, default=_default, separators=(",", ":")).encode("utf-8")
