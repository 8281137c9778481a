#!/usr/bin/env python3
"""Drives InvokeModelWithBidirectionalStream against the emulator for
spec/emulator_server_spec.lua: signs the opening request with botocore (payload hash
STREAMING-AWS4-HMAC-SHA256-EVENTS), opens it over a minimal HTTP/2 client of its own
(cleartext prior knowledge; no h2 package needed), and writes chain-signed frames
(reference section 11) one at a time, waiting for each answer before sending the next
input: the answers prove the stream is full duplex.

usage: emulator_bidi.py URL MODEL AKID SECRET [--token T] [--count N] [--bad-frame K]
Prints one line per output message: "<message-type> <event-or-error-type> <payload>",
then "status <200|400|...|other>", "reset <RST_STREAM code|goaway|->" and
"duplex yes|no".
"""
import argparse
import base64
import datetime
import hashlib
import hmac
import json
import os
import select
import socket
import struct
import sys
import time
import zlib

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def header(name, htype, value):
    n = name.encode()
    out = bytes([len(n)]) + n + bytes([htype])
    if htype == 8:
        out += struct.pack(">q", value)
    elif htype in (6, 7):
        v = value if isinstance(value, bytes) else value.encode()
        out += struct.pack(">H", len(v)) + v
    return out


def message(headers, payload):
    total = 16 + len(headers) + len(payload)
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + headers + payload
    return body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def decode(buf):
    """Splits whole messages off buf: returns (messages, rest)."""
    out = []
    while len(buf) >= 12:
        total, hlen = struct.unpack(">II", buf[:8])
        if len(buf) < total:
            break
        hdrs, i = {}, 12
        while i < 12 + hlen:
            nl = buf[i]
            name = buf[i + 1:i + 1 + nl].decode()
            t = buf[i + 1 + nl]
            i += 2 + nl
            if t == 7 or t == 6:
                (vl,) = struct.unpack(">H", buf[i:i + 2])
                v = buf[i + 2:i + 2 + vl]
                hdrs[name] = v.decode() if t == 7 else v
                i += 2 + vl
            elif t == 8 or t == 5:
                hdrs[name] = struct.unpack(">q", buf[i:i + 8])[0]
                i += 8
            else:
                raise ValueError("header type %d" % t)
        out.append((hdrs, buf[12 + hlen:total - 4]))
        buf = buf[total:]
    return out, buf


def signing_key(secret, date8, region, service):
    k = hmac.new(("AWS4" + secret).encode(), date8.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


class H2:
    """A minimal HTTP/2 client over cleartext prior knowledge: one stream, request
    headers as HPACK literals, response status read from the static table (200 and the
    other indexed codes; anything else shows as "other"), DATA collected as it comes."""

    STATUS = {8: "200", 9: "204", 10: "206", 11: "304", 12: "400", 13: "404", 14: "500"}

    def __init__(self, base, method, path, headers):
        hostport = base.split("://", 1)[1].rstrip("/")
        host, port = hostport.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.inbuf = b""
        self.status = None
        self.reset = None
        self.ended = False
        settings = struct.pack(">HI", 2, 0) + struct.pack(">HI", 4, 1 << 24)
        out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + self.frame(4, 0, 0, settings)
        out += self.frame(8, 0, 0, struct.pack(">I", (1 << 30)))
        block = b""
        fields = [(":method", method), (":scheme", "http"), (":path", path),
                  (":authority", hostport)]
        fields += [(k.lower(), v) for k, v in headers.items() if k.lower() != "host"]
        for k, v in fields:
            block += b"\x00" + self.hint(k.encode()) + self.hint(v.encode())
        out += self.frame(1, 0x4, 1, block)
        self.sock.sendall(out)

    @staticmethod
    def frame(ftype, flags, sid, payload):
        return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload

    @staticmethod
    def hint(b):
        n = len(b)
        if n < 127:
            return bytes([n]) + b
        out, n = [127], n - 127
        while n >= 128:
            out.append((n & 127) | 128)
            n >>= 7
        out.append(n)
        return bytes(out) + b

    def send_data(self, data, end=False):
        try:
            self.sock.sendall(self.frame(0, 0x1 if end else 0, 1, data))
        except OSError:
            pass

    def poll(self, timeout):
        """Reads what arrives within timeout; returns the stream's DATA bytes."""
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return b""
        try:
            chunk = self.sock.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            self.ended = True
            return b""
        self.inbuf += chunk
        data = b""
        while len(self.inbuf) >= 9:
            ln = struct.unpack(">I", b"\x00" + self.inbuf[:3])[0]
            if len(self.inbuf) < 9 + ln:
                break
            ftype, flags = self.inbuf[3], self.inbuf[4]
            sid = struct.unpack(">I", self.inbuf[5:9])[0] & 0x7FFFFFFF
            payload = self.inbuf[9:9 + ln]
            self.inbuf = self.inbuf[9 + ln:]
            if ftype == 0 and sid == 1:
                pad = payload[0] if flags & 0x8 else 0
                data += payload[1:len(payload) - pad] if flags & 0x8 else payload
                if ln:
                    self.sock.sendall(self.frame(8, 0, 0, struct.pack(">I", ln)))
                if flags & 0x1:
                    self.ended = True
            elif ftype == 1 and sid == 1:
                if self.status is None and payload:
                    b0 = payload[0]
                    self.status = self.STATUS.get(b0 & 0x7F, "other") if b0 & 0x80 else "other"
                if flags & 0x1:
                    self.ended = True
            elif ftype == 3:
                self.reset = struct.unpack(">I", payload[:4])[0]
                self.ended = True
            elif ftype == 4 and not flags & 0x1:
                self.sock.sendall(self.frame(4, 0x1, 0, b""))
            elif ftype == 6 and not flags & 0x1:
                self.sock.sendall(self.frame(6, 0x1, 0, payload))
            elif ftype == 7:
                self.reset = "goaway"
                self.ended = True
        return data

    def close(self):
        self.sock.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("model")
    ap.add_argument("akid")
    ap.add_argument("secret")
    ap.add_argument("--token")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--count", type=int, default=3)
    ap.add_argument("--bad-frame", type=int, default=-1)
    a = ap.parse_args()

    quoted = "".join(c if c.isalnum() or c in "-._~" else "%%%02X" % ord(c) for c in a.model)
    url = a.url.rstrip("/") + "/model/" + quoted + "/invoke-with-bidirectional-stream"
    req = AWSRequest(method="POST", url=url, headers={
        "content-type": "application/vnd.amazon.eventstream",
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-EVENTS"})
    botocore.auth.SigV4Auth(Credentials(a.akid, a.secret, a.token), "bedrock", a.region).add_auth(req)
    prior = req.headers["Authorization"].rsplit("Signature=", 1)[1]

    conn = H2(a.url, "POST", url[len(a.url.rstrip("/")):], dict(req.headers.items()))
    lines = []
    duplex = True
    buf = b""

    def pump(until_messages, timeout):
        nonlocal buf
        got = 0
        end = time.time() + timeout
        while got < until_messages and time.time() < end and not conn.ended:
            data = conn.poll(max(0.0, end - time.time()))
            if not data:
                continue
            buf += data
            msgs, buf = decode(buf)
            for hdrs, payload in msgs:
                got += 1
                mt = hdrs.get(":message-type")
                kind = hdrs.get(":event-type") or hdrs.get(":exception-type") or hdrs.get(":error-code")
                text = payload.decode("utf-8", "replace")
                if kind == "chunk":
                    try:
                        text = base64.b64decode(json.loads(text)["bytes"]).decode()
                    except Exception:
                        pass
                if mt == "error":
                    text = hdrs.get(":error-message", "")
                lines.append("%s %s %s" % (mt, kind, text))
        return got

    def send(payload):
        nonlocal prior
        now = datetime.datetime.now(datetime.timezone.utc)
        ms = int(now.timestamp() * 1000)
        amz = now.strftime("%Y%m%dT%H%M%SZ")
        date_hdr = header(":date", 8, ms)
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz,
                         "%s/%s/bedrock/aws4_request" % (amz[:8], a.region), prior,
                         hashlib.sha256(date_hdr).hexdigest(),
                         hashlib.sha256(payload).hexdigest()])
        sig = hmac.new(signing_key(a.secret, amz[:8], a.region, "bedrock"),
                       sts.encode(), hashlib.sha256).digest()
        prior = sig.hex()
        if send.n == a.bad_frame:
            sig = bytes([sig[0] ^ 1]) + sig[1:]
        send.n += 1
        conn.send_data(message(date_hdr + header(":chunk-signature", 6, sig), payload),
                       end=(payload == b""))
    send.n = 0

    for i in range(a.count):
        inner = json.dumps({"event": {"textInput": {"content": "turn %d" % i}}}).encode()
        inner_msg = message(header(":event-type", 7, "chunk") + header(":message-type", 7, "event") +
                            header(":content-type", 7, "application/json"),
                            json.dumps({"bytes": base64.b64encode(inner).decode()}).encode())
        send(inner_msg)
        # The answer must arrive while our input is still open.
        if pump(1, 5) < 1:
            duplex = False
            break
    send(b"")
    pump(1000, 5)
    for ln in lines:
        print(ln)
    print("status", conn.status)
    print("reset", conn.reset if conn.reset is not None else "-")
    print("duplex", "yes" if duplex else "no")
    conn.close()


if __name__ == "__main__":
    main()
