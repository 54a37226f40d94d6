# A client that comes back every few milliseconds: pinger.py PORT STOPFILE
# Until STOPFILE exists: connect, send "ping N", read the echo back, close;
# then wait 5 ms.  Prints "ok N failed M" and one line per failure (what
# happened to which attempt), so a refused or reset connection shows.
import os, socket, sys, time

port, stop = int(sys.argv[1]), sys.argv[2]
ok, failed, n = 0, [], 0
while not os.path.exists(stop):
    n += 1
    msg = b"ping %d\n" % n
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            d = s.recv(4096)
            if not d:
                break
            got += d
        if got == msg:
            ok += 1
        else:
            failed.append("%d: got %r" % (n, got))
    except OSError as e:
        failed.append("%d: %s" % (n, e))
    finally:
        s.close()
    time.sleep(0.005)
print("ok %d failed %d" % (ok, len(failed)))
for f in failed:
    print(f)
