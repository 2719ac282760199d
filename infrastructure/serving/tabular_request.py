"""Request types built from a stored model's feature schema.

Pydantic validates every request before it reaches the batching queue, so one bad request
can never fail a batch that holds other clients' rows. Numbers are strict (a string or a
boolean is not a number) and finite (NaN and infinities are rejected); categories accept
strings, integers and booleans and are compared as strings, as in training.

Every feature may be ``null``: a missing value, which the stored Pipeline's imputers fill as
they did in training. A named field that is left out is an error, not a missing value: a
misspelt or forgotten field would otherwise be imputed silently. Send ``null`` to say
"unknown".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Union

from pydantic import (
    AfterValidator,
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    RootModel,
    Strict,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    create_model,
)

from domain.data.schema import FeatureKind, FeatureSchema

# Finite is not enough: 1e308 passes as a float and overflows to infinity inside the
# model's scaling (seen as a 500 from scikit-learn). 1e15 keeps every step finite and is
# beyond the exact-integer range of float64, so no real measurement is refused.
NUMBER_LIMIT = 1e15
FiniteNumber = Annotated[
    float, Strict(), AllowInfNan(False), Field(ge=-NUMBER_LIMIT, le=NUMBER_LIMIT)
]
CategoryValue = Annotated[Union[StrictStr, StrictInt, StrictBool], AfterValidator(str)]  # noqa: UP007

Row = tuple[Any, ...]


@dataclass(frozen=True)
class TabularRequestTypes:
    """``rows`` types ``classify``'s body field (a list of ``row``); ``predict_body`` is
    ``predict``'s whole body."""

    rows: Any
    row: Any
    instance: type[BaseModel]
    predict_body: type[RootModel[Any]]
    field_names: tuple[str, ...]


def _value_type(kind: FeatureKind) -> Any:
    return (FiniteNumber if kind is FeatureKind.NUMERIC else CategoryValue) | None


def _choose_shape(body: Any) -> str:
    return "instances" if isinstance(body, dict) and "instances" in body else "instance"


def build_request_types(schema: FeatureSchema, max_rows: int) -> TabularRequestTypes:
    value_types = [_value_type(spec.kind) for spec in schema.features]
    row = tuple.__class_getitem__(tuple(value_types))
    rows = Annotated[list[row], Field(min_length=1, max_length=max_rows)]  # type: ignore[valid-type]

    # Feature names need not be identifiers ("petal length (cm)"): fields are positional
    # names with the feature name as alias, so errors and the OpenAPI schema show the name.
    field_names = tuple(f"feature_{i}" for i in range(len(schema.features)))
    fields: dict[str, Any] = {
        field: (value_type, Field(alias=spec.name))
        for field, spec, value_type in zip(field_names, schema.features, value_types, strict=True)
    }
    instance = create_model(
        "Instance",
        __config__=ConfigDict(extra="forbid", frozen=True),
        **fields,
    )
    batch = create_model(
        "Instances",
        __config__=ConfigDict(extra="forbid", frozen=True),
        instances=(Annotated[list[instance], Field(min_length=1, max_length=max_rows)], ...),
    )
    body = Annotated[
        Union[Annotated[batch, Tag("instances")], Annotated[instance, Tag("instance")]],  # noqa: UP007
        Discriminator(_choose_shape),
    ]

    class PredictRequest(RootModel[body]):
        """One instance of named features, or {"instances": [...]}."""

    return TabularRequestTypes(
        rows=rows, row=row, instance=instance, predict_body=PredictRequest, field_names=field_names
    )


def instances_of(body: RootModel[Any], field_names: tuple[str, ...]) -> list[Row]:
    """Rows in schema order from a validated ``predict`` body (one instance or many)."""
    root = body.root
    instances = root.instances if hasattr(root, "instances") else [root]
    return [tuple(getattr(instance, name) for name in field_names) for instance in instances]
