#!/usr/bin/env python3
"""A loopback HTTP/1.1 server that plays a hostile credential endpoint, for
spec/credentials_limits_spec.lua. Prints its port on the first line, then answers every
request by its path:

  PUT /latest/api/token                    200 "token" (IMDSv2 works)
  GET /latest/meta-data/iam/security-credentials/   the role list: endless lines when
                                           --mode roles, a long line with roles-blanks,
                                           else "role"
  anything else                            per --mode:
    endless      200, no Content-Length, 'a' bytes for ever (closing delimits)
    announced    200 with Content-Length: 10737418240, then a few bytes and a stall
    xml          200, an STS answer whose <SessionToken> never ends
    json-string  200, a JSON object whose string value never ends
    error-endless  500 with an endless body
    roles        (the role credentials are valid JSON)
    roles-blanks the role list is one line of 1 MB: "a", blanks, "b"
Stops on SIGTERM.
"""
import signal
import socket
import socketserver
import sys
import time

MODE = "endless"
VALID = b'{"AccessKeyId":"AKID","SecretAccessKey":"secret-value","Token":"t","Expiration":"2099-01-01T00:00:00Z"}'


def read_request(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        b = sock.recv(65536)
        if not b:
            return None, None
        data += b
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        b = sock.recv(65536)
        if not b:
            break
        rest += b
    method, path = lines[0].split(b" ")[:2]
    return method.decode(), path.decode()


def forever(sock, block):
    while True:
        sock.sendall(block)


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        try:
            method, path = read_request(sock)
            if method is None:
                return
            if method == "PUT" and path == "/latest/api/token":
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\ntoken")
                return
            if path.startswith("/latest/meta-data/iam/security-credentials/"):
                if path.endswith("/"):
                    if MODE == "roles":
                        sock.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                        forever(sock, b"role-that-never-ends\n" * 3000)
                    if MODE == "roles-blanks":
                        body = b"a" + b" " * 1000000 + b"b\n"
                        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                                     % len(body) + body)
                        return
                    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nrole")
                    return
                if MODE == "roles":
                    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                                 % len(VALID) + VALID)
                    return
            ok = b"HTTP/1.1 200 OK\r\nConnection: close\r\n"
            if MODE == "endless":
                sock.sendall(ok + b"Content-Type: application/json\r\n\r\n")
                forever(sock, b"a" * 65536)
            if MODE == "announced":
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10737418240\r\n\r\n{\"a\":")
                time.sleep(30)
            if MODE == "xml":
                sock.sendall(ok + b"Content-Type: text/xml\r\n\r\n<AssumeRoleWithWebIdentityResponse><Credentials>"
                             b"<AccessKeyId>A</AccessKeyId><SessionToken>")
                forever(sock, b"x" * 65536)
            if MODE == "json-string":
                sock.sendall(ok + b"Content-Type: application/json\r\n\r\n{\"roleCredentials\":{\"accessKeyId\":\"")
                forever(sock, b"x" * 65536)
            if MODE == "error-endless":
                sock.sendall(b"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\n")
                forever(sock, b"e" * 65536)
        except OSError:
            pass


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global MODE
    if len(sys.argv) > 2 and sys.argv[1] == "--mode":
        MODE = sys.argv[2]
    srv = Server(("127.0.0.1", 0), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass


if __name__ == "__main__":
    main()
