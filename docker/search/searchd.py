"""The search sandbox's runtime: ``open`` a document, ``search`` the BM25 index through a server.

Every tool call is one short process, ``python3 -I -S searchd.py MODE`` with a
JSON request on stdin and a JSON reply line on stdout:

- ``open`` (``{"doc_id": "dog", "page": 1}``) reads ``docs.sqlite`` itself:
  the standard library's sqlite3 answers in a few ms, no server needed.
- ``search`` (``{"query": "...", "k": 5}``) asks a resident server over a
  Unix socket. Loading the ``bm25s`` index (numpy and 28 MB of arrays, mapped)
  costs a few hundred ms, too much per call, so the first search of an
  episode starts the server (``serve``) in its own session and later calls
  reuse it. The sandbox's reset kills it and wipes ``/tmp``, so each episode
  starts fresh; a server that died or was killed is started again on the next
  call (the client retries once). A lock file makes concurrent first calls
  start one server; the socket appears (renamed into place) only once the
  index is loaded, so a client never talks to a half-started server.
- A sandbox that runs ``serve /run/toolgym`` as its *service* (toolgym's
  ``SandboxSpec.service``: another uid, started with the container, untouched
  by resets) answers every episode's searches from one warm index: the
  client asks ``/run/toolgym/sock`` first and only falls back to a server of
  its own when that one is not (or not yet) there.

Only the standard library is imported outside ``serve``.
"""

import json
import os
import sqlite3
import sys
import time

DATA = os.environ.get("TOOLGYM_SEARCH_DATA", "/opt/search/data")
STATE = os.environ.get("TOOLGYM_SEARCH_STATE", "/tmp/.toolgym-search")
SHARED = "/run/toolgym/sock"
"""The socket of the sandbox's resident server, if it runs one."""
PAGE_CHARS = 1500
"""Most characters on one page of a document (pages end at line ends)."""
MAX_K = 20
MAX_QUERY_CHARS = 1000
SNIPPET_CHARS = 160
START_TIMEOUT_S = 60.0
STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their "
    "then there these they this to was will with".split())
"""Not counted when picking a result's snippet line (bm25s drops more when scoring)."""


def pages(text, page_chars=PAGE_CHARS):
    r"""Cut ``text`` into pages of at most ``page_chars`` characters, at line ends.

    >>> pages("ab\ncd\nef", 5)
    ['ab\ncd', 'ef']
    """
    out, lines = [], []
    size = 0
    for line in text.split("\n"):
        while len(line) > page_chars:  # a line longer than a page is cut hard
            if lines:
                out.append("\n".join(lines))
                lines, size = [], 0
            out.append(line[:page_chars])
            line = line[page_chars:]
        if lines and size + 1 + len(line) > page_chars:
            out.append("\n".join(lines))
            lines, size = [], 0
        size += len(line) + (1 if lines else 0)
        lines.append(line)
    if lines or not out:
        out.append("\n".join(lines))
    return out


def normalize_id(doc_id):
    """How a doc id is looked up: trimmed, lower case, spaces as underscores."""
    return "_".join(str(doc_id).strip().lower().split())


def connect(data=DATA):
    """The documents, read-only (the image is immutable, so no locking)."""
    return sqlite3.connect(f"file:{data}/docs.sqlite?mode=ro&immutable=1", uri=True)


def open_doc(db, doc_id, page=1):
    """Reply to ``open``: one page of a document, or an error with close ids."""
    key = normalize_id(doc_id)
    row = db.execute("SELECT id, title, text FROM docs WHERE id = ?", (key,)).fetchone()
    if row is None:
        return {"error": f"no document with id {doc_id!r}", "suggestions": suggest(db, key)}
    parts = pages(row[2])
    if not 1 <= page <= len(parts):
        return {"error": f"page {page} does not exist: document {row[0]!r} has "
                         f"{len(parts)} page(s)", "suggestions": []}
    return {"id": row[0], "title": row[1], "page": page, "pages": len(parts),
            "text": parts[page - 1]}


def suggest(db, key, n=5):
    """Ids close to ``key``: ids sharing its first letter, ranked by difflib."""
    import difflib

    if not key:
        return []
    prefix = key[:1]
    rows = db.execute("SELECT id FROM docs WHERE id >= ? AND id < ? LIMIT 20000",
                      (prefix, prefix + "\U0010ffff")).fetchall()
    return difflib.get_close_matches(key, [r[0] for r in rows], n=n, cutoff=0.6)


def snippet(text, query_words):
    """The line of ``text`` that shares most words with the query, shortened."""
    best, best_hits = "", -1
    for line in text.split("\n")[1:] or [text]:
        words = set(_words(line))
        hits = len(words & query_words)
        if hits > best_hits:
            best, best_hits = line.strip(), hits
    return best if len(best) <= SNIPPET_CHARS else best[: SNIPPET_CHARS - 3] + "..."


def _words(text):
    import re

    return [w for w in re.findall(r"\w\w+", text.lower()) if w not in STOPWORDS]


class Searcher:
    """The BM25 index and the documents, loaded once (the server holds one)."""

    def __init__(self, data=DATA):
        import bm25s

        self.bm25s = bm25s
        self.retriever = bm25s.BM25.load(f"{data}/index", mmap=True, show_progress=False)
        self.db = connect(data)

    def search(self, query, k=5):
        """Reply to ``search``: the top ``k`` documents with a positive score."""
        query = str(query)[:MAX_QUERY_CHARS]
        k = max(1, min(int(k), MAX_K))
        tokens = self.bm25s.tokenize([query], stopwords="en", return_ids=False,
                                     show_progress=False)
        if not tokens or not tokens[0]:
            return {"results": []}
        ids, scores = self.retriever.retrieve(tokens, k=k, show_progress=False)
        words = set(_words(query))
        results = []
        for n, score in zip(ids[0].tolist(), scores[0].tolist(), strict=True):
            if score <= 0:
                continue
            doc_id, title, text = self.db.execute(
                "SELECT id, title, text FROM docs WHERE n = ?", (n,)).fetchone()
            results.append({"id": doc_id, "title": title, "score": round(score, 2),
                            "snippet": snippet(text, words)})
        return {"results": results}


# ---------------------------------------------------------------- server and client


def serve(state=STATE):
    """Load the index, then answer one JSON line per connection on ``state/sock``."""
    import socket

    searcher = Searcher()
    path = os.path.join(state, "sock")
    tmp = f"{path}.{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(tmp)
    os.chmod(tmp, 0o666)  # a shared server runs as another uid than its clients
    server.listen(16)
    os.rename(tmp, path)  # ready: clients see the socket only now
    while True:
        conn, _ = server.accept()
        with conn:
            try:
                conn.settimeout(30)
                request = json.loads(_read_line(conn))
                reply = searcher.search(request.get("query", ""), request.get("k", 5))
            except Exception as exc:  # noqa: BLE001 - one bad request must not stop the server
                reply = {"error": f"search failed: {exc!r}"}
            try:
                conn.sendall(json.dumps(reply).encode() + b"\n")
            except OSError:
                pass


def _read_line(conn):
    chunks = []
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        if chunk.endswith(b"\n"):
            break
    return b"".join(chunks)


def _ask(path, payload):
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(30)
        sock.connect(path)
        sock.sendall(payload)
        reply = _read_line(sock)
    finally:
        sock.close()
    if not reply.strip():
        raise ConnectionError("the search server closed the connection")
    return reply


def _start_server(state):
    """Start ``serve`` in its own session, detached from this call's output."""
    log = os.open(os.path.join(state, "server.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.execv(sys.executable, [sys.executable, os.path.abspath(__file__), "serve", state])
        finally:
            os._exit(127)
    os.close(log)
    return pid


def search_client(request, state=STATE, shared=SHARED):
    """Send a search to the shared server, else to this sandbox's own, starting that
    (once, under a lock) when none answers."""
    import fcntl

    payload = json.dumps(request).encode() + b"\n"
    if os.path.exists(shared):
        try:
            return _ask(shared, payload)
        except OSError:
            pass
    os.makedirs(state, mode=0o700, exist_ok=True)
    path = os.path.join(state, "sock")
    for attempt in (1, 2):
        try:
            return _ask(path, payload)
        except OSError:
            if attempt == 2:
                raise
        with open(os.path.join(state, "start.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                return _ask(path, payload)  # another call may have started it meanwhile
            except OSError:
                pass
            if os.path.exists(path):
                os.unlink(path)  # a dead server's socket
            pid = _start_server(state)
            deadline = time.monotonic() + START_TIMEOUT_S
            while not os.path.exists(path):
                if os.waitpid(pid, os.WNOHANG)[0] or time.monotonic() > deadline:
                    raise RuntimeError("the search server did not start: "
                                       + _tail(os.path.join(state, "server.log")))
                time.sleep(0.02)
    raise AssertionError("unreachable")


def _tail(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-500:]
    except OSError:
        return "(no log)"


def main(argv):
    """``searchd.py open|search`` (request on stdin) or ``searchd.py serve [STATE]``."""
    mode = argv[1] if len(argv) > 1 else ""
    if mode == "serve":
        serve(argv[2] if len(argv) > 2 else STATE)
        return 0
    try:
        request = json.loads(sys.stdin.read() or "{}")
        if mode == "open":
            reply = json.dumps(open_doc(connect(), request.get("doc_id", ""),
                                        int(request.get("page", 1))))
        elif mode == "search":
            reply = search_client(request).decode().strip()
        else:
            reply = json.dumps({"error": f"unknown mode {mode!r}: use open, search or serve"})
    except Exception as exc:  # noqa: BLE001 - every failure is a reply the host can show
        reply = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
    sys.stdout.write(reply + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
