#!/usr/bin/env python3
"""UDP client and capture reader for the walguard UDP transport tests.
Prints its results as key=value pairs on one line.

send: from one fresh socket, send datagrams to --to, then wait
--wait-seconds for anything coming back. A datagram is --random N random
bytes, or the contents of --file. --truncate cuts it to that many bytes,
and --flip XORs the byte at that offset with 0x01. --header T puts the
walguard header (type T, three zero bytes) in front of random bytes.
--count repeats the datagram, each random one drawn afresh. --bind
sends from that local address instead of the one the route picks.

  local_port=P sent=N received=N received_bytes=N

extract: read a pcap file that tcpdump wrote from an Ethernet interface,
and write the UDP payloads going to --dport into --out-dir as
NNN-TYPE.bin, TYPE being initiation, response, data or other by the
first byte.

  datagrams=N initiation=N data=N
"""

import argparse
import os
import socket
import struct
import sys
import time

TYPES = {1: "initiation", 2: "response", 4: "data"}


def address_of(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def make_datagram(args):
    if args.file:
        with open(args.file, "rb") as handle:
            data = bytearray(handle.read())
    else:
        data = bytearray(os.urandom(args.random))
        if args.header is not None:
            data[0:4] = bytes([args.header, 0, 0, 0])
    if args.truncate is not None:
        data = data[: args.truncate]
    if args.flip is not None:
        data[args.flip] ^= 0x01
    return bytes(data)


def send(args):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((args.bind, 0))
    target = address_of(args.to)
    sent = 0
    for _ in range(args.count):
        sock.sendto(make_datagram(args), target)
        sent += 1
    received = 0
    received_bytes = 0
    deadline = time.monotonic() + args.wait_seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionRefusedError:
            continue
        received += 1
        received_bytes += len(data)
    print("local_port=%d sent=%d received=%d received_bytes=%d"
          % (sock.getsockname()[1], sent, received, received_bytes))


def pcap_packets(path):
    with open(path, "rb") as handle:
        header = handle.read(24)
        if len(header) < 24:
            return
        magic = struct.unpack("<I", header[:4])[0]
        order = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        linktype = struct.unpack(order + "I", header[20:24])[0]
        if linktype != 1:
            sys.exit("udp_probe.py: pcap link type %d, expected 1 (Ethernet)" % linktype)
        while True:
            record = handle.read(16)
            if len(record) < 16:
                return
            included = struct.unpack(order + "I", record[8:12])[0]
            frame = handle.read(included)
            if len(frame) < included:
                return
            yield frame


def udp_payload(frame, dport):
    """The payload of an IPv4 UDP datagram to dport in an Ethernet frame, or None."""
    if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    header_len = (ip[0] & 0x0F) * 4
    total_len = struct.unpack(">H", ip[2:4])[0]
    if ip[9] != 17 or len(ip) < total_len:
        return None
    udp = ip[header_len:total_len]
    if struct.unpack(">H", udp[2:4])[0] != dport:
        return None
    return udp[8:]


def extract(args):
    os.makedirs(args.out_dir, exist_ok=True)
    counts = {}
    number = 0
    for frame in pcap_packets(args.pcap):
        payload = udp_payload(frame, args.dport)
        if payload is None or len(payload) == 0:
            continue
        kind = TYPES.get(payload[0], "other")
        number += 1
        counts[kind] = counts.get(kind, 0) + 1
        with open(os.path.join(args.out_dir, "%03d-%s.bin" % (number, kind)), "wb") as handle:
            handle.write(payload)
    print("datagrams=%d initiation=%d data=%d"
          % (number, counts.get("initiation", 0), counts.get("data", 0)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    send_parser = commands.add_parser("send")
    send_parser.add_argument("--to", required=True)
    send_parser.add_argument("--random", type=int, default=0)
    send_parser.add_argument("--header", type=int)
    send_parser.add_argument("--file")
    send_parser.add_argument("--truncate", type=int)
    send_parser.add_argument("--flip", type=int)
    send_parser.add_argument("--count", type=int, default=1)
    send_parser.add_argument("--wait-seconds", type=float, default=2.0)
    send_parser.add_argument("--bind", default="0.0.0.0")

    extract_parser = commands.add_parser("extract")
    extract_parser.add_argument("--pcap", required=True)
    extract_parser.add_argument("--out-dir", required=True)
    extract_parser.add_argument("--dport", type=int, required=True)

    args = parser.parse_args()
    if args.command == "send":
        send(args)
    else:
        extract(args)


if __name__ == "__main__":
    main()
