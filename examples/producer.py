"""A producer in plain Python with nothing but a socket and msgpack: the whole
protocol a client in any language needs (docs/wire-protocol.md).

    python examples/producer.py [HOST] [PORT]
"""

import socket
import struct
import sys

import msgpack


def send_frame(sock: socket.socket, obj: dict) -> None:
    body = msgpack.packb(obj)
    sock.sendall(struct.pack(">I", len(body)) + body)


def read_frame(sock: socket.socket) -> dict:
    def exactly(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("server closed the connection")
            buf += chunk
        return buf

    (size,) = struct.unpack(">I", exactly(4))
    return msgpack.unpackb(exactly(size))


def main() -> None:
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 7400
    with socket.create_connection((host, port)) as sock:
        send_frame(sock, {"op": "hello", "version": 1, "client": "example-producer/1"})
        print(read_frame(sock))  # welcome
        events = [{"id": f"visit-{i}", "contact": "ann", "type": "store_visit",
                   "attrs": {"store_code": "MI", "minutes": 10 + i}} for i in range(3)]
        send_frame(sock, {"op": "events", "seq": 1, "events": events})
        print(read_frame(sock))  # ack, once the events are durable


if __name__ == "__main__":
    main()
