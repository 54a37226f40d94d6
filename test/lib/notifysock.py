# A stand-in for systemd's notify socket: notifysock.py PATH OUT
# Binds a datagram socket at PATH and appends each datagram it receives
# to OUT, one line per datagram with its newlines written as "|".
import os, socket, sys

path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
while True:
    d = s.recv(65536).decode()
    with open(out, "a") as f:
        f.write(d.strip("\n").replace("\n", "|") + "\n")
