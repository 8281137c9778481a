#!/usr/bin/env python3
"""Resolves credentials with botocore's own provider chain for the profile in AWS_PROFILE
(the SSO provider, pointed at the emulator by AWS_ENDPOINT_URL_SSO / _SSO_OIDC), for
spec/credentials_sso_spec.lua. Prints "creds <AccessKeyId>" or "error <class> <message>"."""
import botocore.session


def main():
    try:
        s = botocore.session.Session()
        c = s.get_credentials()
        if c is None:
            print("error NoCredentials none")
            return
        f = c.get_frozen_credentials()
        print("creds %s" % f.access_key)
    except Exception as e:  # the spec compares the class name
        print("error %s %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else ""))


main()
