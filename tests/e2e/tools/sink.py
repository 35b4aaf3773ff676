#!/usr/bin/env python3
"""TCP listener for the walguard tests, in the role of the forward_target.

It records every byte each connection sends to DIR/conn-N.bin, as it
arrives, and with --echo sends each chunk back. Events go to
DIR/events.log, one logfmt line each:

  event=accepted conn=N peer_port=P
  event=closed conn=N bytes=B end=eof|reset|error
"""

import argparse
import os
import socket
import threading
import time


class Sink:
    def __init__(self, directory, echo):
        self.directory = directory
        self.echo = echo
        self.lock = threading.Lock()
        self.events = open(os.path.join(directory, "events.log"), "a", buffering=1)
        self.count = 0

    def event(self, text):
        with self.lock:
            self.events.write(text + "\n")
            self.events.flush()

    def handle(self, number, sock):
        total = 0
        end = "eof"
        with open(os.path.join(self.directory, "conn-%d.bin" % number), "wb") as record:
            try:
                while True:
                    data = sock.recv(65536)
                    if not data:
                        break
                    record.write(data)
                    record.flush()
                    total += len(data)
                    if self.echo:
                        sock.sendall(data)
                if self.echo:
                    sock.shutdown(socket.SHUT_WR)
            except ConnectionResetError:
                end = "reset"
            except OSError as error:
                end = "error-%s" % error.errno
        sock.close()
        self.event("event=closed conn=%d bytes=%d end=%s" % (number, total, end))

    def serve(self, listener):
        while True:
            sock, address = listener.accept()
            with self.lock:
                self.count += 1
                number = self.count
            self.event("event=accepted conn=%d peer_port=%d" % (number, address[1]))
            threading.Thread(target=self.handle, args=(number, sock), daemon=True).start()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT")
    parser.add_argument("--directory", required=True, help="where events.log and conn-N.bin go")
    parser.add_argument("--echo", action="store_true", help="send every received chunk back")
    parser.add_argument("--lifetime", type=float, default=120.0,
                        help="exit after this many seconds, so that no run leaves it behind")
    arguments = parser.parse_args()

    host, port = arguments.listen.rsplit(":", 1)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, int(port)))
    listener.listen(64)

    sink = Sink(arguments.directory, arguments.echo)
    threading.Thread(target=sink.serve, args=(listener,), daemon=True).start()
    time.sleep(arguments.lifetime)


if __name__ == "__main__":
    main()
