"""Who sent a webhook request, and whether that address may (docs/webhook.md#networks).

Behind proxies (nginx, a cloud load balancer) the connection's peer is the last proxy; each proxy
appends the address it saw to `X-Forwarded-For`. Only the proxies named as trusted are believed:
the client is the rightmost address of the chain that is not a trusted proxy (what nginx's
`real_ip_recursive on` does). Anything to the left of it was written by the client itself and
proves nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["TELEGRAM_NETWORKS", "AddressRules", "parse_networks"]

# Where Telegram's webhook requests come from (core.telegram.org/bots/webhooks).
TELEGRAM_NETWORKS = ("149.154.160.0/20", "91.108.4.0/22")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(text: str | Iterable[str]) -> tuple[Network, ...]:
    """Comma-separated addresses or networks ("10.0.0.0/8, 127.0.0.1"); a ValueError names a
    bad one."""
    items = text.split(",") if isinstance(text, str) else list(text)
    networks = []
    for item in (part.strip() for part in items):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"not an address or a network: {item!r}") from None
    return tuple(networks)


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "1.2.3.4:5678"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True, slots=True)
class AddressRules:
    """The trusted proxies, and the networks a client must be in (None: any client)."""

    trusted_proxies: Sequence[Network] = ()
    allowed: Sequence[Network] | None = None

    def client(self, peer: str | None, forwarded_for: Sequence[str] = ()) -> Address | None:
        """The client's address: the peer's, or the first untrusted one from the right of
        X-Forwarded-For when the peer is a trusted proxy. None when it cannot be told."""
        address = _address(peer) if peer else None
        if address is None or not self._trusted(address):
            return address
        chain = [part for header in forwarded_for for part in header.split(",")]
        for hop in reversed(chain):
            found = _address(hop)
            if found is None:
                return None  # a chain we cannot read is no evidence of anything
            address = found
            if not self._trusted(found):
                return found
        return address  # every hop is a trusted proxy: the leftmost is the client

    def allows(self, peer: str | None, forwarded_for: Sequence[str] = ()) -> bool:
        if self.allowed is None:
            return True
        address = self.client(peer, forwarded_for)
        return address is not None and any(address in network for network in self.allowed)

    def _trusted(self, address: Address) -> bool:
        return any(address in network for network in self.trusted_proxies)
