"""The opening of the scripts an agent runs to reach a platform process (pid argv[1]).

Each ``attempt(name, fn)`` records ``"done"`` or the name of the ``OSError`` it
raised; the script ends with ``print(json.dumps(out))``. The isolation tests of
the supervisor and of the spawner add their own attempts after it.
"""

REACH_PRELUDE = """
import ctypes, json, os, signal, sys
pid = int(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
out = {}
def attempt(name, fn):
    try:
        fn()
        out[name] = "done"
    except OSError as exc:
        out[name] = type(exc).__name__
def ptrace(request):
    if libc.ptrace(request, pid, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "ptrace")
"""
