#!/usr/bin/env python3
# Write the seed corpus of fuzz_proto (fuzz/fuzz_proto.c describes the record format): the
# conversations libbitmix and bitmixctl have with bitmixd, message by message, as recorded from
# the structs of proto/bitmix_proto.h. Run it again after a protocol change.
import os
import struct
import sys

MAGIC, VERSION = 0x504d4842, 2
HELLO, LIST, OPEN, SET_BITS, STATUS, REGISTER, UNREGISTER = 1, 2, 3, 4, 5, 6, 7
GOVERNOR, POLICY, HOLD, RELEASE, COST, SENSORS, RELOAD = 16, 17, 18, 19, 20, 32, 40
seq = 0


def msg(kind, body=b'', flags=0):
    global seq
    seq += 1
    m = struct.pack('<IHHII', MAGIC, VERSION, kind, 16 + len(body), seq) + body
    return record(flags, m)


def record(hdr, payload):
    return struct.pack('<BH', hdr, len(payload)) + payload


def name(s, n):
    return s.encode().ljust(n, b'\0')


def sqe(user, op=0, prec=0, model=1, batch=1, in_region=0, out_region=0, in_off=0, in_len=512,
        out_off=4096, out_len=20):
    return struct.pack('<QBBBBIIHHQQQQQ', user, op, prec, 0, 0, model, batch, in_region,
                       out_region, in_off, in_len, out_off, out_len, 0)


hello = msg(HELLO, struct.pack('<IIQ', 8, 0, 1 << 16))
open_tiny = msg(OPEN, name('tiny', 48))
infer = record(1, sqe(1) + sqe(2, batch=2, in_len=1024, out_off=8192, out_len=40) +
               sqe(3, op=1, model=0, batch=0, in_len=0, out_len=0) + sqe(4, prec=1) + sqe(5, prec=2))

seeds = {
    'session': hello + msg(LIST) + open_tiny + msg(STATUS) + msg(SENSORS) +
    msg(SET_BITS, struct.pack('<II', 1, 3) + bytes([8, 8, 4, 4, 2, 2])) + infer +
    msg(GOVERNOR, name('', 24)) + msg(POLICY, name('tiny', 48)) + msg(COST, name('tiny', 48) + struct.pack('<II', 0, 0)) +
    msg(HOLD, name('tiny', 48) + struct.pack('<IIQ', 1, 0, 4)) +
    msg(HOLD, name('tiny', 48) + struct.pack('<IIQ', 2, 0, 1000000)) +
    msg(RELEASE, name('tiny', 48) + struct.pack('<IIQ', 0, 1, 0)) + infer,
    'regions': record(3, b'') + hello + open_tiny +
    msg(REGISTER, struct.pack('<IIQ', 0, 0, 65536), flags=16) +
    record(1, sqe(7, in_region=1, out_region=1, in_off=0, out_off=1024) +
           sqe(8, in_region=1, out_region=0, in_off=60000)) +
    msg(UNREGISTER, struct.pack('<IIQ', 1, 0, 0)) +
    msg(REGISTER, struct.pack('<IIQ', 0, 0, 4096), flags=16 | 32) +
    msg(REGISTER, struct.pack('<IIQ', 0, 0, 4096), flags=16 | 64) +
    record(1, sqe(9, in_region=1)),
    'governor': hello + open_tiny + msg(GOVERNOR, name('userspace', 24)) +
    msg(SET_BITS, struct.pack('<II', 1, 3) + bytes([2, 2, 3, 3, 8, 8])) + infer +
    msg(GOVERNOR, name('power_allocator', 24)) + msg(GOVERNOR, name('step_wise', 24)) +
    msg(GOVERNOR, name('ondemand', 24)) + msg(GOVERNOR, name('conservative', 24)) +
    msg(GOVERNOR, name('performance', 24)) + msg(GOVERNOR, name('powersave', 24)) +
    msg(GOVERNOR, name('userspace', 24)) + msg(RELOAD),
    'unprivileged': record(3, b'\x05') + hello + open_tiny +
    msg(SET_BITS, struct.pack('<II', 1, 3) + bytes([8, 8, 8, 8, 8, 8])) +
    msg(GOVERNOR, name('powersave', 24)) + msg(RELOAD) +
    msg(HOLD, name('tiny', 48) + struct.pack('<IIQ', 1, 0, 3)) + infer,
    'rings': hello + open_tiny + infer + record(1 | 8, sqe(10) * 8) +
    record(2, struct.pack('<II', 1000, 0)) + record(1 | 4, sqe(11) + b'\xff'),
    'malformed': hello + record(8, struct.pack('<IHHII', MAGIC, 9, HELLO, 16, 1)) +
    msg(99) + msg(OPEN, name('x' * 48, 48)) + record(128, struct.pack('<IHHII', MAGIC, 2, 5, 16, 2)),
}

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'corpus', 'proto')
os.makedirs(out, exist_ok=True)
for n, data in seeds.items():
    with open(os.path.join(out, n), 'wb') as f:
        f.write(data)
