"""A real DNS server on 127.0.0.1 (dnslib), answering from a dict of records.

    with FakeDns({"example.org": [("TXT", "v=spf1 -all"), ("MX", "10 mx.example.org")]}) as dns:
        dns.nameserver       # "127.0.0.1:PORT", for doctor --nameserver
        dns.set("_dmarc.example.org", "TXT", "v=DMARC1; p=none")
        dns.fail("broken.example.org")   # SERVFAIL for every question about it

UDP and TCP on the same port, as a real nameserver. A name it does not know is
NXDOMAIN; a known name without a record of the asked type is an empty answer; a CNAME
is followed within the zone, as a recursive resolver would. TXT values longer than
255 bytes go out as several strings, as a zone file splits them. Names outside the
records never reach anything else: nothing leaves the machine.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from dnslib import AAAA, CNAME, MX, QTYPE, RCODE, RR, TXT, A, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from tests.fakes import LocalServer

Records = dict[str, list[tuple[str, str]]]


class _Resolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, fake: FakeDns) -> None:
        self.fake = fake

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        kind = QTYPE[request.q.qtype]
        with self.fake.lock:
            self.fake.questions.append((name, kind))
            if name in self.fake.failing:
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            for _ in range(8):  # follow CNAMEs within the zone
                records = self.fake.records.get(name)
                if records is None:
                    if not reply.rr:
                        reply.header.rcode = RCODE.NXDOMAIN
                    return reply
                aliases = [value for rtype, value in records if rtype == "CNAME"]
                if aliases and kind != "CNAME":
                    reply.add_answer(_record(name, "CNAME", aliases[0]))
                    name = aliases[0].rstrip(".").lower()
                    continue
                for rtype, value in records:
                    if rtype == kind:
                        reply.add_answer(_record(name, rtype, value))
                return reply
        return reply


def _record(name: str, kind: str, value: str) -> RR:
    data: Any
    if kind == "TXT":
        raw = value.encode()
        data = TXT([raw[start : start + 255] for start in range(0, len(raw), 255)] or [b""])
    elif kind == "A":
        data = A(value)
    elif kind == "AAAA":
        data = AAAA(value)
    elif kind == "CNAME":
        data = CNAME(value.rstrip(".") + ".")
    elif kind == "MX":
        preference, _, host = value.partition(" ")
        data = MX(host.rstrip(".") + ".", int(preference))
    else:
        raise ValueError(f"record type {kind} is not served by FakeDns")
    return RR(name + ".", getattr(QTYPE, kind), rdata=data, ttl=60)


class FakeDns(LocalServer):
    def __init__(self, records: Records | None = None) -> None:
        self.records: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for name, entries in (records or {}).items():
            self.records[name.lower()] = list(entries)
        self.failing: set[str] = set()
        self.questions: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self._servers: list[DNSServer] = []
        self.port = 0

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set(self, name: str, kind: str, *values: str) -> None:
        """Replace ``name``'s records of ``kind`` with ``values`` (none: remove them)."""
        with self.lock:
            name = name.lower()
            kept = [entry for entry in self.records.get(name, []) if entry[0] != kind]
            self.records[name] = kept + [(kind, value) for value in values]

    def fail(self, name: str) -> None:
        with self.lock:
            self.failing.add(name.lower())

    def start(self) -> FakeDns:
        quiet = DNSLogger("-recv,-send,-request,-reply,-truncated,-error,-data", prefix=False)
        resolver = _Resolver(self)
        # UDP and TCP on one free port: find one both can bind.
        for _ in range(20):
            udp = DNSServer(resolver, address="127.0.0.1", port=0, logger=quiet)
            self.port = udp.server.server_address[1]
            try:
                tcp = DNSServer(
                    resolver, address="127.0.0.1", port=self.port, tcp=True, logger=quiet
                )
            except OSError:
                udp.server.server_close()
                continue
            break
        else:
            raise OSError("no free port for both UDP and TCP on 127.0.0.1")
        self._servers = [udp, tcp]
        for server in self._servers:
            server.start_thread()
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()
        self._servers = []
