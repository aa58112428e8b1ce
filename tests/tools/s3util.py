#!/usr/bin/env python3
"""S3 helper for the tests, independent of shardflow's own storage code (boto3).

The endpoint and keys come from the usual AWS_* variables (AWS_ENDPOINT_URL, ...).

  s3util.py mkbucket BUCKET
  s3util.py upload DIR s3://BUCKET/PREFIX        every file below DIR, keys = relative paths
  s3util.py download s3://BUCKET/PREFIX DIR      every object below PREFIX
  s3util.py ls s3://BUCKET/PREFIX                one key per line, sorted
  s3util.py uploads BUCKET                       in-progress multipart uploads, one key per line
  s3util.py many s3://BUCKET/PREFIX N            N small objects PREFIX/NNNNNN.json (JSON bodies)
  s3util.py rm s3://BUCKET/KEY                   delete one object
"""

import os
import sys

import boto3
from botocore.config import Config


def client():
    return boto3.client(
        "s3",
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )


def split(uri):
    assert uri.startswith("s3://"), uri
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix.strip("/")


def keys(c, bucket, prefix):
    out = []
    for page in c.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix + "/" if prefix else ""
    ):
        out.extend(o["Key"] for o in page.get("Contents", []))
    return sorted(out)


def main(argv):
    c = client()
    cmd = argv[1]
    if cmd == "mkbucket":
        c.create_bucket(Bucket=argv[2])
    elif cmd == "upload":
        src, (bucket, prefix) = argv[2], split(argv[3])
        for root, _, files in os.walk(src):
            for f in files:
                path = os.path.join(root, f)
                rel = os.path.relpath(path, src).replace(os.sep, "/")
                key = f"{prefix}/{rel}" if prefix else rel
                with open(path, "rb") as fh:
                    c.put_object(Bucket=bucket, Key=key, Body=fh.read())
    elif cmd == "download":
        (bucket, prefix), dst = split(argv[2]), argv[3]
        for key in keys(c, bucket, prefix):
            rel = key[len(prefix) + 1 :] if prefix else key
            path = os.path.join(dst, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(c.get_object(Bucket=bucket, Key=key)["Body"].read())
    elif cmd == "ls":
        bucket, prefix = split(argv[2])
        for key in keys(c, bucket, prefix):
            print(key)
    elif cmd == "uploads":
        r = c.list_multipart_uploads(Bucket=argv[2])
        for u in r.get("Uploads", []):
            print(u["Key"])
    elif cmd == "many":
        (bucket, prefix), n = split(argv[2]), int(argv[3])
        for i in range(n):
            c.put_object(Bucket=bucket, Key=f"{prefix}/{i:06d}.json", Body=b"{}")
    elif cmd == "rm":
        bucket, key = split(argv[2])
        c.delete_object(Bucket=bucket, Key=key)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
