"""A FHIR server that misbehaves on purpose, on a raw socket (an HTTP framework would not
let it trickle headers or send a body without end).

    with MisbehavingFhir("trickle") as server:   # Patient reads misbehave, the rest is normal
        ... fhirServer = server.url ...
        server.mode = "healthy"

Modes (what a read of the Patient gets; every other query gets the normal patient's data):
  healthy         the patient, at once
  gzip_bomb       a gzip body of 200 MiB of zeros (about 200 KB on the wire)
  endless         a JSON body that never ends
  trickle         a JSON body, one byte every 0.5 s
  trickle_headers the status line, then one header byte every 0.5 s
  many_entries    a Bundle of 100,000 entries
  deep_1000       a Patient whose extensions nest 1,000 levels deep
  deep_150        a Patient whose extensions nest 150 levels deep
"""
from __future__ import annotations

import functools
import json
import socket
import threading
import time
import zlib
from urllib.parse import parse_qs, urlsplit

from tests.core.builders import complete_prefetch, patient

LAB_CODES = {"2160-0": "creatinine", "98979-8": "egfr", "2823-3": "potassium", "19123-9": "magnesium"}
TRICKLE_SECONDS = 0.5


@functools.cache
def gzip_bomb() -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    zeros = bytes(1024 * 1024)
    return b"".join([*(compressor.compress(zeros) for _ in range(200)), compressor.flush()])


@functools.cache
def many_entries_bundle(count: int = 100_000) -> bytes:
    entry = {"resource": {"resourceType": "Patient", "id": "pat-1"}}
    return json.dumps({"resourceType": "Bundle", "type": "searchset", "entry": [entry] * count}).encode()


def deep_patient(levels: int) -> bytes:
    """A Patient with extensions nested about `levels` JSON containers deep (built as text: the
    json module cannot encode that deep)."""
    pairs = (levels - 2) // 2
    leaf = '{"url": "http://example.org/leaf", "valueString": "x"}'
    nested = '{"url": "http://example.org/nested", "extension": [' * pairs + leaf + "]}" * pairs
    return json.dumps(patient())[:-1].encode() + f', "extension": [{nested}]}}'.encode()


def normal_answer(path: str, query: str) -> dict:
    data = complete_prefetch()
    if path.endswith("/Patient/pat-1"):
        return data["patient"]
    if path.endswith("/Condition"):
        return data["conditions"]
    if path.endswith("/MedicationRequest"):
        return data["meds"]
    codes = parse_qs(query).get("code", [""])[0]
    key = next((k for code, k in LAB_CODES.items() if code in codes), None)
    return data[key] if key else {"resourceType": "Bundle", "type": "searchset", "entry": []}


class MisbehavingFhir:
    def __init__(self, mode: str):
        self.mode = mode
        self.open_connections = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/fhir"
        self._closed = False
        gzip_bomb(), many_entries_bundle()  # built before serving, not within a call's budget
        threading.Thread(target=self._accept, daemon=True, name="misbehaving-fhir").start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            self.open_connections += 1
        try:
            with conn:
                conn.settimeout(60)
                target = self._read_request(conn)
                if target is not None:
                    self._answer(conn, target)
        except OSError:  # the client hung up: what a bounded client does
            pass
        finally:
            with self._lock:
                self.open_connections -= 1

    @staticmethod
    def _read_request(conn: socket.socket) -> str | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        return data.split(b" ", 2)[1].decode()

    def _answer(self, conn: socket.socket, target: str) -> None:
        parts = urlsplit(target)
        mode = self.mode if parts.path.endswith("/Patient/pat-1") else "healthy"
        if mode == "healthy":
            _send(conn, json.dumps(normal_answer(parts.path, parts.query)).encode())
        elif mode == "gzip_bomb":
            _send(conn, gzip_bomb(), "Content-Encoding: gzip\r\n")
        elif mode == "many_entries":
            _send(conn, many_entries_bundle())
        elif mode in ("deep_1000", "deep_150"):
            _send(conn, deep_patient(int(mode.split("_")[1])))
        elif mode == "endless":
            conn.sendall(_head() + b'{"resourceType": "Patient", "id": "pat-1", "text": "')
            while True:
                conn.sendall(b"a" * 65536)
        elif mode == "trickle":
            conn.sendall(_head())
            for byte in json.dumps(patient()).encode() * 1000:
                conn.sendall(bytes([byte]))
                time.sleep(TRICKLE_SECONDS)
        elif mode == "trickle_headers":
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while True:
                conn.sendall(b"a")
                time.sleep(TRICKLE_SECONDS)
        else:
            raise ValueError(mode)

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def __enter__(self) -> "MisbehavingFhir":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _head(extra: str = "", length: int | None = None) -> bytes:
    size = f"Content-Length: {length}\r\n" if length is not None else ""
    return (f"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\n{size}{extra}"
            "Connection: close\r\n\r\n").encode()


def _send(conn: socket.socket, body: bytes, extra: str = "") -> None:
    conn.sendall(_head(extra, len(body)) + body)
