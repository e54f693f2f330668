"""Drive Roost's POP3 server with Python's poplib, a client nobody here wrote.

Usage: poplib_client.py MODE HOST PORT USER PASSWORD [CAFILE]
MODE is plain, stls or ssl. Prints one JSON object with what the client
saw; the Go test compares it with the store.
"""
import json
import poplib
import ssl
import sys

mode, host, port, user, password = sys.argv[1:6]
cafile = sys.argv[6] if len(sys.argv) > 6 else None
ctx = None
if cafile:
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False

if mode == "ssl":
    p = poplib.POP3_SSL(host, int(port), timeout=10, context=ctx)
else:
    p = poplib.POP3(host, int(port), timeout=10)
out = {"welcome": p.getwelcome().decode()}
caps = p.capa()
out["caps_before"] = sorted(caps)
if mode == "stls":
    p.stls(context=ctx)
    caps = p.capa()
out["caps"] = sorted(caps)
p.user(user)
p.pass_(password)
count, size = p.stat()
out["stat"] = [count, size]
_, listing, _ = p.list()
out["list"] = [l.decode() for l in listing]
_, uidls, _ = p.uidl()
out["uidl"] = [l.decode() for l in uidls]
out["messages"] = []
for i in range(1, count + 1):
    _, lines, octets = p.retr(i)
    _, top, _ = p.top(i, 0)
    out["messages"].append({
        "octets": octets,
        "text": "".join(l.decode("latin-1") + "\r\n" for l in lines),
        "top_lines": len(top),
    })
if count:
    p.dele(1)
out["quit"] = p.quit().decode()
print(json.dumps(out))
