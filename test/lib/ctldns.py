# A DNS responder on UDP 127.0.0.1:53 whose behaviour a test changes as it
# goes: ctldns.py MODEFILE LOGFILE.  MODEFILE holds one line, read for
# every query:  "answer NAME IPV4" (A queries for NAME get IPV4, AAAA an
# empty answer, other names NXDOMAIN), "drop" (no reply), "servfail", or
# "nxdomain".  Each query is logged with the mode that answered it.
import socket, sys

from dnsq import NOERROR, NXDOMAIN, SERVFAIL, parse, reply

modef, logf = sys.argv[1], sys.argv[2]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 53))

while True:
    q, peer = sock.recvfrom(512)
    name, qtype, end = parse(q)
    mode = open(modef).read().split()
    with open(logf, "a") as f:
        f.write("query %s %d %s\n" % (name, qtype, mode[0]))
    if mode[0] == "drop":
        continue
    if mode[0] == "servfail":
        out = reply(q, end, SERVFAIL)
    elif mode[0] == "nxdomain" or name != mode[1]:
        out = reply(q, end, NXDOMAIN)
    else:
        out = reply(q, end, NOERROR, mode[2] if qtype == 1 else None, ttl=1)
    sock.sendto(out, peer)
