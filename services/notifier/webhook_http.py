"""POSTing a webhook without being turned against our own network (SSRF).

The host name is resolved here, every address checked, and the connection made to the
checked address itself (TLS still verifies the name), so a DNS answer cannot change between
the check and the connect. Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedDestination(Exception):
    """The URL points somewhere webhooks may not go (private, loopback, link-local …)."""


# IPv6 prefixes that carry an IPv4 address in their last 32 bits: NAT64 (well-known and
# local-use) and the deprecated IPv4-compatible form. 6to4, Teredo and IPv4-mapped addresses
# are unpacked by the ipaddress module itself.
_LAST_32_BITS_IPV4 = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("::/96"),
)


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to (6to4, Teredo, NAT64, mapped, compatible)."""
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if any(address in network for network in _LAST_32_BITS_IPV4):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF))
    return found


def is_public(address: IpAddress) -> bool:
    """A globally routable unicast address, and so is every IPv4 address it embeds
    (``2002:7f00:1::`` is 6to4 of 127.0.0.1: not public)."""
    candidates: list[IpAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        candidates.extend(embedded_ipv4(address))
    return all(
        candidate.is_global and not candidate.is_multicast and not candidate.is_unspecified
        for candidate in candidates
    )


async def resolve(host: str, port: int) -> list[IpAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise RefusedDestination(f"cannot resolve {host}: {error}") from None
    addresses: list[IpAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


@dataclass(frozen=True)
class Destination:
    url: str  # with the checked address in place of the host name
    host_header: str
    sni_hostname: str | None


async def checked_destination(url: str, *, allow_private: bool) -> Destination:
    """Resolve ``url``'s host; refuse it unless every address is public (or ``allow_private``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedDestination("only http(s) URLs with a host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await resolve(parts.hostname, port)
    if not addresses:
        raise RefusedDestination(f"{parts.hostname} has no address")
    if not allow_private:
        refused = [str(a) for a in addresses if not is_public(a)]
        if refused:
            raise RefusedDestination(
                f"{parts.hostname} resolves to a non-public address ({', '.join(refused)})"
            )
    address = addresses[0]
    host_literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{host_literal}:{port}"
    pinned = parts._replace(netloc=netloc).geturl()
    default_port = port == (443 if parts.scheme == "https" else 80)
    host_header = parts.hostname if default_port else f"{parts.hostname}:{port}"
    sni = parts.hostname if parts.scheme == "https" else None
    return Destination(url=pinned, host_header=host_header, sni_hostname=sni)


async def post(
    client: httpx.AsyncClient, url: str, *, body: bytes, headers: dict[str, str], allow_private: bool
) -> httpx.Response:
    """POST ``body`` to ``url`` through the SSRF check; the client must not follow redirects."""
    destination = await checked_destination(url, allow_private=allow_private)
    extensions = {"sni_hostname": destination.sni_hostname} if destination.sni_hostname else {}
    return await client.post(
        destination.url,
        content=body,
        headers={**headers, "Host": destination.host_header},
        extensions=extensions,
        follow_redirects=False,
    )
