"""The security headers of every response of every service, set once at the edge.

- ``Content-Security-Policy``: scripts, styles, images and requests only from the service
  itself; no inline script or style, no plugin, no other site, no framing, no ``<base>``,
  forms post only to the service. Pages keep their script and style in static files.
- ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` (older browsers),
  ``Cross-Origin-Opener-Policy: same-origin``, a ``Permissions-Policy`` turning off what
  no page uses.
- ``Referrer-Policy: no-referrer`` everywhere: tracking links (``/t/<code>``), one-time
  sign-in links (``/workbench/welcome?code=``) and signed dashboard links
  (``/dashboard/login?token=``) are capabilities, never sent to another site.
- ``Strict-Transport-Security`` when the request came over https or the deployment says
  browsers reach it only over https (``MINQING_HTTPS_ONLY``, or an https
  ``MINQING_PUBLIC_BASE_URL``).

A route may set its own value of any of these (the API documentation's page does, for
its script's hash and the documentation's CDN); the edge then leaves it alone.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Final

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), payment=(), usb=()",
}
"""On every response (see the module's note)."""

STRICT_TRANSPORT_SECURITY: Final = "max-age=31536000; includeSubDomains"
"""A year, subdomains included; sent only where https is the rule."""

PAGE_HEADERS: Final = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
"""What a page with personal data or a form adds: the security headers (which the edge
sets anyway) and ``Cache-Control: no-store``."""

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def edge_headers(*, https: bool) -> list[tuple[bytes, bytes]]:
    """The raw headers the edge adds to a response (HSTS when ``https``)."""
    headers = dict(SECURITY_HEADERS)
    if https:
        headers["Strict-Transport-Security"] = STRICT_TRANSPORT_SECURITY
    return [(k.lower().encode(), v.encode()) for k, v in headers.items()]


def documentation_policy(html: str, cdn: str) -> str:
    """The Content-Security-Policy of the API documentation's page: its inline scripts by
    hash (never ``'unsafe-inline'``) and the documentation's files from ``cdn``."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'none'; script-src {cdn} {hashes}; style-src {cdn}; "
        f"img-src 'self' data: {cdn}; connect-src 'self'; form-action 'none'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
