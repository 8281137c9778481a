#!/usr/bin/env python3
"""Fetches temporary credentials from one of the emulator's credential endpoints with
botocore's own provider code (or boto3's STS/SSO clients), then signs a Converse call with
them, for spec/emulator_server_spec.lua.

usage: emulator_creds.py URL imds|container|assume-role|web-identity|sso [options]
  --akid ID --secret S     long-term key that signs AssumeRole
  --container-token T      Authorization for the container endpoint
  --sso-token T            SSO access token
  --web-token T            web identity token
Prints "creds <AccessKeyId> <has token 0|1> <expiry>" then "converse <status>" (a 200 or
the error code), or "error <class> <message>".
"""
import argparse
import sys

import boto3
import botocore.utils
from botocore.config import Config
from botocore.exceptions import ClientError


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("provider")
    ap.add_argument("--akid")
    ap.add_argument("--secret")
    ap.add_argument("--container-token")
    ap.add_argument("--sso-token", default="sso-access-token")
    ap.add_argument("--web-token", default="web-identity-token")
    a = ap.parse_args()
    url = a.url.rstrip("/")
    cfg = Config(retries={"max_attempts": 0})
    try:
        if a.provider == "imds":
            f = botocore.utils.InstanceMetadataFetcher(base_url=url + "/", num_attempts=1)
            c = f.retrieve_iam_role_credentials()
            if not c:
                raise RuntimeError("no credentials from IMDS")
            akid, secret, token, exp = c["access_key"], c["secret_key"], c["token"], c["expiry_time"]
        elif a.provider == "container":
            f = botocore.utils.ContainerMetadataFetcher()
            headers = {"Authorization": a.container_token} if a.container_token else None
            c = f.retrieve_full_uri(url + "/container-credentials", headers=headers)
            akid, secret, token, exp = c["AccessKeyId"], c["SecretAccessKey"], c["Token"], c["Expiration"]
        elif a.provider in ("assume-role", "web-identity"):
            if a.provider == "assume-role":
                sts = boto3.client("sts", region_name="us-east-1", endpoint_url=url, config=cfg,
                                   aws_access_key_id=a.akid, aws_secret_access_key=a.secret)
                r = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/test-role",
                                    RoleSessionName="spec-session")
            else:
                sts = boto3.client("sts", region_name="us-east-1", endpoint_url=url,
                                   config=Config(retries={"max_attempts": 0},
                                                 signature_version=botocore.UNSIGNED))
                r = sts.assume_role_with_web_identity(
                    RoleArn="arn:aws:iam::123456789012:role/test-role",
                    RoleSessionName="spec-session", WebIdentityToken=a.web_token)
            c = r["Credentials"]
            if not r["AssumedRoleUser"]["Arn"].endswith(":assumed-role/test-role/spec-session"):
                raise RuntimeError("unexpected AssumedRoleUser " + r["AssumedRoleUser"]["Arn"])
            akid, secret, token, exp = c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"], c["Expiration"]
        elif a.provider == "sso":
            sso = boto3.client("sso", region_name="us-east-1", endpoint_url=url, config=cfg)
            r = sso.get_role_credentials(roleName="test-role", accountId="123456789012",
                                         accessToken=a.sso_token)
            c = r["roleCredentials"]
            akid, secret, token, exp = c["accessKeyId"], c["secretAccessKey"], c["sessionToken"], c["expiration"]
        else:
            raise RuntimeError("unknown provider " + a.provider)
    except ClientError as e:
        print("error", e.response["Error"].get("Code"), e.response["Error"].get("Message"))
        return
    except Exception as e:  # noqa: BLE001 - reported to the spec
        print("error", type(e).__name__, str(e)[:200])
        return
    print("creds", akid, 1 if token else 0, exp)
    br = boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=url, config=cfg,
                      aws_access_key_id=akid, aws_secret_access_key=secret, aws_session_token=token)
    try:
        br.converse(modelId="amazon.titan-text-express-v1:0",
                    messages=[{"role": "user", "content": [{"text": "hi"}]}])
        print("converse 200")
    except ClientError as e:
        print("converse", e.response["Error"].get("Code"))


if __name__ == "__main__":
    sys.exit(main())
