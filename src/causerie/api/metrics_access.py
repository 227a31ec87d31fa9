"""Who may read `/metrics`: the node's own machine, directly, or whoever holds the metrics token.

The numbers say how busy each node is and which spaces it runs: for the operator, not for the
audience. The node does not rely on an edge to hide them (an edge rule is one path pattern
among many, and `/%6detrics` once slipped past one): it decides itself.

- A request from a loopback address that no proxy relayed is the operator's own machine
  (a Prometheus agent on the node, `curl 127.0.0.1:8080/metrics`). An edge on the same
  machine also connects from 127.0.0.1, but it relays someone else: every generated edge adds
  `X-Forwarded-For` (Varnish also `Via`), so a request carrying any forwarding header is not
  taken for the machine's own, trusted proxy or not.
- Anyone else needs `Authorization: Bearer <--metrics-token>` (compared in constant time);
  without a configured token, nobody else reads them.
"""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import Request

from .errors import ApiError

FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip", "via", "x-causerie-forwarded")
"""Headers that say a proxy relayed the request for someone else (RFC 7239, RFC 9110 §7.6.3)."""


def is_direct_local(request: Request) -> bool:
    """True for a request from this machine's loopback that no proxy relayed."""
    if any(name in request.headers for name in FORWARDING_HEADERS):
        return False
    if request.client is None:
        return False
    try:
        return ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:  # a Unix socket path, a test client's name
        return False


def check_metrics_access(request: Request, token: str | None) -> None:
    """Return if `request` may read the metrics; otherwise raise a 401 or 403 `ApiError`."""
    if is_direct_local(request):
        return
    if token is None:
        raise ApiError(
            403,
            "the metrics are served to this machine only; start the node with "
            "--metrics-token to read them from elsewhere",
        )
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return
    raise ApiError(
        401,
        "the metrics need 'Authorization: Bearer <metrics token>'",
        {"WWW-Authenticate": 'Bearer realm="metrics"'},
    )
