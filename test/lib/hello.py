# Build a TLS ClientHello and send it to edge in awkward ways, then read the
# reply.  Usage:
#   hello.py write FILE [--sni NAME] [--pad N] [--records N] [--ech]
#                       [--alpn P1,P2 | --alpn-hex HEX]
#   (--alpn-hex: the ALPN extension's body as hex, malformed or not)
#   hello.py send PORT FILE [--bytewise]     send FILE, print what comes back
# The hello is syntactically valid TLS 1.3 (RFC 8446 4.1.2) with a padding
# extension (RFC 7685) to make it as large as a post-quantum one.
import os, socket, struct, sys, time

def u16(n):
    return struct.pack(">H", n)

def ext(t, body):
    return u16(t) + u16(len(body)) + body

def hello(sni, pad, records, alpn=None, ech=False):
    exts = b""
    if sni is not None:
        name = sni.encode()
        entry = b"\x00" + u16(len(name)) + name
        exts += ext(0, u16(len(entry)) + entry)
    if alpn is not None:
        exts += ext(16, alpn)
    if ech:
        exts += ext(0xfe0d, b"\x00\x00\x01\x00\x01\x42")
    exts += ext(43, b"\x02\x03\x04")                 # supported_versions
    exts += ext(10, b"\x00\x02\x00\x1d")              # supported_groups
    if pad:
        exts += ext(21, b"\x00" * pad)
    body = b"\x03\x03" + os.urandom(32) + b"\x20" + os.urandom(32)
    body += u16(2) + b"\x13\x01" + b"\x01\x00" + u16(len(exts)) + exts
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    per = -(-len(hs) // records)
    out = b""
    for i in range(0, len(hs), per):
        chunk = hs[i:i + per]
        out += b"\x16\x03\x01" + u16(len(chunk)) + chunk
    return out

args = sys.argv[1:]
def opt(name, default):
    if name in args:
        return args[args.index(name) + 1]
    return default

if args[0] == "write":
    alpn = None
    if "--alpn" in args:
        names = b"".join(bytes([len(p)]) + p
                         for p in opt("--alpn", "").encode().split(b","))
        alpn = u16(len(names)) + names
    elif "--alpn-hex" in args:
        alpn = bytes.fromhex(opt("--alpn-hex", ""))
    data = hello(opt("--sni", None), int(opt("--pad", "0")),
                 int(opt("--records", "1")), alpn, "--ech" in args)
    open(args[1], "wb").write(data)
elif args[0] == "send":
    data = open(args[2], "rb").read()
    c = socket.create_connection(("127.0.0.1", int(args[1])), timeout=10)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if "--bytewise" in args:
        for i in range(len(data)):
            c.send(data[i:i + 1])
            time.sleep(0.002)
    else:
        c.sendall(data)
    c.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        d = c.recv(65536)
        if not d:
            break
        got += d
    sys.stdout.write(got.decode(errors="replace"))
