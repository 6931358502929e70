"""A scripted OpenAI-compatible chat server (real HTTP, stdlib) for the failures a real model cannot be
made to produce on demand: replies that merge, drop or split cues, 5xx, hangs, a server that dies.

``script(request_number, body, ids)`` returns what to answer: a dict of
translations (sent as the JSON reply), a string (sent as the raw content),
an ``int`` (an HTTP status with an error body), ``("error", status, message)``,
or ``("sleep", seconds, then)``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Script = Callable[[int, dict, list[str]], Any]


def echo(number: int, body: dict, ids: list[str]) -> dict[str, str]:
    """A well-behaved translator: every cue, upper-cased, tagged with its id."""
    texts = asked(body)
    return {i: f"T{i} " + texts[i].upper() for i in ids}


def asked(body: dict) -> dict[str, str]:
    """The cues a request asks to translate (the JSON object in the user message)."""
    content = body["messages"][-1]["content"]
    match = re.search(r"Subtitles to translate, as a JSON object from subtitle id to text:\n(\{.*?\})\n", content, re.S)
    return json.loads(match.group(1))


class ScriptedServer:
    def __init__(self, script: Script = echo, model: str = "scripted-mt") -> None:
        self.script = script
        self.model = model
        self.requests: list[dict] = []
        self.inflight = 0
        self.peak_inflight = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, data: dict) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                if self.path.endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": outer.model, "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer._lock:
                    number = len(outer.requests)
                    outer.requests.append(body)
                    outer.inflight += 1
                    outer.peak_inflight = max(outer.peak_inflight, outer.inflight)
                try:
                    ids = list(asked(body))
                    answer = outer.script(number, body, ids)
                    while isinstance(answer, tuple) and answer[0] == "sleep":
                        time.sleep(answer[1])
                        answer = answer[2]
                    if isinstance(answer, int):
                        answer = ("error", answer, f"scripted {answer}")
                    if isinstance(answer, tuple) and answer[0] == "error":
                        self._send(answer[1], {"error": {"message": answer[2]}})
                        return
                    content = answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)
                    self._send(200, {
                        "id": f"chat-{number}", "object": "chat.completion", "model": outer.model,
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                     "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
                    })
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with outer._lock:
                        outer.inflight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "ScriptedServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
