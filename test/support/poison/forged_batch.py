"""Produces hand-built record batches whose records carry the offset deltas given, as any producer can
write them (Produce v8, uncompressed, straight to the one broker; the broker checks the record count
against the batch's last delta, not the records' deltas). Standard library only.
stdin {broker, topic, partition, batches: [[{value, delta, headers?}]]} (headers: a count of empty headers),
stdout [{error_code, base_offset}] per batch."""
import json
import socket
import struct
import sys
import time


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def varint(n):
    z = ((n << 1) ^ (n >> 63)) & 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def record(spec):
    value = spec["value"].encode()
    body = b"\0" + varint(0) + varint(spec["delta"]) + varint(-1) + varint(len(value)) + value
    headers = spec.get("headers", 0)
    body += varint(headers) + (varint(0) + varint(0)) * headers
    return varint(len(body)) + body


def batch(records, now):
    body = b"".join(record(r) for r in records)
    after_crc = struct.pack(">hiqqqhii", 0, len(records) - 1, now, now, -1, -1, -1, len(records)) + body
    rest = struct.pack(">ibI", -1, 2, crc32c(after_crc)) + after_crc
    return struct.pack(">qi", 0, len(rest)) + rest


def string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def read_exactly(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("the broker closed the connection")
        buf += chunk
    return buf


def produce(sock, correlation, topic, partition, records):
    body = struct.pack(">hhi", -1, -1, 30000) + struct.pack(">i", 1) + string(topic)
    body += struct.pack(">ii", 1, partition) + struct.pack(">i", len(records)) + records
    message = struct.pack(">hhi", 0, 8, correlation) + string("forged-batch") + body
    sock.sendall(struct.pack(">i", len(message)) + message)
    response = read_exactly(sock, struct.unpack(">i", read_exactly(sock, 4))[0])
    # correlation id, topic count, topic name, partition count, then the partition's answer.
    at = 8 + 2 + struct.unpack(">h", response[8:10])[0] + 4
    _, error_code, base_offset = struct.unpack(">ihq", response[at : at + 14])
    return {"error_code": error_code, "base_offset": base_offset}


def main():
    spec = json.load(sys.stdin)
    host, port = spec["broker"].split(",")[0].split(":")
    now = int(time.time() * 1000)
    with socket.create_connection((host, int(port))) as sock:
        out = [
            produce(sock, i + 1, spec["topic"], spec["partition"], batch(records, now))
            for i, records in enumerate(spec["batches"])
        ]
    json.dump(out, sys.stdout)


main()
