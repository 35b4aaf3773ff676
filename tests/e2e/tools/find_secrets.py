#!/usr/bin/env python3
"""Search files for any form of 32-byte secret keys, for the walguard tests.

Usage: find_secrets.py --key NAME=KEYFILE ... FILE ...

Each KEYFILE contains one base64 key, as walguard-keygen writes it. A key
counts as found in a FILE when the file contains its base64 text (with or
without the '=' padding, or the first 12 characters), its hex text in
lower or upper case (whole, or the first 16 digits), or its raw bytes
(whole, or the first 8). Prints one line per finding and exits 1 when
there is any, 0 when there is none.
"""

import argparse
import base64
import sys


def forms_of(key):
    text = base64.b64encode(key).decode()
    hex_text = key.hex()
    return {
        "base64": text.encode(),
        "base64 without padding": text.rstrip("=").encode(),
        "first 12 base64 characters": text[:12].encode(),
        "hex": hex_text.encode(),
        "upper-case hex": hex_text.upper().encode(),
        "first 16 hex digits": hex_text[:16].encode(),
        "first 16 upper-case hex digits": hex_text[:16].upper().encode(),
        "raw bytes": key,
        "first 8 raw bytes": key[:8],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--key", action="append", required=True, metavar="NAME=KEYFILE")
    parser.add_argument("files", nargs="+")
    arguments = parser.parse_args()

    keys = {}
    for item in arguments.key:
        name, path = item.split("=", 1)
        with open(path) as file:
            key = base64.b64decode(file.read().strip(), validate=True)
        if len(key) != 32:
            print("%s: %s decodes to %d bytes, expected 32" % (name, path, len(key)), file=sys.stderr)
            return 2
        keys[name] = key

    findings = 0
    for path in arguments.files:
        with open(path, "rb") as file:
            content = file.read()
        for name, key in keys.items():
            for form, needle in forms_of(key).items():
                if needle in content:
                    print("%s: contains the %s of %s" % (path, form, name))
                    findings += 1
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
