#!/usr/bin/env python3
"""Google Cloud Storage helper for the tests, independent of shardflow's storage code: the
JSON API of a GCS emulator (fake-gcs-server), through urllib only.

    gcsutil.py mkbucket NAME            create a bucket
    gcsutil.py upload DIR gs://B/PREFIX upload every file under DIR as PREFIX/<path relative to DIR>;
                                        prints how many

The endpoint is $STORAGE_EMULATOR_HOST (e.g. http://127.0.0.1:4443), the variable Google's
client libraries read for an emulator. Objects are written with the JSON API's media upload
because fake-gcs-server does not accept the XML API's writes (fsouza/fake-gcs-server#331).
"""
import json
import os
import sys
import urllib.parse
import urllib.request
from pathlib import Path


def call(method: str, path: str, body: bytes, content_type: str) -> bytes:
    url = os.environ["STORAGE_EMULATOR_HOST"].rstrip("/") + path
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"Content-Type": content_type})
    with urllib.request.urlopen(req) as resp:
        return resp.read()


def main() -> None:
    cmd, *args = sys.argv[1:]
    if cmd == "mkbucket":
        call("POST", "/storage/v1/b", json.dumps({"name": args[0]}).encode(), "application/json")
    elif cmd == "upload":
        src, uri = args
        bucket, _, prefix = uri.removeprefix("gs://").partition("/")
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        n = 0
        for f in sorted(p for p in Path(src).rglob("*") if p.is_file()):
            name = prefix + f.relative_to(src).as_posix()
            query = urllib.parse.urlencode({"uploadType": "media", "name": name})
            path = f"/upload/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o?{query}"
            meta = json.loads(call("POST", path, f.read_bytes(), "application/octet-stream"))
            # the store must hold what was sent, or the test would compare the wrong thing
            if int(meta["size"]) != f.stat().st_size:
                sys.exit(f"{name}: stored {meta['size']} bytes, sent {f.stat().st_size}")
            n += 1
        print(n)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
