#!/usr/bin/env python3
"""Writes crates/ccr-proxy/assets/o200k_base.tokens, the vocabulary the proxy's token counter loads.

Input: an `o200k_base.tiktoken` file (one `base64(token) rank` per line, ranks 0..N-1 in
order), e.g. the one inside the tiktoken-rs crate:
  ~/.cargo/registry/src/*/tiktoken-rs-*/assets/o200k_base.tiktoken
Output: for each rank in order, one length byte then the token's bytes (1.6 MB instead of
the 3.6 MB base64 text). The test `tokens_exactness` checks it against tiktoken-rs.

  scripts/o200k-vocab.py PATH/o200k_base.tiktoken [crates/ccr-proxy/assets/o200k_base.tokens]
"""
import base64
import sys

src = sys.argv[1]
dst = sys.argv[2] if len(sys.argv) > 2 else "crates/ccr-proxy/assets/o200k_base.tokens"
out = bytearray()
with open(src) as f:
    for expected, line in enumerate(f):
        raw, rank = line.split()
        if int(rank) != expected:
            sys.exit(f"{src}: rank {rank} out of order (expected {expected})")
        token = base64.b64decode(raw)
        if not 0 < len(token) < 256:
            sys.exit(f"{src}: token {rank} has length {len(token)}")
        out.append(len(token))
        out += token
with open(dst, "wb") as f:
    f.write(out)
print(f"{dst}: {expected + 1} tokens, {len(out)} bytes")
