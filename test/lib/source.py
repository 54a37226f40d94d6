# An upstream that sends zeros to each client until it goes: source.py
# PORT SNDBUF.  Its sockets have a send buffer of SNDBUF bytes, so what a
# client that stops reading leaves queued on this side stays small.
import socket, sys, threading

port, sndbuf = int(sys.argv[1]), int(sys.argv[2])
chunk = bytes(65536)


def feed(c):
    try:
        while True:
            c.sendall(chunk)
    except OSError:
        c.close()


ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)	# inherited
ls.bind(("127.0.0.1", port))
ls.listen(512)
while True:
    c, _ = ls.accept()
    threading.Thread(target=feed, args=(c,), daemon=True).start()
