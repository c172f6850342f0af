"""The SSRF guard: every spelling of a non-public address is refused, public ones pass."""

from __future__ import annotations

import ipaddress

import pytest

from linkproc_ray.errors import FetchBlocked, FetchDNS
from linkproc_ray.pipeline.ssrf import (
    FetchPolicy,
    SystemResolver,
    check_url,
    is_public_address,
    parse_host_literal,
    resolve_checked,
)


class FakeResolver:
    """Resolves names from a fixed table and records what it was asked."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.table:
            raise FetchDNS(f"{host} not in the fake table")
        return self.table[host]


# Every way of writing 127.0.0.1 that a resolver or a browser accepts.
LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "2130706433",  # one decimal number
    "0x7f000001",  # one hex number
    "017700000001",  # one octal number
    "0177.0.0.1",  # octal parts
    "0x7f.0.0.1",  # hex parts
    "0x7F.0x0.0x0.0x1",
    "127.1",  # short form: a.d
    "127.0.1",  # short form: a.b.d
    "0x7f.1",  # mixed radix, short
    "0177.0x0.1",
    "127.000.000.001",
    "127.0.0.1.",  # trailing dot
]


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_every_ipv4_spelling_parses_to_the_same_address(host: str) -> None:
    assert parse_host_literal(host) == ipaddress.IPv4Address("127.0.0.1")


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("[0:0:0:0:0:0:0:1]", "::1"),
        ("fe80::1%eth0", "fe80::1%eth0"),
        ("0", "0.0.0.0"),
        ("4294967295", "255.255.255.255"),
        ("1.2.65535", "1.2.255.255"),
    ],
)
def test_other_literals_parse(host: str, address: str) -> None:
    assert str(parse_host_literal(host)) == address


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "127.0.0.1.example.com",
        "256.0.0.1",
        "1.2.3.256",
        "4294967296",
        "08.0.0.1",
        "0x1g.0.0.1",
        "1_0.0.0.1",
        "1..2",
        "[::1",
        "١٢٧.0.0.1",
        "",
    ],
)
def test_names_and_invalid_numbers_are_not_literals(host: str) -> None:
    assert parse_host_literal(host) is None


NON_PUBLIC = [
    # IPv4
    "127.0.0.1",  # loopback
    "127.255.255.254",
    "0.0.0.0",  # unspecified
    "0.1.2.3",  # "this network"
    "10.0.0.1",  # private
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # link-local: cloud metadata
    "100.64.0.1",  # carrier-grade NAT
    "100.127.255.255",
    "192.0.0.8",  # IETF protocol assignments
    "192.0.2.1",  # documentation
    "198.51.100.7",
    "203.0.113.9",
    "198.18.0.1",  # benchmarking
    "198.19.255.255",
    "192.88.99.1",  # 6to4 relay anycast
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",  # broadcast
    # IPv6
    "::",  # unspecified
    "::1",  # loopback
    "::ffff:127.0.0.1",  # IPv4-mapped, dotted
    "::ffff:7f00:1",  # IPv4-mapped, hex
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",  # IPv4-compatible (deprecated)
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
    "2001:0:7f00:1::",  # Teredo, server 127.0.0.1
    "64:ff9b::10.0.0.1",  # NAT64 well-known prefix
    "64:ff9b::7f00:1",
    "64:ff9b:1::8.8.8.8",  # NAT64 local-use prefix
    "100::1",  # discard-only
    "2001:db8::1",  # documentation
    "3fff::1",
    "2001:2::1",  # benchmarking
    "fc00::1",  # unique local
    "fd12:3456:789a::1",
    "fe80::1",  # link-local
    "fe80::1%eth0",
    "fec0::1",  # site-local (deprecated)
    "ff02::1",  # multicast
    "5f00::1",  # segment routing
    # not an address at all
    "localhost",
    "",
]


@pytest.mark.parametrize("ip", NON_PUBLIC)
def test_non_public_addresses_are_refused(ip: str) -> None:
    assert not is_public_address(ip)


PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "172.15.255.255",  # just outside 172.16/12
    "100.128.0.1",  # just outside 100.64/10
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",  # IPv4-mapped public
    "2002:808:808::1",  # 6to4 of 8.8.8.8
    "64:ff9b::8.8.8.8",  # NAT64 of a public address
]


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses_pass(ip: str) -> None:
    assert is_public_address(ip)


@pytest.mark.parametrize(
    "host",
    LOOPBACK_SPELLINGS + ["[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[2002:7f00:1::]", "[64:ff9b::7f00:1]"],
)
async def test_literal_loopback_hosts_are_blocked_without_dns(host: str) -> None:
    resolver = FakeResolver({})

    with pytest.raises(FetchBlocked):
        await resolve_checked(host, 80, FetchPolicy(), resolver)
    assert resolver.asked == []


async def test_name_resolving_to_a_private_address_is_blocked() -> None:
    with pytest.raises(FetchBlocked):
        await resolve_checked("evil.test", 80, FetchPolicy(), FakeResolver({"evil.test": ["10.0.0.1"]}))


async def test_one_private_answer_among_public_ones_blocks_the_name() -> None:
    resolver = FakeResolver({"mixed.test": ["93.184.216.34", "127.0.0.1"]})

    with pytest.raises(FetchBlocked):
        await resolve_checked("mixed.test", 443, FetchPolicy(), resolver)


async def test_public_name_returns_its_addresses() -> None:
    resolver = FakeResolver({"example.test": ["93.184.216.34", "2606:2800:220:1::1"]})

    addresses = await resolve_checked("Example.Test.", 443, FetchPolicy(), resolver)

    assert addresses == ["93.184.216.34", "2606:2800:220:1::1"]


async def test_unknown_name_is_a_dns_error() -> None:
    with pytest.raises(FetchDNS):
        await resolve_checked("nowhere.test", 80, FetchPolicy(), FakeResolver({}))


async def test_name_without_addresses_is_a_dns_error() -> None:
    with pytest.raises(FetchDNS):
        await resolve_checked("empty.test", 80, FetchPolicy(), FakeResolver({"empty.test": []}))


async def test_allowlisted_host_and_port_opens_loopback() -> None:
    policy = FetchPolicy.from_allow_list("127.0.0.1:8123")

    assert await resolve_checked("127.0.0.1", 8123, policy, FakeResolver({})) == ["127.0.0.1"]


async def test_allowlisted_host_and_port_leaves_other_ports_closed() -> None:
    policy = FetchPolicy.from_allow_list("127.0.0.1:8123")

    with pytest.raises(FetchBlocked):
        await resolve_checked("127.0.0.1", 8124, policy, FakeResolver({}))


async def test_allowlisted_name_skips_the_address_check_only() -> None:
    policy = FetchPolicy(allow_hosts=frozenset({"localhost"}), allowed_ports=frozenset({80, 443}))
    resolver = FakeResolver({"localhost": ["127.0.0.1", "::1"]})

    assert await resolve_checked("localhost", 80, policy, resolver) == ["127.0.0.1", "::1"]
    with pytest.raises(FetchBlocked):
        await resolve_checked("localhost", 6379, policy, resolver)


async def test_allowlist_matches_any_spelling_of_an_allowlisted_address() -> None:
    policy = FetchPolicy.from_allow_list("127.0.0.1")

    assert await resolve_checked("0x7f.1", 80, policy, FakeResolver({})) == ["127.0.0.1"]


async def test_allowlisted_ipv6_is_written_in_brackets() -> None:
    policy = FetchPolicy.from_allow_list("[::1]:8000")

    assert await resolve_checked("::1", 8000, policy, FakeResolver({})) == ["::1"]


async def test_port_policy_refuses_other_ports_of_public_hosts() -> None:
    policy = FetchPolicy(allowed_ports=frozenset({80, 443}))
    resolver = FakeResolver({"example.test": ["93.184.216.34"]})

    with pytest.raises(FetchBlocked):
        await resolve_checked("example.test", 22, policy, resolver)
    assert resolver.asked == []


def test_allow_list_parsing_trims_lowercases_and_skips_empty_entries() -> None:
    policy = FetchPolicy.from_allow_list(" LocalHost:8123, 127.0.0.1 ,,[::1]:9000, ")

    assert policy.allow_hosts == frozenset({"localhost:8123", "127.0.0.1", "[::1]:9000"})
    assert FetchPolicy.from_allow_list("") == FetchPolicy()


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "file:///etc/passwd",
        "gopher://example.com/",
        "http://user:pw@example.com/",
        "http://@example.com/",
        "http:///nohost",
        "example.com",
    ],
)
def test_check_url_refuses_non_http_hostless_and_credentialed_urls(url: str) -> None:
    with pytest.raises(FetchBlocked):
        check_url(url)


async def test_system_resolver_resolves_localhost_and_maps_failures_to_dns_errors() -> None:
    resolver = SystemResolver()

    addresses = await resolver.resolve("localhost", 80)

    assert set(addresses) & {"127.0.0.1", "::1"}
    with pytest.raises(FetchDNS):
        await resolver.resolve("does-not-exist.invalid", 80)
