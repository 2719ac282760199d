"""What the tabular service says about a feature in `metadata`."""

from __future__ import annotations

from domain.data.schema import FeatureKind, FeatureSpec
from infrastructure.serving.tabular_service import MAX_LISTED_CATEGORIES, describe_feature


def test_high_cardinality_categories_are_capped_with_their_count() -> None:
    many = tuple(f"city-{i:04d}" for i in range(1300))
    spec = FeatureSpec(name="city", kind=FeatureKind.CATEGORICAL, dtype="object", categories=many)

    described = describe_feature(spec)

    assert described["categories"] == list(many[:MAX_LISTED_CATEGORIES])
    assert described["category_count"] == 1300


def test_numeric_features_list_no_categories() -> None:
    spec = FeatureSpec(name="age", kind=FeatureKind.NUMERIC, dtype="float64")
    assert describe_feature(spec) == {
        "name": "age",
        "kind": "numeric",
        "nullable": True,
        "categories": [],
        "category_count": 0,
    }
