#!/usr/bin/env python3
"""Writes the seed corpus for fuzz_frame into tests/fuzz/corpus/frame/ (run from anywhere; output is committed).

Each seed is [mode][chunk seed][wire bytes], see fuzz_frame.cpp. The wire layout follows docs/protocol.md:
16-byte big-endian header (type u8, flags u8, reserved u16, stream u32, length u32, arg u32)."""
import os
import struct

DATA, OPEN, WINDOW_UPDATE, RST, PING, GOAWAY, SETTINGS, CONTROL = range(8)
FIN = ACK = 1
PREFACE = b"RINGTUN\x01"


def frame(t, stream=0, payload=b"", flags=0, arg=0):
    return struct.pack(">BBHIII", t, flags, 0, stream, len(payload), arg) + payload


def settings(*entries):
    return frame(SETTINGS, payload=b"".join(struct.pack(">II", k, v) for k, v in entries))


SEEDS = {
    # mode 1: preface + SETTINGS are prepended by the target; the victim is an agent.
    "agent_stream_lifecycle": bytes([1, 7]) + frame(OPEN, 1, b'{"target":"127.0.0.1:22"}')
    + frame(DATA, 1, b"hello" * 100) + frame(WINDOW_UPDATE, 0, arg=65536) + frame(WINDOW_UPDATE, 1, arg=4096)
    + frame(PING, arg=42) + frame(DATA, 1, b"", FIN),
    "explicit_handshake_control_goaway": bytes([0, 1]) + PREFACE
    + settings((1, 32768), (2, 65536), (3, 1 << 20), (4, 10), (5, 0), (77, 1))
    + frame(CONTROL, 0, b'{"type":"hello","agent":"edge-1","token":"t"}') + frame(OPEN, 1) + frame(GOAWAY, 0, arg=0),
    "resets_and_closed_streams": bytes([1, 3]) + frame(OPEN, 1) + frame(OPEN, 3, flags=FIN)
    + frame(DATA, 1, b"x" * 3000) + frame(DATA, 3, b"y" * 10) + frame(RST, 1, arg=7) + frame(DATA, 1, b"late")
    + frame(WINDOW_UPDATE, 3, arg=100000) + frame(RST, 3, arg=8),
    "gateway_victim_agent_opens": bytes([3, 9]) + frame(OPEN, 2, b"m") + frame(DATA, 2, bytes(range(256)) * 8, FIN)
    + frame(PING, flags=ACK, arg=1) + frame(OPEN, 4) + frame(DATA, 4, b"z" * 4000),
    "ping_flood": bytes([1, 5]) + b"".join(frame(PING, arg=i) for i in range(40)),
    # the target's stream window is 16 KiB: one byte too many
    "window_overrun": bytes([1, 11]) + frame(OPEN, 1) + frame(DATA, 1, b"w" * 16384) + frame(DATA, 1, b"!"),
    "autotune_bulk": bytes([5, 13]) + frame(OPEN, 1) + frame(OPEN, 3)
    + b"".join(frame(DATA, 1 + 2 * (i % 2), b"b" * 2000) for i in range(8)) + frame(DATA, 1, b"", FIN),
    "bad_preface": bytes([0, 2]) + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "open_reset_storm": bytes([1, 17]) + b"".join(frame(OPEN, 2 * i + 1) + frame(RST, 2 * i + 1, arg=7) for i in range(30)),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "frame")
    os.makedirs(out, exist_ok=True)
    for name, blob in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(blob)
    print(f"wrote {len(SEEDS)} seeds to {out}")


if __name__ == "__main__":
    main()
