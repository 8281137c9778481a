#!/usr/bin/env python3
"""Signs one request with botocore's SigV4Auth (or a bearer token) and sends it to the
emulator, for spec/emulator_server_spec.lua. Prints the status on the first line, then
the x-amzn-ErrorType header (or "-"), then the body.

usage: emulator_client.py URL METHOD PATH [options]
  --body TEXT            request body (default empty)
  --header NAME:VALUE    extra header, signed (repeatable)
  --akid ID --secret S   SigV4 credentials
  --token T              session token (X-Amz-Security-Token, signed)
  --region R             default us-east-1
  --service S            signing name, default bedrock
  --skew SECONDS         sign with the clock moved by this much
  --bad-sig              flip the last signature character after signing
  --bearer TOKEN         send Authorization: Bearer TOKEN instead of signing
  --content-sha256       also send x-amz-content-sha256 (like the JS SDK)
"""
import argparse
import datetime
import hashlib
import sys
import urllib.request
import urllib.error

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("method")
    ap.add_argument("path")
    ap.add_argument("--body", default="")
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--akid")
    ap.add_argument("--secret")
    ap.add_argument("--token")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--service", default="bedrock")
    ap.add_argument("--skew", type=int, default=0)
    ap.add_argument("--bad-sig", action="store_true")
    ap.add_argument("--bearer")
    ap.add_argument("--content-sha256", action="store_true")
    a = ap.parse_args()

    url = a.url.rstrip("/") + a.path
    body = a.body.encode()
    headers = {}
    for h in a.header:
        k, v = h.split(":", 1)
        headers[k] = v
    if a.content_sha256:
        headers["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
    req = AWSRequest(method=a.method, url=url, data=body, headers=headers)
    if a.bearer is not None:
        req.headers["Authorization"] = "Bearer " + a.bearer
    elif a.akid:
        if a.skew:
            now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
            shifted = now + datetime.timedelta(seconds=a.skew)
            botocore.auth.get_current_datetime = lambda *args, **kw: shifted
        creds = Credentials(a.akid, a.secret, a.token)
        botocore.auth.SigV4Auth(creds, a.service, a.region).add_auth(req)
        if a.bad_sig:
            auth = req.headers["Authorization"]
            last = auth[-1]
            req.headers["Authorization"] = auth[:-1] + ("0" if last != "0" else "1")
    prepared = req.prepare()
    r = urllib.request.Request(prepared.url, data=prepared.body or None,
                               method=a.method, headers=dict(prepared.headers.items()))
    try:
        resp = urllib.request.urlopen(r, timeout=10)
        status, hdrs, data = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        status, hdrs, data = e.code, e.headers, e.read()
    print(status)
    print(hdrs.get("x-amzn-ErrorType") or "-")
    sys.stdout.write(data.decode("utf-8", "replace"))


if __name__ == "__main__":
    main()
