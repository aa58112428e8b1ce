#!/usr/bin/env python3
"""Azure Blob helper for the tests, independent of shardflow's storage code (azure-storage-blob).

    azutil.py mkcontainer NAME          create a container
    azutil.py download az://C/PREFIX DIR download every blob under PREFIX into DIR (keys relative to PREFIX)

The endpoint is $AZURITE_BLOB_STORAGE_URL (an Azurite blob service); the account is Azurite's
well-known development account.
"""
import os
import sys
from pathlib import Path

from azure.storage.blob import BlobServiceClient

ACCOUNT = "devstoreaccount1"
# Azurite's published development key (not a secret)
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def client() -> BlobServiceClient:
    url = os.environ["AZURITE_BLOB_STORAGE_URL"].rstrip("/")
    conn = (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint={url}/{ACCOUNT};")
    return BlobServiceClient.from_connection_string(conn)


def main() -> None:
    cmd, *args = sys.argv[1:]
    if cmd == "mkcontainer":
        client().create_container(args[0])
    elif cmd == "download":
        uri, dest = args
        container, _, prefix = uri.removeprefix("az://").partition("/")
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        cc = client().get_container_client(container)
        n = 0
        for blob in cc.list_blobs(name_starts_with=prefix):
            target = Path(dest) / blob.name[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(cc.download_blob(blob.name).readall())
            n += 1
        print(n)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
