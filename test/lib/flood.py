# Connect from many source addresses, one connection each, as fast as a
# loop goes: flood.py PORT FIRST COUNT [--keep]
# Sources are 127.A.B.C counting from the FIRST-th address of 127.64.0.0.
# Each connection reads until EOF or a reset.  Prints "ok N refused M":
# N got at least one byte, M were reset or closed with nothing.
import socket, sys

port, first, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ok = refused = 0
for i in range(first, first + count):
    n = (64 << 16) + i
    src = "127.%d.%d.%d" % ((n >> 16) & 255, (n >> 8) & 255, n & 255)
    s = socket.socket()
    s.settimeout(5)
    try:
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        got = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            got += d
        ok += 1 if got else 0
        refused += 0 if got else 1
    except (ConnectionResetError, ConnectionRefusedError):
        refused += 1
    finally:
        s.close()
print("ok %d refused %d" % (ok, refused))
