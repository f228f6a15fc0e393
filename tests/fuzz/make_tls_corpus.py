#!/usr/bin/env python3
"""Writes the seed corpus for fuzz_tls_record into tests/fuzz/corpus/tls/ (run from anywhere; output is committed).

Each seed is [control][bytes], see fuzz_tls_record.cpp: control bits 0-1 the mode, bits 2-7 the chunk size. The
ClientHello is a real TLS 1.3 one, made by Python's ssl module over memory BIOs (no network)."""
import os
import random
import ssl
import struct


def client_hello():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = ctx.wrap_bio(incoming, outgoing, server_hostname='localhost')
    try:
        conn.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def record(ctype, body):
    return struct.pack('>BHH', ctype, 0x0303, len(body)) + body


def control(mode, chunk=0):
    return bytes([mode | chunk << 2])


rng = random.Random(0x715)
ch = client_hello()
app = record(23, rng.randbytes(64)) + record(23, rng.randbytes(17))
SEEDS = {
    'server_client_hello': control(0) + ch,
    'server_client_hello_bytewise': control(0, 1) + ch,
    'server_client_hello_then_junk': control(0, 37) + ch + record(23, rng.randbytes(40)),
    'server_plaintext_preface': control(0) + b'RINGTUN\x01' + bytes(16),
    'server_alert': control(0) + record(21, b'\x02\x28'),
    'client_records': control(1) + app + record(21, b'\x01\x00'),
    'client_oversized_record': control(1, 3) + struct.pack('>BHH', 23, 0x0303, 0x4200) + rng.randbytes(100),
    'server_records_chunked': control(2, 5) + app + record(20, b'\x01'),
    'plaintext_roundtrip': control(3, 16) + rng.randbytes(3000),
    'plaintext_roundtrip_large': control(3) + rng.randbytes(20000),
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus', 'tls')
os.makedirs(out, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(out, name), 'wb') as f:
        f.write(data)
print('wrote %d seeds to %s' % (len(SEEDS), out))
