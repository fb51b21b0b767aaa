#!/usr/bin/env python3
"""Hostile and scripted clients (and a hostile database) for test/http_shim.sh.

Everything runs on 127.0.0.0/8 and stops by itself after a bounded time.

  flood PORT COUNT ADDRESSES SECONDS
      Keeps COUNT hostile connections open to the shim from 127.0.0.1 up to
      127.0.0.ADDRESSES, in turn idle, sending a request head one byte at a
      time, and announcing a huge body sent one byte at a time; a connection
      the shim closes is opened again 0.25 s later.  Prints "ready" once all
      are open, and a summary when SECONDS have passed or SIGTERM came.
  slow PORT KIND SECONDS
      One connection, KIND idle, head (head trickled) or body (body announced
      and trickled).  Prints "closed <status>" (status "-" if none came)
      once the shim closes it, or "open" if it is still open after SECONDS.
  cap PORT COUNT FIRST_SOURCE SOURCES
      Opens COUNT idle connections 10 ms apart, the i-th from FIRST_SOURCE
      plus i modulo SOURCES, and prints which are still open a moment later,
      as ranges of their indices ("4-11").
  blackhole PORT SECONDS STATUS_FILE
      A database that accepts connections and never answers; STATUS_FILE
      always holds how many connections to it are open.
  shutdown PORT SECRET PID
      Keeps connections alive, sends the shim SIGTERM while a request is in
      flight (the caller holds a lock that makes the export wait) and prints
      what happens to new, idle, half-sent and in-flight connections, and
      whether the shim exits within 3 s of answering the one in flight.
"""
import ipaddress
import os
import select
import signal
import socket
import sys
import time

EXPORT = "/api/v1/cron/export-interactions"
CLEANUP = "/api/v1/cron/cleanup"


def connect(port, source="127.0.0.1", timeout=2.0):
    """Returns a connected socket from source, or None when refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.bind((source, 0))
    try:
        sock.connect(("127.0.0.1", port))
    except OSError:
        sock.close()
        return None
    return sock


def closed_by_peer(sock):
    """Whether the other side closed (or reset) a socket we only write to;
    what it sent before (a 413, say) is read and dropped."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(65536) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def ask(sock, data, timeout):
    """Sends a request and reads the answer's status, or "closed"."""
    try:
        sock.sendall(data)
    except OSError:
        return "closed"
    return read_response(sock, timeout)[0]


def request(path, secret=None):
    """A keep-alive GET, with the secret when given."""
    auth = f"Authorization: Bearer {secret}\r\n" if secret else ""
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode()


def read_response(sock, timeout):
    """Reads one response: (status, headers) or ("closed", {}) when the
    connection ends first, ("timeout", {}) when nothing whole comes."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return "closed", {}
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in
                   (line.split(":", 1) for line in lines[1:])}
        while len(body) < int(headers.get("content-length", "0")):
            chunk = sock.recv(65536)
            if not chunk:
                return "closed", {}
            body += chunk
        return lines[0].split(" ")[1], headers
    except socket.timeout:
        return "timeout", {}
    except OSError:
        return "closed", {}


class Hostile:
    """One hostile connection of a kind: idle, head or body."""
    HEADS = {
        "idle": b"",
        "head": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ",
        "body": f"POST {EXPORT} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n".encode(),
    }

    def __init__(self, port, kind, source):
        self.port, self.kind, self.source = port, kind, source
        self.sock = None
        self.reopen_at = 0.0

    def open(self):
        self.sock = connect(self.port, self.source, timeout=1.0)
        if self.sock is not None:
            self.sock.setblocking(False)
            self.send(self.HEADS[self.kind])
        return self.sock is not None

    def send(self, data):
        try:
            if data:
                self.sock.send(data)
        except OSError:
            pass

    def trickle(self):
        if self.kind != "idle":
            self.send(b"a")

    def close(self):
        self.sock.close()
        self.sock = None


def flood(port, count, addresses, seconds):
    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(True))
    kinds = ["idle", "head", "body"]
    clients = [Hostile(port, kinds[i % 3], f"127.0.0.{1 + i % addresses}") for i in range(count)]
    end = time.monotonic() + seconds
    opened = closed = 0
    for client in clients:
        opened += client.open()
    print("ready", flush=True)
    next_trickle = time.monotonic()
    while time.monotonic() < end and not stopped:
        now = time.monotonic()
        for client in clients:
            if client.sock is None:
                if now >= client.reopen_at:
                    opened += client.open()
                    client.reopen_at = now + 0.25
            elif closed_by_peer(client.sock):
                client.close()
                closed += 1
                client.reopen_at = now + 0.25
            elif now >= next_trickle:
                client.trickle()
        if now >= next_trickle:
            next_trickle = now + 0.5
        time.sleep(0.02)
    print(f"opened {opened} hostile connections, the shim closed {closed}", flush=True)


def slow(port, kind, seconds):
    client = Hostile(port, kind, "127.0.0.1")
    if not client.open():
        print("refused")
        return
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        readable, _, _ = select.select([client.sock], [], [], 0.3)
        if readable:
            try:
                data = client.sock.recv(65536)
            except OSError:
                data = b""
            status = data.split(b" ")[1].decode() if data.startswith(b"HTTP/") else "-"
            print(f"closed {status}")
            return
        client.trickle()
    print("open")


def ranges(indices):
    """[4, 5, 6, 9] -> "4-6,9"."""
    parts, start = [], None
    for i, index in enumerate(indices):
        if start is None:
            start = index
        if i + 1 == len(indices) or indices[i + 1] != index + 1:
            parts.append(str(start) if start == index else f"{start}-{index}")
            start = None
    return ",".join(parts) or "none"


def cap(port, count, first_source, sources):
    first = ipaddress.IPv4Address(first_source)
    socks = []
    for i in range(count):
        socks.append(connect(port, str(first + i % sources)))
        time.sleep(0.01)
    time.sleep(0.3)
    print(ranges([i for i, s in enumerate(socks) if s is not None and not closed_by_peer(s)]))
    for s in socks:
        if s is not None:
            s.close()


def blackhole(port, seconds, status_file):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    accepted = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        readable, _, _ = select.select([listener] + accepted, [], [], 0.1)
        for sock in readable:
            if sock is listener:
                accepted.append(listener.accept()[0])
                continue
            try:
                gone = sock.recv(65536) == b""
            except OSError:
                gone = True
            if gone:
                accepted.remove(sock)
                sock.close()
        with open(status_file + ".tmp", "w") as f:
            f.write(f"{len(accepted)}\n")
        os.replace(status_file + ".tmp", status_file)


def exits_within(pid, seconds):
    """Whether process pid ends (or is a zombie) within seconds."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


def shutdown(port, secret, pid):
    kept = connect(port)
    idle = connect(port)
    for name, sock in (("kept", kept), ("idle", idle)):
        print(f"{name} before: {ask(sock, request('/healthz'), 5)}")
    half = connect(port)
    half.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    # Kept open: the old shim counted a connection sending a body as a
    # request in flight and waited for it on SIGTERM.
    body = connect(port)
    body.sendall(f"POST {EXPORT} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\na".encode())
    kept.sendall(request(EXPORT, secret))
    time.sleep(0.5)
    os.kill(pid, signal.SIGTERM)
    time.sleep(0.3)
    fresh = connect(port, timeout=2.0)
    if fresh is None:
        print("new connection: refused")
    else:
        print(f"new connection: accepted, answer {ask(fresh, request('/healthz'), 2)}")
    print(f"idle after: {ask(idle, request(CLEANUP, secret), 2)}")
    print(f"half-sent after: {'closed' if closed_by_peer(half) else 'open'}")
    status, headers = read_response(kept, 10)
    print(f"in flight: {status} connection {headers.get('connection', 'keep-alive').lower()}")
    print(f"kept after: {ask(kept, request(CLEANUP, secret), 2)}")
    # The other connections stay open meanwhile: they must not delay the exit.
    print(f"exit after the answer: {'within 3 s' if exits_within(pid, 3) else 'no'}")
    body.close()


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "flood":
        flood(int(args[0]), int(args[1]), int(args[2]), float(args[3]))
    elif command == "slow":
        slow(int(args[0]), args[1], float(args[2]))
    elif command == "cap":
        cap(int(args[0]), int(args[1]), args[2], int(args[3]))
    elif command == "blackhole":
        blackhole(int(args[0]), float(args[1]), args[2])
    elif command == "shutdown":
        shutdown(int(args[0]), args[1], int(args[2]))
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
