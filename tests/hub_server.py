"""A Hugging Face Hub test double: a real HTTP server on 127.0.0.1 that keeps model repos in memory.

It speaks the subset of the Hub protocol that ``huggingface_hub`` 2.4 (and through it
``transformers`` 5.23 and ``sentence-transformers`` 6.2) uses to publish and to load a model repo::

    GET       /api/whoami-v2
    GET       /api/agent-harnesses                      (registry huggingface_hub reads for its User-Agent)
    POST      /api/repos/create                         {"name", "organization", "visibility"}
    POST      /api/validate-yaml                        (README.md model-card metadata)
    POST      /api/models/{repo_id}/branch/{branch}
    POST      /api/models/{repo_id}/preupload/{rev}     -> uploadMode of each file
    POST      /api/models/{repo_id}/commit/{rev}        NDJSON: header line, then one line per file
    GET       /api/models/{repo_id}[/revision/{rev}]    model info: sha, private, siblings
    GET       /api/models/{repo_id}/tree/{rev}[/{dir}]  tree listing (?recursive=true)
    GET|HEAD  /{repo_id}/resolve/{rev}/{path}           file, with ETag, X-Repo-Commit, Content-Length

Only regular git files are stored: ``preupload`` answers ``uploadMode: "regular"`` for every file,
which makes ``huggingface_hub`` inline each file, base64-encoded, in the commit NDJSON, so no LFS or
Xet storage is needed (the real Hub answers "lfs" for large or binary files). Errors carry the
``X-Error-Code`` / ``X-Error-Message`` headers ``huggingface_hub`` maps to its exception classes.

Tokens map to users; write routes need the repo owner's token, private repos read like missing ones
to anyone else, and an unknown token gets 401 everywhere. ``fail(route, status, times)`` makes the
next requests to a route fail, ``lose_answer(route)`` carries the next one out but drops its answer,
``count(route)`` tells how often it was called, ``received_paths`` holds every file path a client
announced (preupload) or sent (commit), and requests to routes this double does not know are kept in
``unknown_requests``.

Example:
    >>> from huggingface_hub import HfApi
    >>> with HubServer() as hub:
    ...     api = HfApi(endpoint=hub.url, token=hub.token)
    ...     url = api.create_repo("cre-tester/demo")
    ...     hub.fail("commit", status=503)  # the next commit answers 503
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_TOKEN = "hf_test_write_token"
DEFAULT_USER = "cre-tester"
LOSE_ANSWER = "lose-answer"


def git_blob_id(content: bytes) -> str:
    """The git object id of a file, which the Hub uses as ETag and oid of regular files."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Commit:
    oid: str
    message: str
    files: dict[str, bytes]


@dataclass
class Repo:
    repo_id: str
    owner: str
    private: bool
    created_at: str
    branches: dict[str, str] = field(default_factory=dict)  # branch name -> commit oid
    commits: dict[str, Commit] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit:
        """The commit a branch name or commit oid points to."""
        oid = self.branches.get(revision, revision)
        if oid not in self.commits:
            raise HubError(404, f"Invalid rev id: {revision}", code="RevisionNotFound")
        return self.commits[oid]

    def add_commit(self, branch: str, message: str, files: dict[str, bytes]) -> Commit:
        parent = self.branches.get(branch, "")
        digest = hashlib.sha1(f"{parent}\n{message}".encode())
        for path in sorted(files):
            digest.update(f"\n{path} {git_blob_id(files[path])}".encode())
        commit = Commit(digest.hexdigest(), message, files)
        self.commits[commit.oid] = commit
        self.branches[branch] = commit.oid
        return commit


class HubError(Exception):
    """An HTTP error answer, with the headers huggingface_hub reads to pick its exception class."""

    def __init__(
        self, status: int, message: str, code: str | None = None, headers: dict | None = None, **body: object
    ):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}
        self.body = {"error": message, **body}


# (method, route name, path pattern). Repo ids are "namespace/name"; revisions arrive URL-quoted.
REPO = r"(?P<repo_id>[^/]+/[^/]+)"
ROUTES = [
    ("GET", "whoami", r"/api/whoami-v2"),
    ("GET", "agent_harnesses", r"/api/agent-harnesses"),
    ("POST", "create", r"/api/repos/create"),
    ("POST", "validate_yaml", r"/api/validate-yaml"),
    ("POST", "branch", rf"/api/models/{REPO}/branch/(?P<rev>[^/]+)"),
    ("POST", "preupload", rf"/api/models/{REPO}/preupload/(?P<rev>[^/]+)"),
    ("POST", "commit", rf"/api/models/{REPO}/commit/(?P<rev>[^/]+)"),
    ("GET", "info", rf"/api/models/{REPO}(?:/revision/(?P<rev>[^/]+))?"),
    ("GET", "tree", rf"/api/models/{REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?"),
    ("GET", "resolve", rf"/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)"),
    ("HEAD", "resolve", rf"/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)"),
]


def _match_route(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """The route name and the URL-unquoted path parameters of a request, or None."""
    for route_method, route, pattern in ROUTES:
        match = re.fullmatch(pattern, path)
        if route_method == method and match:
            return route, {
                key: unquote(value) for key, value in match.groupdict().items() if value is not None
            }
    return None


class HubServer:
    """In-memory Hub served over HTTP on 127.0.0.1 (a free port), in a background thread.

    Args:
        tokens: ``{token: user}``; defaults to one write token for ``cre-tester``.
    """

    def __init__(self, tokens: dict[str, str] | None = None):
        self.tokens = tokens or {DEFAULT_TOKEN: DEFAULT_USER}
        self.token, self.user = next(iter(self.tokens.items()))
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []  # (method, route) of every answered request
        self.unknown_requests: list[tuple[str, str]] = []  # (method, path) no route matched
        self.received_paths: set[str] = set()  # every file path named in a preupload or commit body
        self._failures: dict[str, list[int | str]] = {}  # route -> HTTP statuses or LOSE_ANSWER
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _HubRequestHandler)
        self._httpd.daemon_threads = True
        self._httpd.hub = self
        # A short poll interval lets stop() return quickly.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="hub-server", daemon=True
        )
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> HubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def fail(self, route: str, status: int = 500, times: int = 1) -> None:
        """Answer the next ``times`` requests to ``route`` (a name from ``ROUTES``) with ``status``."""
        with self._lock:
            self._failures.setdefault(route, []).extend([status] * times)

    def lose_answer(self, route: str, times: int = 1) -> None:
        """Carry out the next ``times`` requests to ``route``, then close the connection without answering,
        as when the network drops a response: the client cannot tell whether its request took effect."""
        with self._lock:
            self._failures.setdefault(route, []).extend([LOSE_ANSWER] * times)

    def count(self, route: str) -> int:
        """How many requests reached ``route`` (injected failures included)."""
        return sum(1 for _, name in self.requests if name == route)

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The files of a repo at a revision, for assertions."""
        return dict(self.repos[repo_id].resolve(revision).files)

    def _pop_failure(self, route: str) -> int | str | None:
        with self._lock:
            pending = self._failures.get(route)
            return pending.pop(0) if pending else None


class _HubRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as huggingface_hub's httpx client expects
    lose_answer = False  # set per request by HubServer.lose_answer
    server: ThreadingHTTPServer

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args) -> None:
        """Keep test output quiet; ``HubServer.requests`` records the traffic instead."""

    @property
    def hub(self) -> HubServer:
        return self.server.hub

    def _dispatch(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urlsplit(self.path)
        found = _match_route(self.command, url.path)
        if found is None:
            self.hub.unknown_requests.append((self.command, self.path))
            self._send_error(HubError(404, f"No such route in the test Hub: {self.command} {url.path}"))
            return
        route, args = found
        self.hub.requests.append((self.command, route))
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        failure = self.hub._pop_failure(route)
        self.lose_answer = failure == LOSE_ANSWER
        try:
            if failure not in (None, LOSE_ANSWER):
                raise HubError(failure, f"Injected failure on {route}")
            with self.hub._lock:
                getattr(self, f"_{route}")(body=body, query=query, **args)
        except HubError as error:
            self._send_error(error)

    # ----------------------------------------------------------------- helpers

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        if self.lose_answer:
            self.close_connection = True
            return
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, payload: object, status: int = 200) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send_error(self, error: HubError) -> None:
        headers = {"X-Error-Message": error.message, **error.headers}
        if error.code:
            headers["X-Error-Code"] = error.code
        self._send(error.status, json.dumps(error.body).encode(), "application/json", headers)

    def _user(self, required: bool) -> str | None:
        """The user of the request's token; an unknown token is a 401, like on the Hub."""
        header = self.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            if required:
                raise HubError(401, "You must be authenticated to access this resource")
            return None
        user = self.hub.tokens.get(header.removeprefix("Bearer "))
        if user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return user

    def _repo(self, repo_id: str, write: bool = False) -> Repo:
        user = self._user(required=write)
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and user != repo.owner):
            raise HubError(404, "Repository not found", code="RepoNotFound")
        if write and user != repo.owner:
            raise HubError(403, f"You don't have the rights to write to {repo_id}")
        return repo

    def _repo_url(self, repo_id: str) -> str:
        return f"{self.hub.url}/{repo_id}"

    # ----------------------------------------------------------------- routes

    def _whoami(self, **_) -> None:
        user = self._user(required=True)
        self._send_json(
            {"type": "user", "name": user, "orgs": [], "auth": {"accessToken": {"role": "write"}}}
        )

    def _agent_harnesses(self, **_) -> None:
        self._send_json({"standardEnvVars": [], "harnesses": {}})

    def _create(self, body: bytes, **_) -> None:
        user = self._user(required=True)
        payload = json.loads(body)
        repo_id = f"{payload.get('organization') or user}/{payload['name']}"
        if repo_id.split("/")[0] != user:
            raise HubError(403, f"You don't have the rights to create a repo under {repo_id.split('/')[0]}")
        if repo_id in self.hub.repos:
            # huggingface_hub's create_repo(exist_ok=True) reads the repo URL from this answer.
            raise HubError(409, "You already created this model repo", url=self._repo_url(repo_id))
        created_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        private = payload.get("visibility") == "private" or payload.get("private") is True
        repo = Repo(repo_id, user, private, created_at)
        repo.add_commit("main", "initial commit", {})
        self.hub.repos[repo_id] = repo
        self._send_json({"url": self._repo_url(repo_id), "name": repo_id, "id": repo_id})

    def _validate_yaml(self, **_) -> None:
        self._send_json({"errors": [], "warnings": []})

    def _branch(self, repo_id: str, rev: str, body: bytes, **_) -> None:
        repo = self._repo(repo_id, write=True)
        if rev in repo.branches:
            raise HubError(409, f"Reference already exists: refs/heads/{rev}")
        starting_point = (json.loads(body) if body else {}).get("startingPoint") or "main"
        repo.branches[rev] = repo.resolve(starting_point).oid
        self._send_json({})

    def _preupload(self, repo_id: str, rev: str, body: bytes, **_) -> None:
        files = self._repo(repo_id, write=True).resolve(rev).files
        self.hub.received_paths.update(entry["path"] for entry in json.loads(body)["files"])
        self._send_json(
            {
                "files": [
                    {
                        "path": entry["path"],
                        "uploadMode": "regular",
                        "shouldIgnore": False,
                        "oid": git_blob_id(files[entry["path"]]) if entry["path"] in files else None,
                    }
                    for entry in json.loads(body)["files"]
                ]
            }
        )

    def _commit(self, repo_id: str, rev: str, body: bytes, **_) -> None:
        repo = self._repo(repo_id, write=True)
        files = dict(repo.resolve(rev).files)
        header, *operations = (json.loads(line) for line in body.splitlines() if line.strip())
        for operation in operations:
            key, value = operation["key"], operation["value"]
            self.hub.received_paths.add(value["path"])
            if key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise HubError(404, "A file with this name doesn't exist", code="EntryNotFound")
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {path: data for path, data in files.items() if not path.startswith(prefix)}
            else:
                raise HubError(400, f"The test Hub stores regular files only, not {key!r}")
        commit = repo.add_commit(rev, header["value"]["summary"], files)
        self._send_json(
            {
                "success": True,
                "commitOid": commit.oid,
                "commitUrl": f"{self._repo_url(repo_id)}/commit/{commit.oid}",
                "pullRequestUrl": None,
            }
        )

    def _info(self, repo_id: str, rev: str = "main", **_) -> None:
        repo = self._repo(repo_id)
        commit = repo.resolve(rev)
        self._send_json(
            {
                "_id": repo_id,
                "id": repo_id,
                "modelId": repo_id,
                "author": repo.owner,
                "sha": commit.oid,
                "private": repo.private,
                "gated": False,
                "disabled": False,
                "createdAt": repo.created_at,
                "lastModified": repo.created_at,
                "tags": [],
                "siblings": [{"rfilename": path} for path in sorted(commit.files)],
            }
        )

    def _tree(self, repo_id: str, rev: str, query: dict, path: str = "", **_) -> None:
        commit = self._repo(repo_id).resolve(rev)
        prefix = f"{path.strip('/')}/" if path else ""
        recursive = query.get("recursive", "false").lower() in ("1", "true")
        entries: dict[str, dict] = {}
        for file_path in sorted(commit.files):
            if not file_path.startswith(prefix):
                continue
            parts = file_path[len(prefix) :].split("/")
            for depth in range(1, len(parts)):  # the folders on the way to the file
                folder = prefix + "/".join(parts[:depth])
                if recursive or depth == 1:
                    entries[folder] = {
                        "type": "directory",
                        "path": folder,
                        "oid": git_blob_id(folder.encode()),
                    }
            if recursive or len(parts) == 1:
                content = commit.files[file_path]
                entries[file_path] = {
                    "type": "file",
                    "path": file_path,
                    "size": len(content),
                    "oid": git_blob_id(content),
                }
        if path and not entries:
            raise HubError(404, f"{path} does not exist on {rev}", code="EntryNotFound")
        self._send_json(list(entries.values()))

    def _resolve(self, repo_id: str, rev: str, path: str, **_) -> None:
        commit = self._repo(repo_id).resolve(rev)
        if path not in commit.files:
            raise HubError(
                404, "Entry not found", code="EntryNotFound", headers={"X-Repo-Commit": commit.oid}
            )
        content = commit.files[path]
        headers = {"ETag": f'"{git_blob_id(content)}"', "X-Repo-Commit": commit.oid, "Accept-Ranges": "none"}
        self._send(200, content, "application/octet-stream", headers)
