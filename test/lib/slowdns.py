# A tiny DNS responder on UDP 127.0.0.1:53 that answers late, for tests of a
# slow DNS server.  Usage: slowdns.py DELAY_SECONDS NAME=IPV4... LOGFILE
# A queries for a known NAME get its address, AAAA queries an empty
# answer, anything else NXDOMAIN; every reply waits DELAY_SECONDS, each on
# its own thread, so queries do not queue behind each other.
import socket, struct, sys, threading, time

delay, logf = float(sys.argv[1]), sys.argv[-1]
names = dict(a.split("=", 1) for a in sys.argv[2:-1])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 53))

def parse(q):
    pos, labels = 12, []
    while q[pos]:
        n = q[pos]
        labels.append(q[pos + 1:pos + 1 + n].decode().lower())
        pos += 1 + n
    qtype = struct.unpack(">H", q[pos + 1:pos + 3])[0]
    return ".".join(labels), qtype, pos + 5

def answer(q, peer):
    name, qtype, end = parse(q)
    with open(logf, "a") as f:
        f.write("query %s %d\n" % (name, qtype))
    time.sleep(delay)
    flags, an, body = 0x8180, 0, b""
    if name not in names:
        flags = 0x8183
    elif qtype == 1:
        an = 1
        body = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 5, 4) + \
            socket.inet_aton(names[name])
    hdr = q[:2] + struct.pack(">HHHHH", flags, 1, an, 0, 0)
    sock.sendto(hdr + q[12:end] + body, peer)

while True:
    q, peer = sock.recvfrom(512)
    threading.Thread(target=answer, args=(q, peer), daemon=True).start()
