"""Which callback URLs the service will POST to: the SSRF rules, checked twice.

At submit (`check_callback_url`, a 400 naming the reason) the URL must be `https://` to a
host that is not an IP literal in a refused range and, when the environment has an
allow-list, on it; a host name is resolved once too (`refusal_at_submit`, bounded in time) to
refuse a name that points inside right away. At delivery (`resolve_public`) the host name is resolved and EVERY
address it resolves to must be public; the notifier then connects to that checked address
itself (api_handler/notifier/delivery.py), so a DNS answer that changes between the check
and the connection (DNS rebinding) cannot send the request somewhere else.

Refused ranges: Python's `ipaddress` flags (`is_global` false: loopback, RFC 1918 private,
link-local incl. the 169.254.169.254 instance metadata address, carrier-grade NAT, IPv6 ULA
fc00::/7, documentation, benchmarking, multicast, unspecified, reserved), plus the IPv6 forms
that embed an IPv4 address (IPv4-mapped ::ffff:a.b.c.d, 6to4 2002::/16, Teredo, NAT64
64:ff9b::/96), judged by the IPv4 address inside. The AWS metadata service also answers on
fd00:ec2::254 (a ULA) which the ULA rule refuses:
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html

Locally (`make local`) and only there, CALLBACK_ALLOW_LOOPBACK_HTTP admits
`http://127.0.0.1:<port>` receivers; the stack never sets it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from .errors import BadRequest

# 2048 is what browsers and most webhook providers accept; a receipt is not a place for more.
MAX_URL_CHARS = 2048
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOST_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789.-")


class UnsafeDestination(ValueError):
    """The callback host is, or resolves to, an address the service must not call."""


@dataclass(frozen=True)
class CallbackPolicy:
    """Per environment: `allowed_hosts` empty = any public host; an entry "*.example.com"
    admits every subdomain of example.com (not example.com itself)."""

    allowed_hosts: tuple[str, ...] = ()
    allow_loopback_http: bool = False

    def host_allowed(self, host: str) -> bool:
        if not self.allowed_hosts:
            return True
        for raw in self.allowed_hosts:
            entry = raw.lower().rstrip(".")
            if entry.startswith("*."):
                if host.endswith(entry[1:]) and host != entry[2:]:
                    return True
            elif host == entry:
                return True
        return False


@dataclass(frozen=True)
class CallbackTarget:
    url: str
    scheme: str
    host: str  # lower case, no trailing dot; IPv6 without brackets
    port: int
    path: str  # path + query, what goes on the request line

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def address_refusal(address: str) -> str | None:
    """Why an IP address is not a public destination, or None when it is."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or (ip.sixtofour) or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            inner = address_refusal(str(embedded))
            return f"{ip} embeds {embedded}: {inner}" if inner else None
    if ip.is_loopback:
        return f"{ip} is a loopback address"
    if ip.is_link_local:
        return f"{ip} is a link-local address (this range holds the instance metadata service)"
    if ip.is_private and isinstance(ip, ipaddress.IPv6Address) and ip in ipaddress.ip_network("fc00::/7"):
        return f"{ip} is an IPv6 unique local address"
    if ip.is_multicast:
        return f"{ip} is a multicast address"
    if ip.is_unspecified:
        return f"{ip} is the unspecified address"
    if ip.is_private:
        return f"{ip} is a private address"
    if not ip.is_global:
        return f"{ip} is not a public address (reserved or special-purpose range)"
    return None


def parse_target(url: str, policy: CallbackPolicy) -> CallbackTarget:
    """The URL's parts once its syntax, scheme and host pass the submit-time rules.

    Raises UnsafeDestination with the reason; `check_callback_url` turns it into a 400.
    """
    if not isinstance(url, str) or not url:
        raise UnsafeDestination("the callback URL is empty")
    if len(url) > MAX_URL_CHARS:
        raise UnsafeDestination(f"the callback URL has {len(url)} characters; at most {MAX_URL_CHARS}")
    if any(not 0x21 <= ord(ch) <= 0x7E for ch in url):
        raise UnsafeDestination("the callback URL must be visible ASCII without spaces (percent-encode the rest)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UnsafeDestination(f"the callback URL is not a valid URL: {error}") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if parts.username is not None or parts.password is not None:
        raise UnsafeDestination("the callback URL must not carry credentials (user:password@)")
    if parts.fragment:
        raise UnsafeDestination("the callback URL must not have a #fragment")
    if not host:
        raise UnsafeDestination("the callback URL has no host")
    if scheme == "http" and policy.allow_loopback_http and host == "127.0.0.1" and port is not None:
        return _target(url, parts, scheme, host, port)
    if scheme != "https":
        raise UnsafeDestination(f"the callback URL must use https://, not {parts.scheme or 'no'} scheme")
    literal = _ip_literal(host)
    if literal is not None:
        reason = address_refusal(literal)
        if reason:
            raise UnsafeDestination(f"callback host refused: {reason}")
    elif host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        raise UnsafeDestination(f"callback host {host!r} is a local name")
    elif not set(host) <= _HOST_CHARS or "." not in host or any(not label for label in host.split(".")):
        raise UnsafeDestination(f"callback host {host!r} is not a public DNS name (letters, digits, '-' and dots)")
    if not policy.host_allowed(host):
        raise UnsafeDestination(
            f"callback host {host!r} is not on this environment's allow-list: {', '.join(policy.allowed_hosts)}"
        )
    return _target(url, parts, scheme, host, port or 443)


def check_callback_url(url: str, policy: CallbackPolicy) -> str:
    """The URL as stored in the receipt, or BadRequest naming what was refused."""
    try:
        parse_target(url, policy)
    except UnsafeDestination as error:
        raise BadRequest(f"callback URL refused: {error}") from None
    return url


# socket.getaddrinfo's shape: (family, type, proto, canonname, sockaddr) tuples.
Resolver = Callable[..., Sequence[tuple[Any, ...]]]


def resolve_public(target: CallbackTarget, policy: CallbackPolicy, resolver: Resolver | None = None) -> str:
    """The address to connect to: the first one the host resolves to, once ALL of them are
    public. One private answer refuses the host: an attacker's name that answers a public and
    a private address must not get the private one on a retry.

    Raises UnsafeDestination (refused, do not retry) or OSError (resolution failed: retry).
    """
    if policy.allow_loopback_http and target.scheme == "http" and target.host == "127.0.0.1":
        return target.host
    resolve = resolver or socket.getaddrinfo
    answers = resolve(target.host, target.port, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    addresses = [str(info[4][0]) for info in answers]
    if not addresses:
        raise OSError(f"{target.host} resolved to no address")
    for address in addresses:
        reason = address_refusal(address)
        if reason:
            raise UnsafeDestination(f"{target.host} resolves to {address}: {reason}")
    return addresses[0]


# At submit the name is resolved once more to refuse an obviously internal host early; a
# resolver slower than this (or failing) leaves the verdict to delivery, which checks anyway.
SUBMIT_RESOLVE_SECONDS = 2.0
_submit_resolver = ThreadPoolExecutor(max_workers=2, thread_name_prefix="callback-dns")


def refusal_at_submit(
    url: str, policy: CallbackPolicy, resolver: Resolver | None = None, timeout: float = SUBMIT_RESOLVE_SECONDS
) -> str | None:
    """Why a callback URL (already past check_callback_url) is refused once its host name is
    resolved: a name that resolves to a private address today is refused with a 400 now, not a
    Failed delivery an hour later. None when it resolves to public addresses only, or when it
    does not resolve within `timeout` (delivery resolves and checks again)."""
    target = parse_target(url, policy)
    if _ip_literal(target.host) is not None:
        return None  # an address: judged by parse_target already
    try:
        future = _submit_resolver.submit(resolve_public, target, policy, resolver)
        future.result(timeout=timeout)
    except UnsafeDestination as error:
        return str(error)
    except (OSError, FutureTimeout):
        return None
    return None


def _ip_literal(host: str) -> str | None:
    """The host as an IP address string when it is one, including forms like 2130706433,
    0x7f.1 or 127.1 that inet_aton (and so some HTTP clients) read as IPv4."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def _target(url: str, parts: SplitResult, scheme: str, host: str, port: int) -> CallbackTarget:
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return CallbackTarget(url=url, scheme=scheme, host=host.lower(), port=port, path=path)
