"""Request and response bodies of the Iceberg REST spec.

Table and view internals reuse PyIceberg's models (schemas, partition specs, sort orders,
``TableUpdate``/``TableRequirement`` as discriminated unions), so a body PyIceberg or the Java
client sends parses into exactly what ``update_table_metadata`` consumes.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.sorting import SortOrder
from pyiceberg.table.update import TableRequirement, TableUpdate


class _Body(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


def _properties_to_str(value: Any) -> Any:
    if isinstance(value, dict):
        # numbers become strings; null, lists and objects are left for validation to refuse
        return {str(k): str(v) if isinstance(v, int | float) else v for k, v in value.items()}
    return value


class CreateNamespaceRequest(_Body):
    namespace: list[str]
    properties: dict[str, str] = Field(default_factory=dict)

    _props = field_validator("properties", mode="before")(lambda cls, v: _properties_to_str(v) or {})


class UpdateNamespacePropertiesRequest(_Body):
    removals: list[str] = Field(default_factory=list)
    updates: dict[str, str] = Field(default_factory=dict)

    _props = field_validator("updates", mode="before")(lambda cls, v: _properties_to_str(v) or {})


class TableIdentifierBody(_Body):
    namespace: list[str]
    name: str


class CreateTableRequest(_Body):
    name: str
    location: str | None = None
    table_schema: Schema = Field(alias="schema")
    partition_spec: PartitionSpec | None = Field(default=None, alias="partition-spec")
    write_order: SortOrder | None = Field(default=None, alias="write-order")
    stage_create: bool = Field(default=False, alias="stage-create")
    properties: dict[str, str] = Field(default_factory=dict)

    _props = field_validator("properties", mode="before")(lambda cls, v: _properties_to_str(v) or {})


class RegisterTableRequest(_Body):
    name: str
    metadata_location: str = Field(alias="metadata-location")
    overwrite: bool = False


class CommitTableRequest(_Body):
    identifier: TableIdentifierBody | None = None
    requirements: list[TableRequirement] = Field(default_factory=list)
    updates: list[TableUpdate] = Field(default_factory=list)


class CommitTransactionRequest(_Body):
    table_changes: list[CommitTableRequest] = Field(alias="table-changes")


class RenameTableRequest(_Body):
    source: TableIdentifierBody
    destination: TableIdentifierBody
