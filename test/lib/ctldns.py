# A DNS responder on UDP 127.0.0.1:53 whose behaviour a test changes as it
# goes: ctldns.py MODEFILE LOGFILE.  MODEFILE holds one line, read for
# every query:  "answer NAME IPV4" (A queries for NAME get IPV4, AAAA an
# empty answer, other names NXDOMAIN), "drop" (no reply), "servfail", or
# "nxdomain".  Each query is logged with the mode that answered it.
import socket, struct, sys

modef, logf = sys.argv[1], sys.argv[2]
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

while True:
    q, peer = sock.recvfrom(512)
    name, qtype, end = parse(q)
    mode = open(modef).read().split()
    with open(logf, "a") as f:
        f.write("query %s %d %s\n" % (name, qtype, mode[0]))
    if mode[0] == "drop":
        continue
    flags, an, body = 0x8180, 0, b""
    if mode[0] == "servfail":
        flags = 0x8182
    elif mode[0] == "nxdomain" or name != mode[1]:
        flags = 0x8183
    elif qtype == 1:
        an = 1
        body = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 1, 4) + \
            socket.inet_aton(mode[2])
    hdr = q[:2] + struct.pack(">HHHHH", flags, 1, an, 0, 0)
    sock.sendto(hdr + q[12:end] + body, peer)
