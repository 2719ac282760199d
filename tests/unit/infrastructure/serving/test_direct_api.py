"""The direct path's request headers: Starlette's lookup, without raising for a miss."""

from __future__ import annotations

from starlette.datastructures import Headers

from infrastructure.serving.direct_api import RequestHeaders

SCOPE = {
    "type": "http",
    "headers": [(b"x-routing-key", b"user-1"), (b"accept", b"a"), (b"accept", b"b")],
}


def test_lookups_match_starlettes_headers() -> None:
    ours, starlettes = RequestHeaders(scope=SCOPE), Headers(scope=SCOPE)
    for name in ("x-routing-key", "X-Routing-Key", "accept", "absent"):
        assert ours.get(name) == starlettes.get(name)
        assert ours.get(name, "fallback") == starlettes.get(name, "fallback")
    assert ours.get("accept") == "a"  # the first of repeated headers
    assert ours.getlist("accept") == ["a", "b"]
