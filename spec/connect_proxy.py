#!/usr/bin/env python3
"""A minimal HTTP CONNECT proxy on loopback for spec/ngx_spec.lua: tunnels CONNECT
requests (optionally requiring Proxy-Authorization), refuses anything else with 405.
Prints its port on the first line, then logs "CONNECT host:port auth" per tunnel to the
file named by the first argument.

usage: connect_proxy.py LOGFILE [REQUIRED_PROXY_AUTHORIZATION]
"""
import socket
import sys
import threading


def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def handle(c, log, need_auth):
    head = b""
    while b"\r\n\r\n" not in head:
        d = c.recv(4096)
        if not d:
            c.close()
            return
        head += d
    lines = head.split(b"\r\n")
    method, target, _ = lines[0].decode().split(" ", 2)
    auth = ""
    for l in lines[1:]:
        if l.lower().startswith(b"proxy-authorization:"):
            auth = l.split(b":", 1)[1].strip().decode()
    with open(log, "a") as f:
        f.write("%s %s %s\n" % (method, target, auth or "-"))
    if method != "CONNECT":
        c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        c.close()
        return
    if need_auth and auth != need_auth:
        c.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
        c.close()
        return
    host, port = target.rsplit(":", 1)
    try:
        u = socket.create_connection((host.strip("[]"), int(port)))
    except OSError:
        c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
        c.close()
        return
    c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()


def main():
    log = sys.argv[1]
    need_auth = sys.argv[2] if len(sys.argv) > 2 else None
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    print(s.getsockname()[1], flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c, log, need_auth), daemon=True).start()


if __name__ == "__main__":
    main()
