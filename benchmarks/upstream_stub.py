"""A minimal OpenAI-compatible upstream for the overhead benchmark: plain asyncio HTTP/1.1 with keep-alive,
answering every chat completion at once with the same small body, so what is measured is the target in front.

`python -m benchmarks.upstream_stub --port N` (loopback only). Not a general server: it reads one request at a
time per connection, needs `Content-Length` on bodies, and answers `GET /v1/models` and
`POST /v1/chat/completions` (with `usage.cost`, as providers that report cost do).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Final

import orjson

HOST: Final = "127.0.0.1"
MAX_HEADER_BYTES: Final = 64 * 1024


def completion_body(model: str) -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"},
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13, "cost": 0.00001},
        }
    )


def models_body(models: list[str]) -> bytes:
    return orjson.dumps({"object": "list", "data": [{"id": m, "object": "model", "owned_by": "stub"} for m in models]})


def response(status: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body


class Stub:
    """Answers requests on one connection after another; the bodies are built once per model."""

    def __init__(self, models: list[str]) -> None:
        self._models = models
        self._answers: dict[str, bytes] = {}
        self._listing = response("200 OK", models_body(models))

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if len(head) > MAX_HEADER_BYTES:
                    break
                request_line, _, headers = head.decode("latin-1").partition("\r\n")
                body = await reader.readexactly(_content_length(headers))
                writer.write(self._answer(request_line, body))
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    def _answer(self, request_line: str, body: bytes) -> bytes:
        method, path, _ = request_line.split(" ", 2)
        if method == "GET" and path.endswith("/models"):
            return self._listing
        if method != "POST" or not path.endswith("/chat/completions"):
            return response("404 Not Found", b'{"error": {"message": "unknown route", "type": "not_found"}}')
        model = str(orjson.loads(body).get("model", "stub")) if body else "stub"
        if model not in self._answers:
            self._answers[model] = response("200 OK", completion_body(model))
        return self._answers[model]


def _content_length(headers: str) -> int:
    for line in headers.split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return int(value.strip())
    return 0


async def serve(port: int, models: list[str]) -> None:
    server = await asyncio.start_server(Stub(models).handle, HOST, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--models", default="stub-model", help="comma-separated model ids for /v1/models")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.port, args.models.split(",")))
    except KeyboardInterrupt:
        return


if __name__ == "__main__":
    main()
