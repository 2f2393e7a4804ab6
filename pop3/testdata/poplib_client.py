"""Drives POP3 Playground with Python's poplib; prints what it saw as JSON.

usage: poplib_client.py HOST PORT CAFILE MODE   (MODE: plain, stls, apop)
"""
import json
import poplib
import ssl
import sys

host, port, cafile, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
out = {}
p = poplib.POP3(host, port, timeout=10)
out["welcome"] = p.getwelcome().decode()
if mode == "stls":
    p.stls(context=ssl.create_default_context(cafile=cafile))
    out["tls"] = p.sock.version()
if mode == "apop":
    out["login"] = p.apop("mrose", "tanstaaf").decode()
else:
    p.user("guest")
    out["login"] = p.pass_("visitor").decode()
out["capa"] = sorted(p.capa().keys())
out["stat"] = list(p.stat())
resp, listing, _ = p.list()
out["list"] = [l.decode() for l in listing]
if mode != "apop":
    resp, lines, octets = p.retr(3)
    out["retr3_octets"] = octets
    out["retr3_received"] = sum(1 for l in lines if l.startswith(b"Received:"))
    resp, lines, octets = p.retr(4)
    out["retr4_lines"] = [l.decode() for l in lines]
    resp, lines, _ = p.top(5, 0)
    out["top5_last"] = lines[-1].decode()
    resp, lines, octets = p.retr(6)
    out["retr6_octets"] = octets
out["uidl"] = [l.decode() for l in p.uidl()[1]]
p.dele(1)
out["stat_after_dele"] = list(p.stat())
try:
    p.retr(1)
except poplib.error_proto as e:
    out["retr_deleted"] = str(e)
p.rset()
out["stat_after_rset"] = list(p.stat())
out["quit"] = p.quit().decode()
print(json.dumps(out))
