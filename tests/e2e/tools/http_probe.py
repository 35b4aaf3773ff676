#!/usr/bin/env python3
"""Send raw requests to walguard's metrics listener, for the end-to-end tests.

Usage:
  http_probe.py send HOST PORT TEXT   send TEXT (Python escapes such as \\r\\n
                                      are decoded) and print the status line
                                      and the headers of the response, or
                                      "closed without a response"
  http_probe.py hold HOST PORT COUNT  open COUNT connections that send
                                      nothing, print "holding COUNT", then
                                      wait up to 60 s and print for each how
                                      long the server took to close it

Only for the loopback address of a namespace that the test itself made.
"""

import socket
import sys
import time


def read_response(connection):
    data = b""
    connection.settimeout(10)
    try:
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return data


def send(host, port, text):
    payload = text.encode("latin-1").decode("unicode_escape").encode("latin-1")
    with socket.create_connection((host, port), timeout=10) as connection:
        connection.sendall(payload)
        data = read_response(connection)
    if not data:
        print("closed without a response")
        return
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    print(head)


def hold(host, port, count):
    connections = [socket.create_connection((host, port), timeout=10) for _ in range(count)]
    start = time.monotonic()
    print(f"holding {count}", flush=True)
    for connection in connections:
        connection.settimeout(max(0.1, 60 - (time.monotonic() - start)))
        try:
            data = connection.recv(4096)
            ending = "closed" if not data else f"sent {len(data)} bytes"
        except ConnectionResetError:
            ending = "reset"
        except socket.timeout:
            ending = "still open"
        print(f"{ending} after {time.monotonic() - start:.1f} s", flush=True)
        connection.close()


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "send":
        send(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif len(sys.argv) == 5 and sys.argv[1] == "hold":
        hold(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
