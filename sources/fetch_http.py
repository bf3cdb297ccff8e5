"""Fetching JSON records over HTTP, only from allowlisted hosts.

Every hop (the URL and each redirect) is checked: the host (and port) must be on the allowlist, and
every address its name resolves to must be public unless the allowlist entry allows private
addresses. Addresses that embed or translate to an IPv4 address (6to4, NAT64, Teredo, IPv4-mapped)
and the deprecated site-local range count as private. The auth header goes only to the
configured scheme, host and port: a redirect elsewhere is followed without it.
The connection then goes to one of the addresses that were checked (not a second DNS lookup),
so DNS cannot change the answer in between. The body is read up to a byte limit and a deadline.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

from .errors import FetchError
from .models import SourceKind, allowlist_entry

MAX_REDIRECTS = 3
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
READ_CHUNK = 64 * 1024


def max_bytes() -> int:
    return int(getattr(settings, "SOURCES_HTTP_MAX_BYTES", DEFAULT_MAX_BYTES))


# Ranges Python's `is_global` calls global (3.11) though they reach inside: 6to4 and NAT64 embed an
# IPv4 address that a relay or gateway then connects to; site-local is the old private IPv6 range.
NON_PUBLIC_IPV6 = tuple(
    ipaddress.ip_network(net) for net in ("2002::/16", "64:ff9b::/96", "64:ff9b:1::/48", "fec0::/10", "2001::/32")
)


def _is_private(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return _is_private(address.ipv4_mapped)
        if any(address in net for net in NON_PUBLIC_IPV6):
            return True
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def vetted_address(host: str, port: int) -> str:
    """Check the host against the allowlist and its addresses; return the address to connect to."""
    host = host.lower().rstrip(".")
    entry = allowlist_entry(SourceKind.HTTP, host, port)
    if entry is None:
        raise FetchError(
            _("The host “%(host)s” (port %(port)s) is not on the allowlist of HTTP sources.") % {"host": host, "port": port}
        )
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError(_("The host “%(host)s” cannot be resolved: %(error)s") % {"host": host, "error": exc}) from exc
    addresses = sorted({info[4][0] for info in infos})
    if not addresses:
        raise FetchError(_("The host “%(host)s” cannot be resolved.") % {"host": host})
    private = [a for a in addresses if _is_private(ipaddress.ip_address(a.split("%", 1)[0]))]
    if private and not entry.allow_private_addresses:
        raise FetchError(
            _(
                "The host “%(host)s” resolves to a private, loopback or link-local address (%(address)s); "
                "its allowlist entry does not allow that."
            )
            % {"host": host, "address": private[0]}
        )
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def fetch_json(url: str, *, headers: dict[str, str], timeout_s: int) -> Any:
    deadline = time.monotonic() + timeout_s
    limit = max_bytes()
    origin = None
    for _hop in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchError(_("Only http and https URLs can be fetched."))
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
        origin = origin or (parts.scheme, host.lower(), port)
        address = vetted_address(host, port)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError(_("The request took longer than the time limit (%(s)s s).") % {"s": timeout_s})
        connection_class = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
        conn = connection_class(host, port, address=address, timeout=remaining)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # Credentials go to the configured scheme, host and port only, never where a redirect points.
        hop_headers = {"Accept": "application/json", "User-Agent": "deepseek-admin-sources/1"}
        if (parts.scheme, host.lower(), port) == origin:
            hop_headers.update(headers)
        try:
            conn.request("GET", path, headers=hop_headers)
            response = conn.getresponse()
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise FetchError(_("The server answered a redirect without a location."))
                url = urljoin(url, location)
                continue
            if response.status != 200:
                raise FetchError(_("The server answered HTTP %(status)s.") % {"status": response.status})
            declared = response.getheader("Content-Length")
            if declared and declared.isdecimal() and int(declared) > limit:
                raise _too_large(limit)
            body = bytearray()
            while True:
                if time.monotonic() > deadline:
                    raise FetchError(_("The request took longer than the time limit (%(s)s s).") % {"s": timeout_s})
                chunk = response.read(READ_CHUNK)
                if not chunk:
                    break
                body += chunk
                if len(body) > limit:
                    raise _too_large(limit)
        except (socket.timeout, TimeoutError) as exc:
            raise FetchError(_("The request took longer than the time limit (%(s)s s).") % {"s": timeout_s}) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise FetchError(_("The request failed: %(error)s") % {"error": exc}) from exc
        finally:
            conn.close()
        try:
            return json.loads(bytes(body).decode(response.headers.get_content_charset() or "utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise FetchError(_("The answer is not valid JSON: %(error)s") % {"error": exc}) from exc
        except RecursionError:
            raise FetchError(_("The answer is nested too deeply.")) from None
    raise FetchError(_("Too many redirects."))


def _too_large(limit: int) -> FetchError:
    return FetchError(_("The answer is larger than the limit of %(limit)s bytes.") % {"limit": limit})
