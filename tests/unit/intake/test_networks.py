"""Who sent a webhook request (tggate.intake.networks): the peer, or behind trusted proxies the
rightmost X-Forwarded-For address that is not one of them; and whether it may."""

from __future__ import annotations

import ipaddress

import pytest

from tggate.intake.networks import TELEGRAM_NETWORKS, AddressRules, parse_networks

PROXIES = parse_networks("10.0.0.0/8, 127.0.0.1")
RULES = AddressRules(trusted_proxies=PROXIES, allowed=parse_networks(TELEGRAM_NETWORKS))


def ip(text: str) -> object:
    return ipaddress.ip_address(text)


def test_an_untrusted_peer_is_the_client_whatever_it_forwards() -> None:
    assert RULES.client("203.0.113.5", ["149.154.167.1"]) == ip("203.0.113.5")
    assert not RULES.allows("203.0.113.5", ["149.154.167.1"])


def test_behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() -> None:
    assert RULES.client("127.0.0.1", ["149.154.167.1"]) == ip("149.154.167.1")
    assert RULES.client("127.0.0.1", ["149.154.167.1, 10.1.2.3"]) == ip("149.154.167.1")
    assert RULES.client("127.0.0.1", ["149.154.167.1", "10.1.2.3"]) == ip("149.154.167.1")
    # What the client wrote itself, left of the hop a proxy saw, is not believed.
    assert RULES.client("127.0.0.1", ["149.154.167.1, 198.51.100.7"]) == ip("198.51.100.7")
    assert RULES.allows("10.9.9.9", ["91.108.5.17"])
    assert not RULES.allows("10.9.9.9", ["149.154.167.1, 198.51.100.7"])


def test_every_hop_trusted_means_the_leftmost_is_the_client() -> None:
    assert RULES.client("127.0.0.1", ["10.0.0.2, 10.0.0.1"]) == ip("10.0.0.2")
    assert RULES.client("127.0.0.1", []) == ip("127.0.0.1")


@pytest.mark.parametrize("forwarded", [["unknown"], ["149.154.167.1, garbage"], ["[::1"]])
def test_a_chain_that_cannot_be_read_allows_nothing(forwarded: list[str]) -> None:
    assert not RULES.allows("127.0.0.1", forwarded)


def test_ports_and_mapped_addresses_are_read() -> None:
    assert RULES.client("127.0.0.1", ["149.154.167.1:443"]) == ip("149.154.167.1")
    assert RULES.client("127.0.0.1", ["[2001:db8::1]:443"]) == ip("2001:db8::1")
    assert RULES.client("::ffff:127.0.0.1", ["91.108.4.9"]) == ip("91.108.4.9")


def test_without_an_allow_list_anybody_may_and_a_missing_peer_is_nobody() -> None:
    assert AddressRules().allows("203.0.113.5")
    assert AddressRules().allows(None)
    assert not RULES.allows(None)


def test_bad_networks_are_named() -> None:
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300'"):
        parse_networks("10.0.0.0/8, 10.0.0.300")
    assert parse_networks(" , ") == ()
