"""Who may talk to the preview server: Host names, loopback and LAN addresses, tokens.

The checks :mod:`.mjpeg` runs on every request (DNS-rebinding defence), kept apart
from the server itself.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterable

from ..errors import OutputError
from ..text import printable


def ip_address_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address ``host`` spells (``[::1]`` included), or None for a name."""
    try:
        return ipaddress.ip_address(host[1:-1] if host.startswith("[") and host.endswith("]") else host)
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    ip = ip_address_of(host)
    return host == "localhost" or (ip is not None and ip.is_loopback)


def is_unspecified(host: str) -> bool:
    ip = ip_address_of(host)
    return host == "" or (ip is not None and ip.is_unspecified)


def bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def split_host(value: str) -> tuple[str, int | None] | None:
    """``"Example.com:8080"`` -> ``("example.com", 8080)``; ``"[::1]"`` -> ``("[::1]", None)``; None if malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[: end + 1], value[end + 1 :]
    else:
        name, colon, port_text = value.partition(":")
        rest = colon + port_text
    if not name or not all(c.isascii() and (c.isalnum() or c in "-._[]:") for c in name):
        return None
    if not rest:
        return name, None
    digits = rest[1:]
    if rest[0] != ":" or not digits.isascii() or not digits.isdigit() or len(digits) > 5 or int(digits) > 65535:
        return None
    return name, int(digits)


def parse_allow_hosts(entries: Iterable[str]) -> frozenset[tuple[str, int | None]]:
    if isinstance(entries, str):
        entries = [entries]
    allowed = set()
    for entry in entries:
        parsed = ("*", None) if entry.strip() == "*" else split_host(entry)
        if parsed is None or "/" in entry:
            raise OutputError(
                f"allowed host must look like 'mybox.lan', 'mybox.lan:8080' or '*', got {printable(repr(entry), 80)}"
            )
        allowed.add(parsed)
    return frozenset(allowed)


def own_names(host: str, wildcard: bool) -> frozenset[str]:
    """Names a request may give in ``Host`` for this server (IP literals are judged separately)."""
    names = {"localhost", bracket(host).lower()}
    if not is_loopback(host):
        # The machine's own name, as a LAN user would type it: it cannot be an
        # attacker's domain.
        with contextlib.suppress(OSError):
            hostname = socket.gethostname().lower()
            names |= {hostname, f"{hostname}.local"}
    if wildcard:
        names.discard(bracket(host).lower())
    return frozenset(names)


def lan_address() -> str:
    """This machine's address on its default route, for a URL a LAN viewer can open; the host name if unknown."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # connect() on UDP only picks a route: nothing is sent
            return str(s.getsockname()[0])
    except OSError:
        return socket.gethostname()


def valid_token(token: str) -> bool:
    return 16 <= len(token) <= 200 and all(c.isascii() and (c.isalnum() or c in "-_.~") for c in token)


#: What clients cause: resets, timeouts, garbage. Anything else is our bug, worth a warning.
