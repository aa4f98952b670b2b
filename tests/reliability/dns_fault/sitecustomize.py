"""Loaded by the service under test (on its PYTHONPATH): names under `.invalid` fail to
resolve at once, as a broken or unreachable resolver would make them, without sending a
query anywhere (a test must not reach the machine's real resolver). Each failure is
noted in the file named by RELIABILITY_DNS_HITS, so the test knows this stand-in (and not
a real resolver) answered."""

from __future__ import annotations

import os
import socket
from typing import Any

_real_getaddrinfo = socket.getaddrinfo


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else str(host or "")
    if name.rstrip(".").lower().endswith(".invalid"):
        hits = os.environ.get("RELIABILITY_DNS_HITS")
        if hits:
            with open(hits, "a", encoding="utf-8") as out:
                out.write(name + "\n")
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _getaddrinfo
