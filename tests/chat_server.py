"""A real OpenAI-compatible chat-completions HTTP server on 127.0.0.1, for tests.

Start it from a test with :class:`ChatServer` (a subprocess, so it can really die) or run it by hand:
``python tests/chat_server.py --port 8000``. It answers ``POST /v1/chat/completions`` with:

* the answer of a *responder* (``--responder module:attr``: a function ``messages -> str``, or a class
  whose instances have ``complete(messages)``), e.g. ``train.synth.rules:RulesGenerator``;
* else the scripted ``--responses`` (a JSON list, cycled), else an echo of the last user message.

Failure modes: ``die_after N`` kills the process (no response) on request N+1; ``malformed_every K``
returns a truncated, invalid JSON body for prompts whose hash is divisible by K (so retries fail too);
``foreign_every K`` answers such prompts in another API's shape (Ollama's ``/api/chat``: the answer in
``message.content``, no ``choices``); ``garbage_every K`` returns a valid completion whose content is not
JSON for such prompts; ``fail_first N`` answers the first N requests with HTTP 503. Every request is
logged, once answered, as a JSON line (``n``, prompt ``key``, ``mode``) to the log file.

Example:
    >>> with ChatServer(responses=["hello"]) as server:  # doctest: +SKIP
    ...     server.url
    'http://127.0.0.1:54321/v1'
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def prompt_key(messages: list[dict]) -> str:
    """The hash that identifies a prompt in the server log and decides failure modes."""
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode("utf-8")).hexdigest()


class ChatServer:
    """Runs ``tests/chat_server.py`` in a subprocess; use as a context manager or call start/stop.

    Args:
        responder: ``"module:attr"`` answering the messages (see the module docstring).
        responses: Scripted answers, cycled, when there is no responder.
        die_after: Die (exit without answering) on the request after this many.
        malformed_every: Invalid JSON bodies for prompts whose hash is divisible by this.
        garbage_every: Non-JSON message contents for prompts whose hash is divisible by this.
        foreign_every: Replies in another API's shape for prompts whose hash is divisible by this.
        fail_first: HTTP 503 for this many first requests.
    """

    def __init__(
        self,
        *,
        responder: str | None = None,
        responses: list[str] | None = None,
        die_after: int | None = None,
        malformed_every: int = 0,
        garbage_every: int = 0,
        foreign_every: int = 0,
        fail_first: int = 0,
    ):
        self.options = {
            "responder": responder,
            "responses": responses,
            "die_after": die_after,
            "malformed_every": malformed_every,
            "garbage_every": garbage_every,
            "foreign_every": foreign_every,
            "fail_first": fail_first,
        }
        self.log_path = Path(tempfile.mkdtemp(prefix="chat-server-")) / "requests.jsonl"
        self.process: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 30.0) -> ChatServer:
        command = [
            sys.executable,
            str(Path(__file__)),
            "--port",
            "0",
            "--log",
            str(self.log_path),
            "--config",
            json.dumps(self.options),
        ]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        }
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        line = [""]
        reader = threading.Thread(
            target=lambda: line.__setitem__(0, self.process.stdout.readline()), daemon=True
        )
        reader.start()
        reader.join(timeout)
        if not line[0].startswith("PORT "):
            self.stop()
            raise RuntimeError(f"chat server did not start (said {line[0]!r})")
        self.port = int(line[0].split()[1])
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        if self.process is not None and self.process.stdout:
            self.process.stdout.close()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def requests(self) -> list[dict]:
        """The requests answered so far (``n``, ``key``, ``mode``)."""
        if not self.log_path.exists():
            return []
        return [
            json.loads(line)
            for line in self.log_path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _load_responder(spec: str | None):
    if not spec:
        return None
    module, _, attr = spec.partition(":")
    target = getattr(importlib.import_module(module), attr)
    return target().complete if isinstance(target, type) else target


def _handler(options: dict, log_path: str):
    responder = _load_responder(options.get("responder"))
    responses = options.get("responses") or []
    lock = threading.Condition()
    state = {"count": 0, "in_flight": 0}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            if not self.path.endswith("/chat/completions"):
                self._send(404, b'{"error": {"message": "not found"}}')
                return
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            messages = request.get("messages", [])
            key = prompt_key(messages)
            with lock:
                state["count"] += 1
                number = state["count"]
                if options.get("die_after") is not None and number > options["die_after"]:
                    # Die mid-run: this request gets no response; those already being answered finish first,
                    # so the log holds exactly the requests that were answered.
                    lock.wait_for(lambda: state["in_flight"] == 0, timeout=10)
                    os._exit(3)
                state["in_flight"] += 1
            try:
                self._answer(request, messages, key, number)
            finally:
                with lock:
                    state["in_flight"] -= 1
                    lock.notify_all()

        def _answer(self, request: dict, messages: list[dict], key: str, number: int) -> None:
            bucket = int(key[:8], 16)
            mode = "ok"
            if number <= options.get("fail_first", 0):
                self._log(number, key, "503")
                self._send(503, b'{"error": {"message": "overloaded"}}')
                return
            if options.get("malformed_every") and bucket % options["malformed_every"] == 0:
                mode = "malformed"
            elif options.get("foreign_every") and bucket % options["foreign_every"] == 0:
                mode = "foreign"
            elif options.get("garbage_every") and bucket % options["garbage_every"] == 0:
                mode = "garbage"
            if mode == "malformed":
                self._log(number, key, mode)
                self._send(200, b'{"id": "x", "choices": [{"message": {"content": "trunc')
                return
            if mode == "garbage":
                content = "I am sorry, I cannot produce JSON for that. Here is prose instead."
            elif responder is not None:
                content = responder(messages)
            elif responses:
                content = responses[(number - 1) % len(responses)]
            else:
                content = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
            if mode == "foreign":
                self._log(number, key, mode)
                message = {"role": "assistant", "content": content}
                body = {"model": request.get("model", "test"), "message": message, "done": True}
                self._send(200, json.dumps(body).encode("utf-8"))
                return
            body = {
                "id": f"chatcmpl-{number}",
                "object": "chat.completion",
                "model": request.get("model", "test"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            }
            self._log(number, key, mode)
            self._send(200, json.dumps(body).encode("utf-8"))

        def _log(self, number: int, key: str, mode: str) -> None:
            with lock, open(log_path, "a", encoding="utf-8") as log:
                log.write(json.dumps({"n": number, "key": key, "mode": mode}) + "\n")

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible chat-completions test server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", default=os.devnull)
    parser.add_argument("--config", default="{}", help="JSON options (responder, responses, die_after, ...)")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _handler(json.loads(args.config), args.log))
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
