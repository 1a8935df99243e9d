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


def is_public(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv4Address) and address in ipaddress.IPv4Network("100.64.0.0/10"))
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
