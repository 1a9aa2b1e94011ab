"""The bundled fixture patients as a FHIR server answering every request after 200 ms, cheap
enough never to be the limit of bench/servers.py's fetch scenario: one asyncio process,
each distinct GET rendered once by the fixture app (bench/fixture_fhir.py) and its
response bytes reused; a request costs a header read, a sleep and a write.

    python -m bench.slow_fixture_fhir --port 8090
"""
from __future__ import annotations

import argparse
import asyncio

from bench.fixture_fhir import app as fixtures

LATENCY_SECONDS = 0.2


class Responses:
    """Whole HTTP/1.1 responses (keep-alive), by request target, rendered on first use."""

    def __init__(self, base_url: str):
        self._client = fixtures.test_client()
        self._base_url = base_url
        self._rendered: dict[bytes, bytes] = {}

    def __call__(self, target: bytes) -> bytes:
        if target not in self._rendered:
            answer = self._client.get(target.decode("latin-1"), base_url=self._base_url)
            body = answer.get_data()
            head = (f"HTTP/1.1 {answer.status}\r\nContent-Type: {answer.content_type}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n")
            self._rendered[target] = head.encode("latin-1") + body
        return self._rendered[target]


async def serve(host: str, port: int) -> None:
    responses = Responses(f"http://{host}:{port}")

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # GETs only: a request is its head
                head = await reader.readuntil(b"\r\n\r\n")
                await asyncio.sleep(LATENCY_SECONDS)
                writer.write(responses(head.split(b" ", 2)[1]))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(connection, host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
