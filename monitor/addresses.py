"""Which network addresses the daemon may connect to.

Public addresses only, by default: a feed is written by strangers, and a link to
`http://169.254.169.254/` or `http://10.0.0.5/admin` must not make the daemon a
proxy into the operator's own network. An operator can allow private networks
(`fetch.private_allowlist`, e.g. an RSS bridge beside the daemon) or everything
(`fetch.allow_private_addresses`, for tests and trusted setups).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class AddressPolicy:
    """Public addresses, plus the private networks (optionally one port of them) that the
    operator listed in `fetch.private_allowlist`."""

    allowed: tuple[tuple[IPNetwork, int | None], ...] = ()

    @classmethod
    def from_settings(cls, entries: Iterable[str]) -> AddressPolicy:
        return cls(tuple(parse_allowlist_entry(entry) for entry in entries))

    def permits(self, address: str, port: int) -> bool:
        if is_public_address(address):
            return True
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        return any(
            ip.version == network.version and ip in network and allowed_port in (None, port)
            for network, allowed_port in self.allowed
        )


def parse_allowlist_entry(entry: str) -> tuple[IPNetwork, int | None]:
    """`10.0.0.0/8`, `192.168.1.5`, `127.0.0.1:8080` or `[fd00::1]:8080`."""
    text = entry.strip()
    port: int | None = None
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise ValueError(f"{entry!r}: expected [ADDRESS]:PORT")
            port = int(rest[1:])
        text = address
    elif text.count(":") == 1:
        text, _, digits = text.partition(":")
        if not digits.isdigit():
            raise ValueError(f"{entry!r}: expected ADDRESS:PORT with a numeric port")
        port = int(digits)
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"{entry!r}: port {port} out of range")
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(
            f"{entry!r}: expected an IP address or network (10.0.0.0/8), optionally with"
            " :PORT; host names are not accepted, as their addresses can change"
        ) from None
    return network, port
