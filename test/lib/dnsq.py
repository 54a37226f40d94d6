# The DNS wire format the test DNS servers (slowdns.py, ctldns.py) share:
# the question of a query, and a reply to it.
import socket, struct

NOERROR, SERVFAIL, NXDOMAIN = 0, 2, 3


def parse(q):
    """The question's name (lower case), type, and where it ends."""
    pos, labels = 12, []
    while q[pos]:
        n = q[pos]
        labels.append(q[pos + 1:pos + 1 + n].decode().lower())
        pos += 1 + n
    qtype = struct.unpack(">H", q[pos + 1:pos + 3])[0]
    return ".".join(labels), qtype, pos + 5


def reply(q, end, rcode, ipv4=None, ttl=5):
    """A reply to q (question up to end): rcode, and an A record for ipv4
    if given."""
    an, body = 0, b""
    if ipv4 is not None:
        an = 1
        body = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, ttl, 4) + \
            socket.inet_aton(ipv4)
    hdr = q[:2] + struct.pack(">HHHHH", 0x8180 | rcode, 1, an, 0, 0)
    return hdr + q[12:end] + body
