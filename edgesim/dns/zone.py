"""The lab zone, answered authoritatively in DNS wire format (dnspython parses and builds the messages)."""

from __future__ import annotations

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

TTL = 60
# The SOA's timers (refresh, retry, expire, minimum): the minimum is the TTL of negative answers.
SOA_TIMERS = "3600 600 86400 60"


class Zone:
    """One zone: A records per label, the apex's SOA and NS (ns1), and nothing else."""

    def __init__(self, origin: str, records: dict[str, str]):
        self.origin = dns.name.from_text(origin)
        ns = dns.name.from_text("ns1", self.origin)
        self.soa = dns.rrset.from_text(
            self.origin, TTL, "IN", "SOA", f"{ns} hostmaster.{self.origin} 1 {SOA_TIMERS}"
        )
        self.apex = {
            dns.rdatatype.SOA: self.soa,
            dns.rdatatype.NS: dns.rrset.from_text(self.origin, TTL, "IN", "NS", str(ns)),
        }
        # name -> {type -> rrset}, prepared once so that answering a query builds nothing but the reply.
        self.names: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = {self.origin: self.apex}
        for label, address in records.items():
            name = dns.name.from_text(label, self.origin)
            self.names[name] = {dns.rdatatype.A: dns.rrset.from_text(name, TTL, "IN", "A", address)}

    def answer(self, wire: bytes) -> bytes | None:
        """The reply to one query in wire format; None for what is not a query (dropped, not answered)."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if query.flags & dns.flags.QR or len(query.question) != 1:
            return None
        reply = dns.message.make_response(query)
        question = query.question[0]
        if question.rdclass != dns.rdataclass.IN or not question.name.is_subdomain(self.origin):
            reply.set_rcode(dns.rcode.REFUSED)
            return reply.to_wire()
        reply.flags |= dns.flags.AA
        found = self.names.get(question.name)
        if found is None:
            reply.set_rcode(dns.rcode.NXDOMAIN)
            reply.authority.append(self.soa)
        elif question.rdtype == dns.rdatatype.ANY:
            reply.answer.extend(found.values())
        elif question.rdtype in found:
            reply.answer.append(found[question.rdtype])
        else:  # the name exists, not with this type: NODATA
            reply.authority.append(self.soa)
        return reply.to_wire()
