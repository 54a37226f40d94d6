# A client that sends PROXY headers as a balancer would, or as one must
# not: pp.py PORT KIND [DATA] [--bytewise] [--from ADDR] [--stall] [--times N]
#   KIND: v2 (TCP4 203.0.113.7:40000 -> 198.51.100.2:25), v2-6 (TCP6),
#         v2-local, v1, v1-lf (a bare LF), garbage, v2-huge (a length past
#         any cap, then nothing), v2-half (half a header, then silence)
# Sends the header (one byte at a time with --bytewise), then DATA, then
# (unless --stall: the sending side stays open) a FIN, then reads until the
# connection ends and prints "eof N" or "reset N" (bytes received).
# --times N: that N times, one connection after another, a line each.
import socket, struct, sys, time

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
args = sys.argv[1:]
port, kind = int(args[0]), args[1]
data = args[2].encode() if len(args) > 2 and not args[2].startswith("--") \
    else b""
src = args[args.index("--from") + 1] if "--from" in args else "127.0.0.1"
times = int(args[args.index("--times") + 1]) if "--times" in args else 1

v4 = socket.inet_aton
hdr = {
    "v2": SIG + b"\x21\x11" + struct.pack(">H", 12) + v4("203.0.113.7") +
    v4("198.51.100.2") + struct.pack(">HH", 40000, 25),
    "v2-6": SIG + b"\x21\x21" + struct.pack(">H", 36) +
    socket.inet_pton(socket.AF_INET6, "2001:db8::7") +
    socket.inet_pton(socket.AF_INET6, "2001:db8::1") +
    struct.pack(">HH", 40000, 25),
    "v2-local": SIG + b"\x20\x00" + struct.pack(">H", 0),
    "v1": b"PROXY TCP4 203.0.113.8 198.51.100.2 40001 25\r\n",
    "v1-lf": b"PROXY TCP4 203.0.113.8 198.51.100.2 40001 25\n",
    "garbage": b"GET / HTTP/1.0\r\n\r\n",
    "v2-huge": SIG + b"\x21\x11\xff\xff",
}


def one():
    """One connection; what it ended with: "eof N", "reset N", ..."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=15,
                                     source_address=(src, 0))
    except ConnectionResetError:
        return "reset 0"	# refused as it connected (edge accepts, resets)
    if kind == "v2-half":
        s.sendall(hdr["v2"][:10])
        time.sleep(30)
        sys.exit(0)
    h = hdr[kind]
    try:
        if "--bytewise" in args:
            for i in range(len(h)):
                s.sendall(h[i:i + 1])
                time.sleep(0.02)
        else:
            s.sendall(h)
        if data:
            s.sendall(data)
    except (ConnectionResetError, BrokenPipeError):
        return "reset 0"	# refused while still sending
    if "--stall" not in args:
        try:
            s.shutdown(socket.SHUT_WR)	# done sending: the upstream sees EOF
        except OSError:
            pass
    got = 0
    try:
        while True:
            d = s.recv(4096)
            if not d:
                return "eof %d" % got
            got += len(d)
    except ConnectionResetError:
        return "reset %d" % got
    except socket.timeout:
        return "timeout %d" % got
    finally:
        s.close()


for _ in range(times):
    print(one())
