"""Small value types used across layers."""

from __future__ import annotations

from typing import Final, Literal

Alias = Literal["champion", "challenger"]
CHAMPION: Final = "champion"
CHALLENGER: Final = "challenger"

JsonScalar = str | int | float | bool | None
