# A tiny DNS responder on UDP 127.0.0.1:53 that answers late, for tests of a
# slow DNS server.  Usage: slowdns.py DELAY_SECONDS NAME=IPV4... LOGFILE
# A queries for a known NAME get its address, AAAA queries an empty
# answer, anything else NXDOMAIN; every reply waits DELAY_SECONDS, each on
# its own thread, so queries do not queue behind each other.
import socket, sys, threading, time

from dnsq import NOERROR, NXDOMAIN, parse, reply

delay, logf = float(sys.argv[1]), sys.argv[-1]
names = dict(a.split("=", 1) for a in sys.argv[2:-1])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 53))

def answer(q, peer):
    name, qtype, end = parse(q)
    with open(logf, "a") as f:
        f.write("query %s %d\n" % (name, qtype))
    time.sleep(delay)
    if name not in names:
        out = reply(q, end, NXDOMAIN)
    else:
        out = reply(q, end, NOERROR, names[name] if qtype == 1 else None)
    sock.sendto(out, peer)

while True:
    q, peer = sock.recvfrom(512)
    threading.Thread(target=answer, args=(q, peer), daemon=True).start()
