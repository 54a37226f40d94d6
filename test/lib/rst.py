# Hostile peers that end with a TCP reset (SO_LINGER 0), which socat cannot
# do on demand.  Usage: rst.py server PORT | client PORT | reset-client PORT
import socket, struct, sys, time

LINGER0 = struct.pack("ii", 1, 0)
mode, port = sys.argv[1], int(sys.argv[2])

if mode == "server":
    # Accept one connection, send 5 bytes, then reset it.
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(1)
    c, _ = s.accept()
    c.sendall(b"hello")
    time.sleep(0.3)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
    c.close()
    time.sleep(5)
elif mode == "client":
    # Read until the connection ends; report how it ended.
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    got = b""
    try:
        while True:
            d = c.recv(4096)
            if not d:
                print("got %d bytes then eof" % len(got))
                break
            got += d
    except ConnectionResetError:
        print("got %d bytes then reset" % len(got))
elif mode == "reset-client":
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    c.sendall(b"hello\n")
    time.sleep(0.3)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
    c.close()
