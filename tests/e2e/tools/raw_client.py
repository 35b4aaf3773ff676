#!/usr/bin/env python3
"""Raw TCP client for the walguard tests. Prints its result as key=value lines.

probe: connect, send a payload (or nothing), keep reading until the server
closes the connection or --wait-seconds pass, and report what came back:

  local_port=P received=N received_hex=HEX end=eof|reset|timeout
  elapsed=SECONDS

With --count N it runs N probes one after the other and prints totals:

  count=N received_total=N closed=N not_closed=N

stream: connect, send --chunks chunks of random bytes --interval seconds
apart while reading whatever comes back, then shut down the writing side
and read until the server closes. The bytes sent and received go to
--sent-file and --received-file.

  local_port=P sent=N received=N end=eof|reset|timeout send_error=none|...
"""

import argparse
import os
import socket
import sys
import threading
import time


def address_of(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def read_until_closed(sock, deadline):
    """Read until EOF, reset or the deadline. Returns (data, end)."""
    data = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return data, "timeout"
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return data, "timeout"
        except ConnectionResetError:
            return data, "reset"
        if not chunk:
            return data, "eof"
        data += chunk


def payload_of(arguments):
    if arguments.send_file:
        with open(arguments.send_file, "rb") as file:
            payload = file.read()
    elif arguments.send_text is not None:
        payload = arguments.send_text.encode().decode("unicode_escape").encode("latin-1")
    elif arguments.send_random is not None:
        payload = os.urandom(arguments.send_random)
        if arguments.random_header:
            payload = bytes([1, 0, 0, 0]) + payload[4:]
        else:
            # Never a valid initiation prefix: the first byte is not 1.
            payload = bytes([payload[0] | 0x80]) + payload[1:]
    else:
        payload = b""
    if arguments.truncate is not None:
        payload = payload[:arguments.truncate]
    return payload


def probe_once(arguments, payload):
    started = time.monotonic()
    sock = socket.create_connection(address_of(arguments.connect), timeout=5)
    local_port = sock.getsockname()[1]
    end = None
    received = b""
    try:
        if payload:
            sock.sendall(payload)
    except (BrokenPipeError, ConnectionResetError):
        end = "reset"
    if end is None:
        received, end = read_until_closed(sock, started + arguments.wait_seconds)
    sock.close()
    return local_port, received, end, time.monotonic() - started


def run_probe(arguments):
    payload = payload_of(arguments)
    if arguments.count == 1:
        local_port, received, end, elapsed = probe_once(arguments, payload)
        print("local_port=%d" % local_port)
        print("received=%d" % len(received))
        print("received_hex=%s" % (received[:64].hex() or "-"))
        print("end=%s" % end)
        print("elapsed=%.3f" % elapsed)
        return 0

    received_total = 0
    closed = 0
    for _ in range(arguments.count):
        if arguments.send_random is not None:
            payload = payload_of(arguments)
        _, received, end, _ = probe_once(arguments, payload)
        received_total += len(received)
        if end in ("eof", "reset"):
            closed += 1
    print("count=%d" % arguments.count)
    print("received_total=%d" % received_total)
    print("closed=%d" % closed)
    print("not_closed=%d" % (arguments.count - closed))
    return 0


def run_stream(arguments):
    started = time.monotonic()
    deadline = started + arguments.wait_seconds
    sock = socket.create_connection(address_of(arguments.connect), timeout=5)
    local_port = sock.getsockname()[1]
    result = {}

    def reader():
        result["received"], result["end"] = read_until_closed(sock, deadline)

    # The reader sets its own timeouts; keep the sends blocking.
    sock.settimeout(None)
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()

    sent = b""
    send_error = "none"
    time.sleep(arguments.initial_delay)
    for _ in range(arguments.chunks):
        chunk = os.urandom(arguments.chunk_size)
        try:
            sock.sendall(chunk)
        except OSError as error:
            send_error = type(error).__name__
            break
        sent += chunk
        time.sleep(arguments.interval)
    if send_error == "none":
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError as error:
            send_error = type(error).__name__

    thread.join(max(0.0, deadline - time.monotonic()) + 1)
    received = result.get("received", b"")
    end = result.get("end", "timeout")
    sock.close()

    with open(arguments.sent_file, "wb") as file:
        file.write(sent)
    with open(arguments.received_file, "wb") as file:
        file.write(received)
    print("local_port=%d" % local_port)
    print("sent=%d" % len(sent))
    print("received=%d" % len(received))
    print("end=%s" % end)
    print("send_error=%s" % send_error)
    print("elapsed=%.3f" % (time.monotonic() - started))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    probe = commands.add_parser("probe", help="send one payload and record the reply")
    probe.add_argument("--connect", required=True, help="HOST:PORT")
    probe.add_argument("--send-file", help="send the bytes of this file")
    probe.add_argument("--send-text", help="send this text (backslash escapes allowed)")
    probe.add_argument("--send-random", type=int, help="send this many random bytes")
    probe.add_argument("--random-header", action="store_true",
                       help="with --send-random: start with an initiation header (1, 0, 0, 0)")
    probe.add_argument("--truncate", type=int, help="send only the first N bytes")
    probe.add_argument("--wait-seconds", type=float, default=3.0,
                       help="how long to wait for the server to close, in seconds")
    probe.add_argument("--count", type=int, default=1, help="number of probes in a row")

    stream = commands.add_parser("stream", help="send chunks and record the echo")
    stream.add_argument("--connect", required=True, help="HOST:PORT")
    stream.add_argument("--chunks", type=int, default=8)
    stream.add_argument("--chunk-size", type=int, default=100, help="bytes per chunk")
    stream.add_argument("--interval", type=float, default=0.05, help="seconds between chunks")
    stream.add_argument("--initial-delay", type=float, default=0.2,
                        help="seconds to wait before the first chunk, so the tunnel is open")
    stream.add_argument("--wait-seconds", type=float, default=10.0,
                        help="bound on the whole exchange, in seconds")
    stream.add_argument("--sent-file", required=True)
    stream.add_argument("--received-file", required=True)

    arguments = parser.parse_args()
    if arguments.command == "probe":
        return run_probe(arguments)
    return run_stream(arguments)


if __name__ == "__main__":
    sys.exit(main())
