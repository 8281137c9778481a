#!/usr/bin/env python3
"""A deliberately broken HTTP/1.1 server on loopback, for the specs that attack the client
(spec/hostile_spec.lua through spec/helper.lua `M.hostile`).

Prints its port on the first line of standard output, then serves every connection the
same way: reads one request (head + Content-Length body), then answers

  --head FILE      these bytes first, verbatim (a status line and headers, or only part
                   of them: the connection is then closed, see --tail)
  --echo STATUS    instead of --head: a JSON error answer whose message is the whole
                   request head the client sent (as services that echo a canonical
                   request do), followed by --message TEXT when given
  --echo-body      with --echo: the request body too, after the head
  --echo-xml       with --echo: the message in an STS-style XML error, not JSON
  --tail MODE      what follows: close (default: close the connection), endless (filler
                   bytes for ever), endless-chunked (chunked filler for ever),
                   trickle:MS (one filler byte every MS milliseconds, for ever)

Filler bytes are 'a'. Stops on SIGTERM or SIGINT.
"""
import argparse
import json
import signal
import socket
import socketserver
import sys
import time


def read_request(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        b = sock.recv(65536)
        if not b:
            return None, None
        data += b
    head, rest = data.split(b"\r\n\r\n", 1)
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        if name.strip().lower() == b"transfer-encoding":
            chunked = True
    if chunked:
        while not rest.endswith(b"0\r\n\r\n"):
            b = sock.recv(65536)
            if not b:
                break
            rest += b
    else:
        while len(rest) < length:
            b = sock.recv(65536)
            if not b:
                break
            rest += b
    return head, rest


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        opts = self.server.opts
        sock = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            head, body = read_request(sock)
            if head is None:
                return
            if opts.echo:
                msg = head.decode("latin-1")
                if opts.echo_body:
                    msg += "\r\n\r\n" + body.decode("latin-1")
                if opts.message:
                    msg += " " + opts.message
                body = json.dumps({"message": msg}).encode()
                if opts.echo_xml:
                    esc = msg.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                    body = ("<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>"
                            "<Message>%s</Message></Error></ErrorResponse>" % esc).encode("latin-1")
                out = (
                    "HTTP/1.1 %d Forbidden\r\nContent-Type: application/json\r\n"
                    "x-amzn-ErrorType: InvalidSignatureException:http://internal.amazon.com/coral/com.amazon.coral.service/\r\n"
                    "x-amzn-RequestId: hostile-1\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                    % (opts.echo, len(body))
                ).encode() + body
                sock.sendall(out)
                return
            sock.sendall(self.server.head)
            tail = opts.tail
            if tail == "close":
                return
            if tail == "endless":
                block = b"a" * 65536
                while True:
                    sock.sendall(block)
            if tail == "endless-chunked":
                block = b"a" * 65536
                frame = b"%x\r\n" % len(block) + block + b"\r\n"
                while True:
                    sock.sendall(frame)
            if tail.startswith("trickle:"):
                pause = int(tail.split(":", 1)[1]) / 1000.0
                while True:
                    sock.sendall(b"a")
                    time.sleep(pause)
        except OSError:
            pass


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--head")
    ap.add_argument("--echo", type=int)
    ap.add_argument("--echo-body", action="store_true")
    ap.add_argument("--echo-xml", action="store_true")
    ap.add_argument("--message")
    ap.add_argument("--tail", default="close")
    opts = ap.parse_args()
    srv = Server(("127.0.0.1", 0), Handler)
    srv.opts = opts
    srv.head = b""
    if opts.head:
        with open(opts.head, "rb") as f:
            srv.head = f.read()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass


if __name__ == "__main__":
    main()
