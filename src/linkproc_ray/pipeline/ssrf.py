"""SSRF guard: which URLs, hosts, ports and addresses the fetcher may reach.

The fetcher asks :func:`resolve_checked` at connect time and dials only the
addresses it returns, so a name cannot resolve to a public address for the
check and to a private one for the connection (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from linkproc_ray.errors import FetchBlocked, FetchDNS

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Every IPv4 range that is not ordinary global unicast (IANA special-purpose
# registry), spelled out so the answer does not move with the Python version.
_BLOCKED_V4 = (
    _V4("0.0.0.0/8"),  # "this network", includes the unspecified address
    _V4("10.0.0.0/8"),  # private
    _V4("100.64.0.0/10"),  # carrier-grade NAT
    _V4("127.0.0.0/8"),  # loopback
    _V4("169.254.0.0/16"),  # link-local, cloud metadata endpoints
    _V4("172.16.0.0/12"),  # private
    _V4("192.0.0.0/24"),  # IETF protocol assignments
    _V4("192.0.2.0/24"),  # documentation
    _V4("192.88.99.0/24"),  # 6to4 relay anycast
    _V4("192.168.0.0/16"),  # private
    _V4("198.18.0.0/15"),  # benchmarking
    _V4("198.51.100.0/24"),  # documentation
    _V4("203.0.113.0/24"),  # documentation
    _V4("224.0.0.0/4"),  # multicast
    _V4("240.0.0.0/4"),  # reserved, includes broadcast
)

# IPv6 is checked the other way round: only global unicast 2000::/3 may pass,
# minus its special-purpose blocks. Prefixes that embed an IPv4 address are
# judged by that address (see _embedded_v4).
_GLOBAL_UNICAST_V6 = _V6("2000::/3")
_BLOCKED_V6 = (
    _V6("2001::/23"),  # IETF protocol assignments (Teredo is handled before)
    _V6("2001:db8::/32"),  # documentation
    _V6("3fff::/20"),  # documentation
    _V6("5f00::/16"),  # segment routing SIDs
)
_NAT64_WELL_KNOWN = _V6("64:ff9b::/96")
_SIX_TO_FOUR = _V6("2002::/16")
_TEREDO = _V6("2001::/32")

_HEX_PART = re.compile(r"0x[0-9a-f]*")
_OCTAL_PART = re.compile(r"0[0-7]+")
_DECIMAL_PART = re.compile(r"[1-9][0-9]*|0")


class Resolver(Protocol):
    """Turns a host name into IP address strings; raises :class:`FetchDNS` if it cannot."""

    async def resolve(self, host: str, port: int) -> list[str]: ...


class SystemResolver:
    """The operating system's resolver, through the event loop's ``getaddrinfo``."""

    async def resolve(self, host: str, port: int) -> list[str]:
        """All addresses of ``host`` in resolver order, without duplicates."""
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchDNS(f"cannot resolve {host!r}: {exc}") from exc
        addresses = [str(info[4][0]) for info in infos]
        return list(dict.fromkeys(addresses))


@dataclass(frozen=True)
class FetchPolicy:
    """What the guard lets through besides public addresses.

    ``allow_hosts`` entries are lowercase ``host`` (any port, port policy still
    applies) or ``host:port`` (that port only); they skip the address check.
    ``allowed_ports`` of ``None`` means any port.
    """

    allow_hosts: frozenset[str] = frozenset()
    allowed_ports: frozenset[int] | None = None

    @classmethod
    def from_allow_list(cls, value: str, allowed_ports: frozenset[int] | None = None) -> FetchPolicy:
        """Parse the comma-separated ``LINKPROC_FETCH_ALLOW_HOSTS`` value."""
        entries = (entry.strip().lower() for entry in value.split(","))
        return cls(allow_hosts=frozenset(e for e in entries if e), allowed_ports=allowed_ports)

    def is_allowlisted(self, host: str, port: int) -> bool:
        """Whether ``host`` (already lowercase, IPv6 without brackets) on ``port`` skips the address check."""
        spelled = f"[{host}]" if ":" in host else host
        return spelled in self.allow_hosts or f"{spelled}:{port}" in self.allow_hosts

    def port_allowed(self, host: str, port: int) -> bool:
        """Whether the port policy lets ``port`` through (a ``host:port`` entry always does)."""
        if self.allowed_ports is None or port in self.allowed_ports:
            return True
        spelled = f"[{host}]" if ":" in host else host
        return f"{spelled}:{port}" in self.allow_hosts


def check_url(url: str) -> None:
    """Raise :class:`FetchBlocked` unless ``url`` is absolute http(s) with a host and no credentials."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise FetchBlocked(f"unparsable URL: {exc}") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise FetchBlocked(f"scheme {parts.scheme or '(none)'!r} is not fetched")
    if not parts.hostname:
        raise FetchBlocked("URL has no host")
    if "@" in parts.netloc:
        raise FetchBlocked("URLs with credentials are not fetched")


def is_public_address(ip: str) -> bool:
    """Whether ``ip`` is an ordinary public unicast address that the fetcher may dial.

    Refuses loopback, private, link-local, CGNAT, multicast, reserved,
    unspecified, documentation and benchmarking ranges, IPv6 ULA and site-local,
    and IPv6 forms that embed a refused IPv4 address (IPv4-mapped, 6to4,
    Teredo, NAT64). Unparsable input is not public.
    """
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return _is_public(address)


def _is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv4Address):
        return not any(address in network for network in _BLOCKED_V4)
    embedded = _embedded_v4(address)
    if embedded is not None:
        return all(_is_public(v4) for v4 in embedded)
    if address not in _GLOBAL_UNICAST_V6:
        # Covers ::, ::1, IPv4-compatible ::a.b.c.d, 64:ff9b:1::/48 (local-use
        # NAT64), discard 100::/64, ULA fc00::/7, link-local fe80::/10,
        # site-local fec0::/10 and multicast ff00::/8.
        return False
    return not any(address in network for network in _BLOCKED_V6)


def _embedded_v4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...] | None:
    """The IPv4 addresses that packets to ``address`` really go to, if it embeds any."""
    if address.ipv4_mapped is not None:
        return (address.ipv4_mapped,)
    if address in _NAT64_WELL_KNOWN:
        return (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF),)
    if address in _SIX_TO_FOUR and address.sixtofour is not None:
        return (address.sixtofour,)
    if address in _TEREDO and address.teredo is not None:
        return address.teredo  # (server, client): both must be public
    return None


def parse_host_literal(host: str) -> IPAddress | None:
    """The IP address a URL host spells, in any form a resolver would accept, else ``None``.

    Handles dotted IPv4 with 1 to 4 parts, each decimal, octal (leading ``0``)
    or hex (``0x``), so ``2130706433``, ``0177.0.0.1``, ``0x7f.1`` and ``127.1``
    are all 127.0.0.1; and IPv6 with or without brackets or a zone id.
    """
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            return None
    return _parse_ipv4_any_radix(host)


def _parse_ipv4_any_radix(host: str) -> ipaddress.IPv4Address | None:
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # a trailing dot names the same host
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        number = _parse_ipv4_part(part)
        if number is None:
            return None
        numbers.append(number)
    # inet_aton semantics: all but the last part are single bytes; the last
    # part fills the remaining bytes.
    *leading, last = numbers
    if any(n > 0xFF for n in leading) or last >= 1 << (8 * (5 - len(numbers))):
        return None
    value = last
    for index, number in enumerate(leading):
        value |= number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _parse_ipv4_part(part: str) -> int | None:
    # Checked by regex first: int() alone would also take "1_0", " 1" and
    # non-ASCII digits, none of which a resolver reads as a number.
    if _HEX_PART.fullmatch(part):
        return int(part[2:] or "0", 16)
    if _OCTAL_PART.fullmatch(part):
        return int(part, 8)
    if _DECIMAL_PART.fullmatch(part):
        return int(part)
    return None


async def resolve_checked(host: str, port: int, policy: FetchPolicy, resolver: Resolver) -> list[str]:
    """The addresses the fetcher may dial for ``host:port``; never an empty list.

    Raises :class:`FetchBlocked` if the port policy refuses the port or any
    resolved address is not public (one private answer poisons the name), and
    :class:`FetchDNS` if the name does not resolve. Allowlisted hosts skip the
    address check only.
    """
    host = host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")
    if not policy.port_allowed(host, port):
        raise FetchBlocked(f"port {port} is not allowed")
    literal = parse_host_literal(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        addresses = await resolver.resolve(host, port)
        if not addresses:
            raise FetchDNS(f"{host!r} has no addresses")
    if policy.is_allowlisted(host, port) or (literal is not None and policy.is_allowlisted(str(literal), port)):
        return addresses
    refused = [address for address in addresses if not is_public_address(address)]
    if refused:
        raise FetchBlocked(f"{host!r} resolves to a non-public address ({refused[0]})")
    return addresses
