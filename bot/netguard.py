"""The SSRF guard: user links, and every request they lead to, reach public addresses only.

Addresses are checked, not names: a host is a literal address (in any form the C library
accepts, e.g. 2130706433, 0x7f.1, 127.1, ::ffff:127.0.0.1) or a name resolved through the
`Resolver` port. When a request goes through a proxy (one of DOWNLOAD_PROXY's), the proxy
connects, not us: a name that does not resolve here is left to the proxy (DESIGN.md section 10:
machines without DNS of their own); literal addresses are always checked. A direct connection
goes to the very address the guard vetted (`HostGuard.address_for`), so a name whose DNS answer
changes between check and connect (rebinding) gains nothing.

How yt-dlp's requests pass this guard is `bot.guarded_ytdlp`; this module imports no yt-dlp, so
a bot whose yt-dlp runs in a process of its own (bot.download_process) does not carry it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Protocol

import urllib3
import urllib3.util

from bot.model import Reason

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 ranges that carry an IPv4 address in their low 32 bits: NAT64 (RFC 6052, 8215).
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


class AddressRefused(Exception):
    """A request the guard stopped before it was sent, with the reason the user is shown."""

    def __init__(self, target: str, why: str, reason: Reason = Reason.UNSAFE_ADDRESS) -> None:
        super().__init__(f"refused {target!r}: {why}")
        self.reason = reason


class Resolver(Protocol):
    """The DNS boundary: every address a name resolves to, or OSError when it does not."""

    def addresses(self, host: str) -> list[str]: ...


class SystemResolver:
    """The C library's getaddrinfo: /etc/hosts, then DNS, as the HTTP libraries resolve."""

    def addresses(self, host: str) -> list[str]:
        try:
            found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except UnicodeError as err:
            raise OSError(f"not a valid name: {err}") from None
        return [str(info[4][0]) for info in found]


def is_public(address: IPAddress) -> bool:
    """Whether an address is globally routable unicast; embedded IPv4 addresses count too."""
    if isinstance(address, ipaddress.IPv6Address):
        translated = address.ipv4_mapped or _nat64(address)
        if translated is not None:
            return is_public(translated)
        tunnelled = address.sixtofour or (address.teredo[1] if address.teredo else None)
        if address.is_site_local or (tunnelled is not None and not is_public(tunnelled)):
            return False
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def _nat64(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address a host names without any lookup, parsed as the C library parses it (so
    2130706433, 0x7f.1 and 0177.0.0.1 are all 127.0.0.1), or None for a name."""
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError, ValueError):
        return None
    return ipaddress.ip_address(str(found[0][4][0]))


class HostGuard:
    """Refuses hosts that are, or resolve to, non-public addresses (see the module docstring)."""

    def __init__(self, resolver: Resolver) -> None:
        self._resolver = resolver

    def check_url(self, url: str) -> None:
        """Raise AddressRefused unless the URL's host may be fetched; a name that does not
        resolve here passes (a proxy resolves it, or the connection fails)."""
        try:
            host = urllib3.util.parse_url(url).host
        except ValueError:
            host = None
        if not host:
            raise AddressRefused(url[:100], "no host")
        self._vetted_addresses(host)

    def address_for(self, host: str) -> str:
        """The address a direct connection to `host` uses: resolved once, here, and vetted, so
        the answer cannot change between the check and the connect (DNS rebinding)."""
        addresses = self._vetted_addresses(host)
        if not addresses:
            raise OSError(f"{host} does not resolve")
        return str(addresses[0])

    def _vetted_addresses(self, host: str) -> list[IPAddress]:
        bare = host.strip("[]")
        # "169.254.169.254." is a name to getaddrinfo but an address to some proxies.
        literal = literal_address(bare) or literal_address(bare.rstrip("."))
        if literal is not None:
            if not is_public(literal):
                raise AddressRefused(host, f"is {literal}, not a public address")
            return [literal]
        try:
            found = self._resolver.addresses(bare)
        except OSError:
            name = bare.lower().rstrip(".")
            # RFC 6761: these are the local machine, whoever resolves them (a proxy too).
            if name == "localhost" or name.endswith(".localhost"):
                raise AddressRefused(host, "is the local machine") from None
            return []
        addresses = _parse_all(found)
        if not addresses:
            raise AddressRefused(host, "resolves to nothing usable")
        for address in addresses:
            if not is_public(address):
                raise AddressRefused(host, f"resolves to {address}, not a public address")
        return addresses


def _parse_all(found: Iterable[str]) -> list[IPAddress]:
    addresses: list[IPAddress] = []
    for text in found:
        try:
            addresses.append(ipaddress.ip_address(text))
        except ValueError:
            return []
    return addresses
