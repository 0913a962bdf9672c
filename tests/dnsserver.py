"""A DNS server on loopback for tests (dnslib), answering from records the test sets.

A name with no records is NXDOMAIN; a name with records of other types answers
NOERROR with nothing (NODATA), as real servers do; names in ``servfail`` fail."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from dnslib import AAAA, MX, QTYPE, RCODE, RR, TXT, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class Zone(BaseResolver):
    def __init__(self) -> None:
        self.records: dict[str, list[RR]] = {}
        self.servfail: set[str] = set()
        self.queries: list[tuple[str, str]] = []

    def _add(self, name: str, rtype: int, rdata: object) -> Zone:
        name = name.lower().rstrip(".") + "."
        self.records.setdefault(name, []).append(RR(name, rtype, rdata=rdata, ttl=60))
        return self

    def txt(self, name: str, text: str) -> Zone:
        chunks = [text[i : i + 255] for i in range(0, len(text), 255)] or [""]
        return self._add(name, QTYPE.TXT, TXT(chunks))

    def mx(self, name: str, host: str, preference: int = 10) -> Zone:
        return self._add(name, QTYPE.MX, MX(host, preference))

    def a(self, name: str, address: str) -> Zone:
        return self._add(
            name, QTYPE.AAAA if ":" in address else QTYPE.A, AAAA(address) if ":" in address else A(address)
        )

    def resolve(self, request, handler):  # noqa: ANN001, ANN201  (dnslib's interface)
        reply = request.reply()
        name = str(request.q.qname).lower()
        self.queries.append((name, QTYPE[request.q.qtype]))
        if name.rstrip(".") in self.servfail:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        found = self.records.get(name)
        if found is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for rr in found:
            if rr.rtype == request.q.qtype:
                reply.add_answer(rr)
        return reply


@contextmanager
def dns_server(zone: Zone) -> Iterator[str]:
    """Serve ``zone`` over UDP and TCP on one loopback port; yield "127.0.0.1:PORT"."""
    quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
    udp = DNSServer(zone, address="127.0.0.1", port=0, logger=quiet)
    port = udp.server.server_address[1]
    tcp = DNSServer(zone, address="127.0.0.1", port=port, tcp=True, logger=quiet)
    servers = [udp, tcp]
    threads = [threading.Thread(target=s.server.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        for s in servers:
            s.server.shutdown()
            s.server.server_close()
