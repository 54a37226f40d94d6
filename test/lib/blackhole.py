# An upstream whose SYNs go unanswered: a listener with a backlog of 0 whose
# one queue place is taken by a connection nobody accepts.  Connects to it
# hang until the connector's own timeout.  Usage: blackhole.py PORT
import socket, sys, time

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(0)
filler = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
time.sleep(60)
