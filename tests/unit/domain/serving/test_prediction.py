"""A file batch's request ids, held as one array, read as the strings the service answers."""

from __future__ import annotations

import numpy as np
import pytest

from application.monitoring.serving_monitor import new_request_id_array
from domain.serving.prediction import HexIds


def test_hex_ids_are_32_hex_digit_strings_and_unique() -> None:
    ids = new_request_id_array(1_000)
    assert len(ids) == 1_000 and len(set(ids)) == 1_000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert ids[3] == list(ids)[3] and isinstance(ids[3], str)
    assert list(ids[10:12]) == list(ids)[10:12]


def test_hex_ids_refuse_anything_but_32_digits() -> None:
    with pytest.raises(ValueError, match="S32"):
        HexIds(np.array([b"abc"], dtype="S3"))
