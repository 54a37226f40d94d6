# Clients that stop reading: stuck.py PORT COUNT RCVBUF FIRST
# Opens COUNT connections to PORT one after another, each with a receive
# buffer of RCVBUF bytes (a small window keeps what waits in the kernel
# small); each reads FIRST bytes (0: none) and then nothing more.  Writes
# the file "ready" once all are open, then holds them for two minutes.
import socket, sys, time

port, count, rcvbuf, first = (int(a) for a in sys.argv[1:5])


def stuck():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    got = 0
    while got < first:
        got += len(s.recv(1 << 20))
    return s


held = [stuck() for i in range(count)]
open("ready", "w").close()
time.sleep(120)
