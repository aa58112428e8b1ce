#!/usr/bin/env python3
"""Runs a command and reports its peak memory, from the kernel's accounting of children.

    peak_rss.py COMMAND [ARGS...]

Passes the command's stderr through and prints "EXIT_CODE PEAK_RSS_KIB". Used by memory.rs.
"""
import resource
import subprocess
import sys

if len(sys.argv) < 2:
    sys.exit(__doc__)
r = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(r.stderr)
print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
