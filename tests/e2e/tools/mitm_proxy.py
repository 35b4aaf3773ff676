#!/usr/bin/env python3
"""Man-in-the-middle TCP relay between two walguard daemons, for tests.

It relays each accepted connection to --upstream and parses the walguard
TCP stream as docs/protocol.md describes it: the initiator's 112-byte
initiation, the responder's 52-byte response, then records made of a
2-byte big-endian length and that many bytes of ciphertext. Before each
accept it reads the plan file (one line), which sets what to do with the
new connection:

  pass                      relay every byte unchanged
  blackhole                 read the initiation, never connect upstream,
                            close after --blackhole-seconds
  MODE DIRECTION INDEX      tamper with transport record INDEX (0-based,
                            counted after the handshake message) going
                            DIRECTION (up: initiator to responder, down:
                            responder to initiator)

MODE is one of:
  flip         flip the low bit of one ciphertext byte
  flip-length  flip the low bit of the length prefix
  drop         leave the record out
  duplicate    send the record twice
  swap         send record INDEX + 1 before record INDEX
  replay       send, in place of record INDEX, record INDEX of the same
               direction from the most recent earlier connection

Every connection's initiation goes to DIR/conn-N.initiation. Events go to
DIR/events.log, one logfmt line each:

  event=accepted conn=N plan=... client_port=P
  event=upstream conn=N upstream_port=P     (local port toward the responder)
  event=tampered conn=N mode=... direction=... index=... record_len=L
  event=closed conn=N up_bytes=B down_bytes=B up_records=R down_records=R
      tampered=yes|no clean_body_bytes=B up_end=... down_end=...

clean_body_bytes is, for the tampered direction, the sum of the body
lengths (record length - 17) of the records that were relayed unchanged
and in order before the tampered one, and of the first copy of a
duplicated record. A receiver can decrypt at most that many bytes.
"""

import argparse
import os
import socket
import struct
import sys
import threading
import time

INITIATION_LEN = 112
RESPONSE_LEN = 52
RECORD_HEADER_LEN = 2
RECORD_OVERHEAD = 17  # type byte and Poly1305 tag, inside the ciphertext
MODES = ("flip", "flip-length", "drop", "duplicate", "swap", "replay")


class Plan:
    def __init__(self, text):
        words = text.split()
        self.text = "-".join(words) if words else "pass"
        self.kind = "pass"
        self.mode = None
        self.direction = None
        self.index = None
        if not words or words == ["pass"]:
            return
        if words == ["blackhole"]:
            self.kind = "blackhole"
            return
        if len(words) != 3 or words[0] not in MODES or words[1] not in ("up", "down"):
            raise ValueError("invalid plan %r" % text)
        self.kind = "tamper"
        self.mode, self.direction, self.index = words[0], words[1], int(words[2])


class EventLog:
    def __init__(self, path):
        self.lock = threading.Lock()
        self.file = open(path, "a", buffering=1)

    def write(self, event, **fields):
        parts = ["event=%s" % event] + ["%s=%s" % (key, value) for key, value in fields.items()]
        with self.lock:
            self.file.write(" ".join(parts) + "\n")
            self.file.flush()


class Relay:
    """One direction of one connection: parses and forwards, maybe tampers."""

    def __init__(self, connection, direction, source, destination, handshake_len):
        self.connection = connection
        self.direction = direction
        self.source = source
        self.destination = destination
        self.handshake_len = handshake_len
        self.bytes = 0
        self.records = []
        self.end = "running"
        self.held_record = None
        self.clean_body_bytes = 0
        self.tampering_done = False

    def send(self, data):
        if data:
            self.destination.sendall(data)

    def plan_applies(self):
        plan = self.connection.plan
        return plan.kind == "tamper" and plan.direction == self.direction

    def forward_record(self, record):
        index = len(self.records)
        self.records.append(record)
        plan = self.connection.plan
        if not self.plan_applies() or self.tampering_done:
            self.send(record)
            return
        body_len = len(record) - RECORD_HEADER_LEN - RECORD_OVERHEAD

        if self.held_record is not None:
            # Swap: this is record INDEX + 1; it goes first, then the held record.
            self.send(record)
            self.send(self.held_record)
            self.held_record = None
            self.tampering_done = True
            return
        if index < plan.index:
            self.send(record)
            self.clean_body_bytes += body_len
            return

        self.connection.log_tampered(plan, len(record))
        if plan.mode == "flip":
            changed = bytearray(record)
            changed[RECORD_HEADER_LEN + (len(record) - RECORD_HEADER_LEN) // 2] ^= 0x01
            self.send(bytes(changed))
        elif plan.mode == "flip-length":
            changed = bytearray(record)
            changed[1] ^= 0x01
            self.send(bytes(changed))
        elif plan.mode == "drop":
            pass
        elif plan.mode == "duplicate":
            self.send(record)
            self.send(record)
            self.clean_body_bytes += body_len
        elif plan.mode == "swap":
            self.held_record = record
            return
        elif plan.mode == "replay":
            earlier = self.connection.proxy.earlier_record(self.connection.number, self.direction, index)
            if earlier is None:
                self.connection.proxy.events.write(
                    "error", conn=self.connection.number,
                    reason="no-earlier-record-to-replay")
                self.send(record)
            else:
                self.send(earlier)
        self.tampering_done = True

    def run(self):
        buffer = b""
        handshake_seen = False
        try:
            while True:
                data = self.source.recv(65536)
                if not data:
                    self.end = "eof"
                    break
                self.bytes += len(data)
                buffer += data
                if not handshake_seen:
                    if len(buffer) < self.handshake_len:
                        continue
                    message = buffer[:self.handshake_len]
                    buffer = buffer[self.handshake_len:]
                    handshake_seen = True
                    self.send(message)
                while len(buffer) >= RECORD_HEADER_LEN:
                    (length,) = struct.unpack(">H", buffer[:RECORD_HEADER_LEN])
                    if len(buffer) < RECORD_HEADER_LEN + length:
                        break
                    record = buffer[:RECORD_HEADER_LEN + length]
                    buffer = buffer[RECORD_HEADER_LEN + length:]
                    self.forward_record(record)
            # The end of the stream: pass on what is still held, then EOF.
            if self.held_record is not None:
                self.send(self.held_record)
                self.held_record = None
            self.send(buffer)
            self.destination.shutdown(socket.SHUT_WR)
        except ConnectionResetError:
            self.end = "reset"
            self.connection.reset_both()
        except OSError as error:
            if self.end == "running":
                self.end = "error-%s" % (error.errno or "unknown")
            self.connection.reset_both()


class Connection:
    def __init__(self, proxy, number, client, plan):
        self.proxy = proxy
        self.number = number
        self.client = client
        self.plan = plan
        self.upstream = None
        self.up = None
        self.down = None
        self.reset_lock = threading.Lock()
        self.was_reset = False

    def log_tampered(self, plan, record_len):
        self.proxy.events.write("tampered", conn=self.number, mode=plan.mode,
                                direction=plan.direction, index=plan.index,
                                record_len=record_len)

    def reset_both(self):
        """Pass a reset on: close both sockets with RST."""
        with self.reset_lock:
            if self.was_reset:
                return
            self.was_reset = True
        for sock in (self.client, self.upstream):
            if sock is None:
                continue
            # SHUT_RD wakes the other direction's blocked recv(); close()
            # with a zero linger time then sends the RST.
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass
            sock.close()

    def save_initiation(self, data):
        path = os.path.join(self.proxy.directory, "conn-%d.initiation" % self.number)
        with open(path, "wb") as file:
            file.write(data)

    def run_blackhole(self):
        data = b""
        deadline = time.monotonic() + self.proxy.blackhole_seconds
        self.client.settimeout(0.2)
        while time.monotonic() < deadline:
            try:
                chunk = self.client.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        self.save_initiation(data[:INITIATION_LEN])
        self.client.close()
        self.proxy.events.write("closed", conn=self.number, up_bytes=len(data), down_bytes=0,
                                up_records=0, down_records=0, tampered="no",
                                clean_body_bytes=0, up_end="blackhole", down_end="blackhole")

    def run(self):
        if self.plan.kind == "blackhole":
            self.run_blackhole()
            return
        try:
            self.upstream = socket.create_connection(self.proxy.upstream, timeout=5)
            self.upstream.settimeout(None)
        except OSError as error:
            self.proxy.events.write("error", conn=self.number,
                                    reason="upstream-connect-failed-%s" % error.errno)
            self.client.close()
            return
        self.proxy.events.write("upstream", conn=self.number,
                                upstream_port=self.upstream.getsockname()[1])

        self.up = Relay(self, "up", self.client, self.upstream, INITIATION_LEN)
        self.down = Relay(self, "down", self.upstream, self.client, RESPONSE_LEN)
        original_send = self.up.send
        initiation_saved = []

        def send_and_save(data):
            # The first bytes sent up are the initiation, as one message.
            if not initiation_saved:
                initiation_saved.append(True)
                self.save_initiation(data)
            original_send(data)

        self.up.send = send_and_save
        down_thread = threading.Thread(target=self.down.run, daemon=True)
        down_thread.start()
        self.up.run()
        down_thread.join()
        self.proxy.remember(self.number, {"up": self.up.records, "down": self.down.records})

        tampered = self.plan.kind == "tamper" and (self.up.tampering_done or self.down.tampering_done)
        relay = self.up if self.plan.direction != "down" else self.down
        self.proxy.events.write(
            "closed", conn=self.number, up_bytes=self.up.bytes, down_bytes=self.down.bytes,
            up_records=len(self.up.records), down_records=len(self.down.records),
            tampered="yes" if tampered else "no", clean_body_bytes=relay.clean_body_bytes,
            up_end=self.up.end, down_end=self.down.end)
        for sock in (self.client, self.upstream):
            sock.close()


class Proxy:
    def __init__(self, arguments):
        self.directory = arguments.directory
        self.plan_file = arguments.plan_file
        host, port = arguments.upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.blackhole_seconds = arguments.blackhole_seconds
        self.events = EventLog(os.path.join(self.directory, "events.log"))
        self.lock = threading.Lock()
        self.history = {}
        self.count = 0

    def remember(self, number, records):
        with self.lock:
            self.history[number] = records

    def earlier_record(self, number, direction, index):
        with self.lock:
            for earlier in sorted(self.history, reverse=True):
                if earlier < number and index < len(self.history[earlier][direction]):
                    return self.history[earlier][direction][index]
        return None

    def read_plan(self):
        try:
            with open(self.plan_file) as file:
                return Plan(file.read())
        except FileNotFoundError:
            return Plan("pass")

    def serve(self, listener):
        while True:
            client, address = listener.accept()
            self.count += 1
            try:
                plan = self.read_plan()
            except ValueError as error:
                self.events.write("error", conn=self.count, reason="bad-plan")
                print(error, file=sys.stderr)
                client.close()
                continue
            self.events.write("accepted", conn=self.count, plan=plan.text, client_port=address[1])
            connection = Connection(self, self.count, client, plan)
            threading.Thread(target=connection.run, daemon=True).start()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT to accept initiators on")
    parser.add_argument("--upstream", required=True, help="HOST:PORT of the responder")
    parser.add_argument("--directory", required=True, help="where events.log and initiations go")
    parser.add_argument("--plan-file", required=True, help="file with the plan for the next connection")
    parser.add_argument("--blackhole-seconds", type=float, default=1.0)
    parser.add_argument("--lifetime", type=float, default=120.0,
                        help="exit after this many seconds, so that no run leaves it behind")
    arguments = parser.parse_args()

    host, port = arguments.listen.rsplit(":", 1)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, int(port)))
    listener.listen(64)

    proxy = Proxy(arguments)
    threading.Thread(target=proxy.serve, args=(listener,), daemon=True).start()
    time.sleep(arguments.lifetime)


if __name__ == "__main__":
    main()
