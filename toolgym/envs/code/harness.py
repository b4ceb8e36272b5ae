"""The code verifier's harness: hidden tests in one process, the candidate's code in another.

This file runs inside the sandbox, as ``python3 -I -c SOURCE harness`` (it uses
only the standard library, like the sandbox supervisor). Why two processes:
graded code that runs in the process holding the tests can read the tests and
whatever proves the harness finished (walk frames, read globals), hook the
interpreter's exit (``sys.excepthook``, ``atexit``, ``os._exit(0)``) or
return an object whose ``__eq__`` always says yes. So:

- the **harness** reads its config on stdin (the nonce, the task's stub and
  hidden test, the candidate's program), executes the stub and the test (both
  the task's own, trusted code) and calls ``check(candidate)``;
- the **candidate** is a separate ``python3 -I -c SOURCE candidate`` process
  (under the agent's uid when the harness runs as the platform's) that loads
  the program and answers calls; the harness's ``candidate`` is a
  :class:`Candidate` proxy that sends each call's arguments over a pipe
  (pickled: harness to candidate is the trusted direction) and gets back the
  ``repr`` of the result, which it rebuilds with :func:`plain_value` (Python
  literals only). The hidden asserts therefore compare plain builtin values
  built by the harness, and nothing the candidate defines runs in the harness;
- the verdict is one line on the harness's own stdout, led by the nonce that
  only the harness has seen; the candidate's stdout and stderr go to a pipe the
  harness reads (their tail is reported as the candidate's output).

Failures the candidate causes (it died, timed out, broke the protocol,
returned something that is not a literal) raise :class:`CandidateFailed`, a
``BaseException`` so a test's ``except Exception`` cannot swallow it, and they
fail the verdict even when ``check`` returns anyway.
"""

import ast
import builtins
import json
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
import traceback

HEADER = struct.Struct(">I")
MAX_REPLY_BYTES = 1 << 20
"""Largest result ``repr`` a call may return; more fails the candidate."""
OUTPUT_CHARS = 2000
"""How much of the candidate's own output (and of its tracebacks) the verdict keeps."""
EXIT_HARNESS_ERROR = 3


class CandidateFailed(BaseException):
    """The candidate process cannot answer any more: the verdict is a failure."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind
        self.message = message


class CandidateRaised(Exception):
    """The candidate's function raised an exception that is not a builtin one."""


# ------------------------------------------------------------------ framing


def send_frame(fd, data, deadline=None):
    """Write one length-prefixed frame to ``fd`` (non-blocking with a deadline)."""
    view = memoryview(HEADER.pack(len(data)) + data)
    while view:
        if deadline is not None:
            _wait(fd, deadline, write=True)
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            continue
        except BrokenPipeError:
            raise CandidateFailed("died", "your program exited while it was being called") from None
        view = view[n:]


def read_frame(fd, deadline=None, limit=None):
    """Read one frame; None at end of file before a header."""
    header = _read_exact(fd, HEADER.size, deadline, eof_ok=True)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    if limit is not None and size > limit:
        raise CandidateFailed("too_large", f"your function returned more than {limit} bytes")
    return _read_exact(fd, size, deadline)


def _read_exact(fd, n, deadline, eof_ok=False):
    buf = bytearray()
    while len(buf) < n:
        if deadline is not None:
            _wait(fd, deadline)
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            if eof_ok and not buf:
                return None
            raise CandidateFailed("died", "your program exited before it answered")
        buf += chunk
    return bytes(buf)


def _wait(fd, deadline, write=False):
    left = deadline - time.monotonic()
    ready = select.select([], [fd], [], max(left, 0))[1] if write else \
        select.select([fd], [], [], max(left, 0))[0]
    if not ready:
        raise CandidateFailed("timeout", "the time limit ran out while your function was running")


# ------------------------------------------------------------------ values


class _NonFinite(ast.NodeTransformer):
    """``nan``, ``inf`` and ``frozenset(...)``: ``repr`` writes them, ``literal_eval`` refuses."""

    def visit_Name(self, node):
        if node.id in ("nan", "inf"):
            return ast.Constant(float(node.id))
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        if (isinstance(node.func, ast.Name) and node.func.id == "frozenset"
                and len(node.args) <= 1 and not node.keywords):
            return ast.Constant(frozenset(ast.literal_eval(node.args[0]) if node.args else ()))
        return node


def plain_value(text):
    """Rebuild a result from its ``repr``: Python literals only, so builtin types only.

    Example:
        >>> plain_value("[1, (2.5, -inf), {'a': set()}, frozenset({3})]")
        [1, (2.5, -inf), {'a': set()}, frozenset({3})]
    """
    try:
        return ast.literal_eval(_NonFinite().visit(ast.parse(text, mode="eval")))
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError):
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise CandidateFailed(
            "not_plain", f"your function returned {shown}, which is not a plain Python value "
            "(numbers, strings, bytes, None, lists, tuples, dicts and sets of them)") from None


# ------------------------------------------------------------------ harness side


class Candidate:
    """Stands for the candidate's function in the hidden tests: each call is a round trip."""

    def __init__(self, proc, deadline):
        self.proc = proc
        self.deadline = deadline
        self.calls = 0
        self.failure = None
        self.raised = None
        self.raised_trace = ""
        self._to = proc.stdin.fileno()
        self._from = proc.stdout.fileno()
        os.set_blocking(self._to, False)

    def start(self, program, entry_point):
        """Send the program; raise :class:`CandidateFailed` if it does not load."""
        self._round_trip({"program": program, "entry_point": entry_point})

    def __call__(self, *args, **kwargs):
        result = self._round_trip((args, kwargs))
        self.calls += 1
        return result

    def _round_trip(self, message):
        if self.failure is not None:
            raise self.failure
        try:
            send_frame(self._to, pickle.dumps(message), self.deadline)
            reply = read_frame(self._from, self.deadline, MAX_REPLY_BYTES)
            if reply is None:
                raise CandidateFailed("died", "your program exited before it answered")
            kind, *rest = _reply(reply)
            if kind == "ok":
                return plain_value(rest[0])
            if kind == "load_error":
                raise CandidateFailed("load", rest[0])
        except CandidateFailed as failure:
            self.failure = failure
            raise
        name, text, trace = rest
        cls = getattr(builtins, name, None)
        builtin = isinstance(cls, type) and issubclass(cls, Exception) and _plain_init(cls)
        exc = cls(text) if builtin else CandidateRaised(f"{name}: {text}")
        self.raised, self.raised_trace = exc, trace
        raise exc

    def stop(self):
        try:
            os.killpg(self.proc.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()


def _plain_init(cls):
    try:
        cls("x")
    except Exception:  # noqa: BLE001 - e.g. UnicodeDecodeError needs five arguments
        return False
    return True


def _reply(raw):
    try:
        reply = json.loads(raw)
    except ValueError:
        reply = None
    shapes = {"ok": 1, "load_error": 1, "raised": 3}
    if not (isinstance(reply, list) and reply and shapes.get(reply[0]) == len(reply) - 1
            and all(isinstance(part, str) for part in reply)):
        raise CandidateFailed("protocol", "your program wrote something the harness cannot read")
    return reply


class _Tail:
    """Keeps the last bytes of a pipe, read on a thread."""

    def __init__(self, stream):
        self.data = b""
        self.thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self.thread.start()

    def _drain(self, stream):
        for chunk in iter(lambda: stream.read(65536), b""):
            self.data = (self.data + chunk)[-4 * OUTPUT_CHARS:]

    def text(self):
        self.thread.join(timeout=0.5)
        return self.data.decode(errors="replace")[-OUTPUT_CHARS:]


def _limits(memory_bytes, cpu_s):
    import resource

    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
    return apply


def spawn_candidate(config):
    """Start the candidate process: its own session, limits and (when given) uid."""
    user = {}
    if config.get("uid") is not None and os.getuid() != config["uid"]:
        user = {"user": config["uid"], "group": config["gid"], "extra_groups": []}
    return subprocess.Popen(
        [sys.executable, "-I", "-c", config["source"], "candidate"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=config["workdir"], start_new_session=True, close_fds=True,
        preexec_fn=_limits(config["memory_bytes"], int(config["timeout_s"]) + 1), **user)


def judge(config):
    """Run the hidden test against the candidate; return the verdict (a dict)."""
    namespace = {"__name__": "__toolgym_check__"}
    exec(compile(config["stub"], "stub.py", "exec"), namespace)
    exec(compile(config["test"], "test.py", "exec"), namespace)
    check = namespace["check"]
    proc = spawn_candidate(config)
    output = _Tail(proc.stderr)
    candidate = Candidate(proc, time.monotonic() + config["timeout_s"])
    namespace[config["entry_point"]] = candidate
    verdict = {"passed": False, "kind": None, "message": ""}
    try:
        candidate.start(config["program"], config["entry_point"])
        check(candidate)
        if candidate.failure is None:
            verdict["passed"] = True
    except CandidateFailed:
        pass
    except Exception as exc:  # noqa: BLE001 - whatever ended check() is a failed test
        if exc is candidate.raised:
            verdict.update(kind="raised", message=candidate.raised_trace)
        else:
            verdict.update(kind="wrong", message=type(exc).__name__)
    finally:
        candidate.stop()
    if candidate.failure is not None:
        verdict.update(kind=candidate.failure.kind, message=candidate.failure.message)
    verdict["calls"] = candidate.calls
    verdict["output"] = output.text()
    verdict["message"] = verdict["message"][-OUTPUT_CHARS:]
    return verdict


def harness_main():
    config = json.loads(sys.stdin.read())
    sys.stdin.close()
    nonce = config.pop("nonce")
    _not_dumpable()
    try:
        verdict = judge(config)
    except BaseException as exc:  # noqa: BLE001 - the task's own code failed: a platform fault
        traceback.print_exc()
        verdict = {"harness_error": f"{type(exc).__name__}: {exc}"[:OUTPUT_CHARS]}
    sys.stdout.write("\n" + nonce + " " + json.dumps(verdict) + "\n")
    sys.stdout.flush()
    os._exit(EXIT_HARNESS_ERROR if "harness_error" in verdict else 0)


def _not_dumpable():
    """Close /proc/<pid>/mem and ptrace to same-uid processes (best effort)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
    except (OSError, AttributeError, ImportError):
        pass


# ------------------------------------------------------------------ candidate side


def candidate_main():
    """Load the program, then answer calls until the harness closes the pipe."""
    calls_in, replies = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)  # the program's prints go where the harness reads its output
    os.close(null)
    config = pickle.loads(read_frame(calls_in))
    namespace = {"__name__": "__main__"}
    try:
        exec(compile(config["program"], "solution.py", "exec"), namespace)
        function = namespace[config["entry_point"]]
    except KeyError:
        _answer(replies, "load_error", f"your program defines no {config['entry_point']}")
        return
    except BaseException:  # noqa: BLE001 - SystemExit too: the program did not load
        _answer(replies, "load_error", _trace())
        return
    _answer(replies, "ok", "None")
    while True:
        frame = read_frame(calls_in)
        if frame is None:
            return
        args, kwargs = pickle.loads(frame)
        try:
            text = repr(function(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - reported to the harness
            _answer(replies, "raised", type(exc).__name__, str(exc)[:OUTPUT_CHARS], _trace())
            continue
        _answer(replies, "ok", text)


def _answer(fd, *parts):
    sys.stdout.flush()
    send_frame(fd, json.dumps(parts).encode())


def _trace():
    return "".join(traceback.format_exc())[-OUTPUT_CHARS:]


if __name__ == "__main__":
    candidate_main() if sys.argv[1:] == ["candidate"] else harness_main()
