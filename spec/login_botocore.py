#!/usr/bin/env python3
"""Runs botocore's own `aws login` code for spec/credentials_login_spec.lua.

botocore signs DPoP proofs with awscrt, which this machine's python may lack; the same
calls are then made through the `cryptography` package (a stand-in with awscrt's EC
interface: new_key_from_der_data, get_public_coords, sign of a SHA-256 digest,
decode_der_signature_to_padded_pair). Everything else is botocore's code.

usage:
  login_botocore.py proof DER_HEX URL IAT JTI   -> prints botocore's DPoP proof
  login_botocore.py creds                       -> resolves AWS_PROFILE's credentials
                                                   (LoginProvider, refreshing against
                                                   AWS_ENDPOINT_URL_SIGNIN) and prints
                                                   "creds <AccessKeyId>" or "error <class> <msg>"
"""
import sys

import botocore.compat
import botocore.credentials


class _Key:
    def __init__(self, key):
        self._k = key

    def get_public_coords(self):
        n = self._k.public_key().public_numbers()
        return n.x.to_bytes(32, "big"), n.y.to_bytes(32, "big")

    def sign(self, digest):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, utils
        return self._k.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


class _EC:
    @staticmethod
    def new_key_from_der_data(der):
        from cryptography.hazmat.primitives.serialization import load_der_private_key
        try:
            return _Key(load_der_private_key(der, password=None))
        except Exception as e:
            raise ValueError(str(e))

    @staticmethod
    def decode_der_signature_to_padded_pair(sig, pad_to):
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
        r, s = decode_dss_signature(sig)
        return r.to_bytes(pad_to, "big") + s.to_bytes(pad_to, "big")


if botocore.credentials.EC is None:
    botocore.credentials.EC = _EC
    botocore.compat.EC = _EC


def main():
    if sys.argv[1] == "proof":
        key = botocore.credentials.EC.new_key_from_der_data(bytes.fromhex(sys.argv[2]))
        print(botocore.credentials._build_dpop_header(key, sys.argv[3], uid=sys.argv[5], ts=int(sys.argv[4])))
        return
    from botocore.session import Session
    try:
        c = Session().get_credentials()
        if c is None:
            print("error NoCredentials none")
            return
        print("creds %s" % c.get_frozen_credentials().access_key)
    except Exception as e:
        print("error %s %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else ""))


main()
