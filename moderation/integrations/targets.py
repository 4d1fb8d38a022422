"""Where webhooks may be sent: hosts that resolve to public addresses only.

An admin types the endpoint's URL, and the workers then POST to it from inside the deployment, where
loopback, private networks, link-local addresses (the cloud metadata service at 169.254.169.254) and the
like reach services no outsider should. The host is resolved and every address it gives is checked when
the endpoint is added, and again before each delivery, which then connects to the address that was
checked (``pinned_session``), so a name that re-resolves to an internal address between the check and
the connection (DNS rebinding) is not followed. ``WEBHOOK_ALLOW_PRIVATE_TARGETS`` lifts the address
rule for on-premises receivers (and the tests' local receivers); the address is still pinned.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from moderation.errors import ModerationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookTargetRefused(ModerationError):
    """The URL's host does not resolve, or resolves to an address webhooks may not reach."""


# IPv6 prefixes that carry an IPv4 address in their last 32 bits and reach it through a translator: NAT64
# (RFC 6052's well-known prefix and RFC 8215's local-use one) and the deprecated IPv4-compatible ::/96. Python
# calls them global, but on a NAT64 network http://[64:ff9b::a9fe:a9fe]/ is the metadata service.
_EMBEDS_IPV4 = tuple(ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96"))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address hands traffic to (mapped, 6to4, Teredo client, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in net for net in _EMBEDS_IPV4):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _kind(ip: IPAddress) -> str | None:
    """What makes ``ip`` internal ("a loopback address"), or None for a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address) and not (ip.is_loopback or ip.is_unspecified):
        embedded = _embedded_ipv4(ip)
        inner = _kind(embedded) if embedded is not None else None
        if inner is not None:
            return f"{inner} reached through IPv6 translation ({embedded})"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata services live there)"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private-network address"
    if not ip.is_global:  # shared address space (100.64/10: some clouds' metadata), reserved, documentation
        return "a non-public address"
    return None


def webhook_target_addresses(url: str, *, unresolved_ok: bool = False) -> list[str]:
    """Resolve the URL's host and check each address it gives; returns them (the first is used).

    Raises ``WebhookTargetRefused`` with a message an admin can act on when the host does not resolve
    (``unresolved_ok``: an empty list instead; an endpoint may be added before its DNS exists, and each
    delivery checks again) or any of its addresses is loopback, link-local, private or otherwise not public (unless
    ``WEBHOOK_ALLOW_PRIVATE_TARGETS``)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host:
        raise WebhookTargetRefused(f"{url!r} names no host.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        if unresolved_ok:
            return []
        raise WebhookTargetRefused(f"The host {host} does not resolve ({exc}): check the URL.") from exc
    addresses = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
    if not addresses:
        raise WebhookTargetRefused(f"The host {host} does not resolve: check the URL.")
    if not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        for address in addresses:
            kind = _kind(ipaddress.ip_address(address))
            if kind is not None:
                shown = host if host == address else f"{host} ({address})"
                raise WebhookTargetRefused(
                    f"Webhooks may not be sent to {shown}: it is {kind}, inside the deployment. "
                    "Use the receiver's public address; on a private network an operator can allow such "
                    "targets with WEBHOOK_ALLOW_PRIVATE_TARGETS=1."
                )
    return addresses


class _Deadline:
    """Shuts an attempt's sockets when its time is up. requests' timeout bounds each read, not the whole
    answer: a receiver sending a byte every few seconds held the worker for as long as it liked."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.expired = seconds, False
        self.sockets: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def _expire(self) -> None:
        self.expired = True
        for sock in list(self.sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the read blocked on it (close() would not)

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def _recording(pool: type[HTTPConnectionPool], sockets: list[socket.socket]) -> type[HTTPConnectionPool]:
    """``pool`` whose connections put each socket they open into ``sockets`` (for the deadline)."""

    class Connection(pool.ConnectionCls):  # type: ignore[name-defined,misc]
        def _new_conn(self) -> socket.socket:
            sock: socket.socket = super()._new_conn()
            sockets.append(sock)
            return sock

    return type(pool.__name__, (pool,), {"ConnectionCls": Connection})


class _PinnedAdapter(HTTPAdapter):
    """Connects to one checked address whatever the URL's host resolves to now; TLS still checks the
    certificate against (and sends SNI for) the URL's host name. Its sockets are the ``deadline``'s."""

    def __init__(self, address: str, hostname: str, deadline: _Deadline) -> None:
        self._address, self._hostname, self._deadline = address, hostname, deadline
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        sockets = self._deadline.sockets
        self.poolmanager.pool_classes_by_scheme = {
            "http": _recording(HTTPConnectionPool, sockets),
            "https": _recording(HTTPSConnectionPool, sockets),
        }

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        host_params["host"] = self._address
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = self._hostname
            pool_kwargs["assert_hostname"] = self._hostname
        return host_params, pool_kwargs


def pinned_post(url: str, *, address: str, data: bytes, headers: dict[str, str], timeout: float) -> requests.Response:
    """POST ``url`` over a connection to ``address`` (from ``webhook_target_addresses``), no redirects, the
    whole exchange within ``timeout`` seconds.

    Only the status counts: the response body is never read (the response comes back closed). Read, an
    endless or huge body held the worker until it ran out of memory."""
    parts = urlsplit(url)
    hostname = parts.hostname or ""
    host_header = f"[{hostname}]" if ":" in hostname else hostname
    if parts.port:
        host_header += f":{parts.port}"
    with requests.Session() as session, _Deadline(timeout) as deadline:
        session.mount(f"{parts.scheme}://", _PinnedAdapter(address, hostname, deadline))
        try:
            response = session.post(
                url,
                data=data,
                headers={**headers, "Host": host_header},
                timeout=timeout,
                allow_redirects=False,
                stream=True,
                # No proxy from the environment (it would resolve the name itself); REQUESTS_CA_BUNDLE still counts.
                proxies={"http": None, "https": None, "all": None},  # type: ignore[dict-item]
            )
        except requests.RequestException as exc:
            if deadline.expired:
                raise requests.Timeout(f"The receiver did not answer within {timeout:g} s.") from exc
            raise
        response.close()
        return response
