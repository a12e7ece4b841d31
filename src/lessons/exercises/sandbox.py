"""Running the learner's code in a worker process, so that a check survives any answer.

`checking` compares results; this module runs the learner's function and owns the
processes that do it. One check is one `session`: it hands out a `Runner`, whose
`Runner.run` runs one *job* on one case and returns an `Outcome`:

* ``"call"``: call the function; return its result and the inputs after the call (to
  catch a function that changes its input);
* ``"gradients"``: backpropagate `weighted_sum` of its output to the inputs
  (`input_gradients`); the checker compares with the reference's gradients.

Where it can, a session runs the jobs in a *worker*: a fresh Python interpreter that
imported torch once and is reused from case to case and from check to check, so a check
costs a few milliseconds more than in-process. The learner's function travels by value
with ``cloudpickle`` (a function defined in a notebook cell too), results come back as
plain data (`portable`). An endless loop, even one in C that never releases the GIL
(``sum(range(10**12))``), ends with the worker killed after the case's ``timeout_s``;
a crash (``os._exit``, a segfault) ends as feedback; either way the next check starts
a new worker, already warming up in the background. What the function prints is
captured case by case, at most `PRINT_LIMIT` characters, and streamed to the parent as
it comes, so what was printed before a timeout is shown too.

The worker is a plain ``python -c`` process, like multiprocessing's "spawn", rather than
a `multiprocessing.Process`: spawn and forkserver both re-run the main script of a plain
``python script.py`` in the child (top-level ``exercises.check`` calls included), and a
fork after autograd has run can hang or crash the child.

Where no worker can run (no subprocesses, as in Pyodide; a function cloudpickle cannot
send), or with ``LESSONS_CHECK_SANDBOX=off``, the jobs run in a thread of this process
as before, and the runner's `Runner.note` says that an endless loop cannot be stopped.

This isolates mistakes, not malice: the learner's code runs with the learner's rights.
"""

from __future__ import annotations

import atexit
import io
import linecache
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

import cloudpickle
import numpy as np
import torch

__all__ = [
    "PRINT_LIMIT",
    "SANDBOX_ENV",
    "Opaque",
    "Outcome",
    "Runner",
    "clone",
    "format_exception",
    "input_gradients",
    "one_line",
    "portable",
    "session",
    "shutdown",
    "warm_up",
    "weighted_sum",
]

#: Set to ``off`` to run the learner's code in this process (a thread), as before workers.
SANDBOX_ENV = "LESSONS_CHECK_SANDBOX"
#: Characters of the learner's printing kept per case; the rest is cut, with a note.
PRINT_LIMIT = 2_000
#: Seconds a new worker may take to import torch and answer, or to load a function.
START_TIMEOUT_S = 60.0
#: A worker kills itself this many seconds after a job's timeout, should its parent be
#: gone (e.g. a kernel killed during an endless loop); normally the parent kills it first.
_BACKSTOP_S = 10.0

TIMED_OUT = "not run: an earlier case timed out"
STOPPED = "not run: an earlier case stopped the worker process"
_IN_PROCESS = (
    "your code ran inside the notebook's own process: an endless loop cannot be stopped there"
)

Job = Literal["call", "gradients"]


# --------------------------------------------------------------------------------------
# What a job returns
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opaque:
    """Stands in for a returned object that is not plain data: a generator, a function,
    an open file, an instance of the learner's own class. Such an object cannot always
    travel between processes, and comparing or showing it would run the learner's code
    in the checker, so only its type name and a description come back."""

    type_name: str
    description: str

    @classmethod
    def of(cls, value: Any) -> Opaque:
        try:
            text = repr(value)
        except Exception as error:  # noqa: BLE001 - a broken __repr__ is the learner's
            text = f"(its repr raised {type(error).__name__})"
        return cls(type(value).__name__, text if len(text) <= 120 else text[:117] + "...")


@dataclass(frozen=True)
class Outcome:
    """What came of one job: a value, or an exception, a timeout or a crash; and the prints.

    ``inputs`` holds ``(args, kwargs)`` after a ``"call"`` (None when unknown);
    ``error_text`` is the exception formatted where it was raised (`format_exception`),
    ``error`` the exception itself where it could be sent back; ``stopped`` says how
    the worker process ended when it died on the job.
    """

    value: Any = None
    inputs: tuple[tuple[Any, ...], dict[str, Any]] | None = None
    error: BaseException | None = None
    error_text: str = ""
    timed_out: bool = False
    stopped: str = ""
    printed: str = ""


_PLAIN_TYPES = (type(None), bool, int, float, complex, str, bytes, torch.dtype, torch.device)


def portable(value: Any, depth: int = 0) -> Any:
    """``value`` as plain data that can travel between processes and be compared safely.

    Tensors (detached: autograd does not cross processes), numpy arrays and scalars,
    numbers, strings and None, and tuples, lists and dicts of them; anything else
    becomes an `Opaque` stand-in.
    """
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
        return tensor if type(tensor) is torch.Tensor else tensor.as_subclass(torch.Tensor)
    if type(value) in _PLAIN_TYPES or type(value) is torch.Size or _plain_numpy(value):
        return value
    if depth < 20:  # deeper is a self-containing list, or close to one
        if isinstance(value, tuple):  # namedtuples and torch.return_types too
            return tuple(portable(item, depth + 1) for item in value)
        if type(value) is list:
            return [portable(item, depth + 1) for item in value]
        if type(value) is dict and all(type(key) in _PLAIN_TYPES for key in value):
            return {key: portable(item, depth + 1) for key, item in value.items()}
    return Opaque.of(value)


def _plain_numpy(value: Any) -> bool:
    numeric = type(value) is np.ndarray or isinstance(value, np.generic)
    return numeric and not value.dtype.hasobject


# --------------------------------------------------------------------------------------
# The jobs, the same in a worker and in a thread
# --------------------------------------------------------------------------------------


def clone(value: Any) -> Any:
    """A copy of the inputs, tensors detached, so that nobody's changes reach the case."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, tuple | list):
        return type(value)(clone(v) for v in value)
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    return value


def weighted_sum(output: Any) -> torch.Tensor:
    """``sum((item * w).sum())`` over the floating-point tensors of ``output`` (a tensor, or
    tuples and lists of them), each ``w`` random but fixed: drawn in order, seed 0.

    The gradient check backpropagates it, for the reference and for the learner alike.
    """
    tensors = _float_tensors(output)
    if not tensors:
        raise TypeError("the output holds no floating-point tensor to backpropagate through")
    generator = torch.Generator().manual_seed(0)
    weights = [
        torch.randn(t.shape, generator=generator, dtype=torch.float32).to(t.device, t.dtype)
        for t in tensors
    ]
    return sum((t * w).sum() for t, w in zip(tensors, weights, strict=True))


def input_gradients(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> list[torch.Tensor | None]:
    """The gradients of `weighted_sum` of ``fn``'s output with respect to every
    floating-point tensor input (copies made leaves), in order; None where none arrived."""
    args = tuple(_leaf(a) for a in args)
    kwargs = {k: _leaf(v) for k, v in kwargs.items()}
    weighted_sum(fn(*args, **kwargs)).backward()
    return [t.grad for t in (*args, *kwargs.values()) if _is_float_tensor(t)]


def _float_tensors(output: Any) -> list[torch.Tensor]:
    if isinstance(output, tuple | list):
        return [t for item in output for t in _float_tensors(item)]
    return [output] if _is_float_tensor(output) else []


def _leaf(value: Any) -> Any:
    value = clone(value)
    return value.requires_grad_(True) if _is_float_tensor(value) else value


def _is_float_tensor(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.is_floating_point()


def _execute(
    job: Job, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Outcome:
    """Run one job; every exception, the learner's or in `portable`, becomes the outcome."""
    try:
        if job == "call":
            value = fn(*args, **kwargs)
            return Outcome(value=portable(value), inputs=portable((args, kwargs)))
        return Outcome(value=portable(input_gradients(fn, args, kwargs)))
    except BaseException as error:  # noqa: BLE001 - the learner's error is feedback
        return Outcome(error=error, error_text=format_exception(error))


def format_exception(error: BaseException) -> str:
    """``TypeError: message (in f, line 3: x.sum(dim=9))``, pointing at the learner's code."""
    text = one_line(error)
    frames = [
        f
        for f in traceback.extract_tb(error.__traceback__)
        if Path(f.filename).resolve() != Path(__file__).resolve()
    ]
    if frames and frames[0].line:
        text += f" (in {frames[0].name}, line {frames[0].lineno}: {frames[0].line.strip()})"
    return text


def one_line(error: BaseException) -> str:
    """``TypeError: message``, the first line only, at most 300 characters."""
    lines = "".join(traceback.format_exception_only(type(error), error)).strip().splitlines()
    text = (lines[0] if lines else type(error).__name__) + (" ..." if len(lines) > 1 else "")
    return text if len(text) <= 300 else text[:297] + "..."


# --------------------------------------------------------------------------------------
# Capturing what the learner prints
# --------------------------------------------------------------------------------------


class _CappedOutput(io.TextIOBase):
    """Stands in for sys.stdout and sys.stderr during a job: passes the first `PRINT_LIMIT`
    characters written to ``sink``, then a note that the rest was cut, then nothing."""

    def __init__(self, sink: Callable[[str], None]) -> None:
        super().__init__()
        self._sink, self._left, self._lock = sink, PRINT_LIMIT, threading.Lock()
        self._cut = False

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        text = str(text)
        with self._lock:
            if self._cut or not text:
                return len(text)
            kept = text[: self._left]
            if len(kept) < len(text):
                self._cut = True
                kept += f"\n... (cut: only the first {PRINT_LIMIT} characters are shown)"
            self._left -= len(text)
            self._sink(kept)
        return len(text)

    def stop(self) -> None:
        """Pass on nothing more (a thread the learner started may still print)."""
        with self._lock:
            self._cut = True


@contextmanager
def _printing_to(output: _CappedOutput) -> Iterator[None]:
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = output
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
        output.stop()


# --------------------------------------------------------------------------------------
# Runners: in a worker process, or in a thread as a fallback
# --------------------------------------------------------------------------------------


class Runner:
    """Runs jobs on the learner's function for one check (see `session`)."""

    #: Why the code runs in this process rather than in a worker; "" in a worker.
    note: str = ""
    #: Why no more cases can run (after a timeout or a crash); "" while they can.
    halted: str = ""
    #: Whether a job that runs too long is stopped (a worker) or keeps running (a thread).
    stops_runaways: bool = False

    def run(
        self, job: Job, args: tuple[Any, ...], kwargs: dict[str, Any], timeout_s: float
    ) -> Outcome:
        """Run ``job`` on these inputs (not changed: the job works on copies)."""
        raise NotImplementedError

    def close(self) -> bool:
        """End the check; True where the worker was retired and a new one is needed."""
        return False


class _ThreadRunner(Runner):
    """Runs each job in a daemon thread of this process, waiting at most ``timeout_s``.

    Python cannot kill a thread: a function that never returns keeps running after we
    report the timeout, and a loop in C holds the GIL and freezes the whole kernel.
    """

    def __init__(self, answer: Callable[..., Any], note: str) -> None:
        self.answer, self.note = answer, note

    def run(
        self, job: Job, args: tuple[Any, ...], kwargs: dict[str, Any], timeout_s: float
    ) -> Outcome:
        args, kwargs = clone(args), clone(kwargs)
        results: list[Outcome] = []
        chunks: list[str] = []
        thread = threading.Thread(
            target=lambda: results.append(_execute(job, self.answer, args, kwargs)),
            name="lessons-check",
            daemon=True,
        )
        with _printing_to(_CappedOutput(chunks.append)):
            thread.start()
            thread.join(timeout_s)
        if thread.is_alive():
            self.halted = TIMED_OUT
            return Outcome(timed_out=True, printed="".join(chunks))
        return replace(results[0], printed="".join(chunks))


class _WorkerRunner(Runner):
    """Runs each job in the worker process; kills it when a job runs past its timeout."""

    stops_runaways = True

    def __init__(self, worker: _Worker) -> None:
        self.worker = worker
        self.retire = False

    def run(
        self, job: Job, args: tuple[Any, ...], kwargs: dict[str, Any], timeout_s: float
    ) -> Outcome:
        chunks: list[str] = []
        try:
            self.worker.channel.send("run", (job, args, kwargs, timeout_s))
            reply = self.worker.channel.receive(time.monotonic() + timeout_s, chunks.append)
        except (EOFError, OSError):  # the worker died: the learner's os._exit, a segfault
            self.halted, self.retire = STOPPED, True
            code = _exit_text(self.worker.stop())
            stopped = f"the worker process stopped ({code}) while running your function"
            return Outcome(stopped=stopped, printed="".join(chunks))
        except Exception as error:  # noqa: BLE001 - e.g. an exception class unknown here
            value = Opaque("object", f"(cannot be received: {one_line(error)})")
            return Outcome(value=value, printed="".join(chunks))
        except BaseException:  # e.g. KeyboardInterrupt: stop the learner's code too
            self.worker.kill()
            raise
        if reply is None:
            self.halted, self.retire = TIMED_OUT, True
            self.worker.kill()
            return Outcome(timed_out=True, printed="".join(chunks))
        _, (outcome, clean) = reply
        self.retire = self.retire or not clean
        return replace(outcome, printed="".join(chunks))

    def close(self) -> bool:
        if self.retire:
            self.worker.kill()
        return self.retire


# --------------------------------------------------------------------------------------
# Sessions: one check at a time, one worker at most
# --------------------------------------------------------------------------------------

_lock = threading.Lock()
_worker: _Worker | None = None
_start_failure = ""


@contextmanager
def session(answer: Callable[..., Any]) -> Iterator[Runner]:
    """A runner for the learner's function during one check (checks wait for each other).

    The runner uses the worker process (started here if need be), or a thread where the
    worker cannot run this function; after a timeout or a crash, a new worker starts in
    the background for the next check.
    """
    with _lock:
        runner = _runner_for(answer)
        try:
            yield runner
        finally:
            restart = runner.close()
    if restart:
        warm_up()


def warm_up() -> None:
    """Start the worker in the background, so that the next check does not wait for it.

    Harmless: it does nothing where the worker is off or already running, and a worker
    that fails to start only means that checks run in this process.
    """
    if _switched_off() or _start_failure or (_worker is not None and _worker.alive()):
        return
    threading.Thread(target=_warm, name="lessons-check-warm-up", daemon=True).start()


def shutdown() -> None:
    """Stop the worker (it also stops by itself when this process ends)."""
    global _worker
    locked = _lock.acquire(timeout=2.0)
    try:
        worker, _worker = _worker, None
        if worker is not None:
            worker.stop()
    finally:
        if locked:
            _lock.release()


atexit.register(shutdown)


def _warm() -> None:
    with _lock, suppress(Exception):
        if not _switched_off():
            _ready_worker()


def _switched_off() -> bool:
    return os.environ.get(SANDBOX_ENV, "").strip().lower() in ("off", "0", "false", "no")


class _Unavailable(Exception):
    """The worker cannot run this function; the message says why."""


def _runner_for(answer: Callable[..., Any]) -> Runner:
    if _switched_off():
        return _ThreadRunner(answer, f"{SANDBOX_ENV}=off: {_IN_PROCESS}")
    try:
        payload = cloudpickle.dumps(answer)
    except Exception as error:  # noqa: BLE001 - whatever cloudpickle trips on
        reason = f"your function could not be sent to a separate process ({one_line(error)})"
        return _ThreadRunner(answer, f"{reason}, so {_IN_PROCESS}")
    try:
        worker = _ready_worker()
        worker.load(payload, _origin(answer))
    except _Unavailable as error:
        return _ThreadRunner(answer, f"{error}, so {_IN_PROCESS}")
    return _WorkerRunner(worker)


def _ready_worker() -> _Worker:
    """The running worker, started if need be; a failure to start is remembered."""
    global _worker, _start_failure
    if _start_failure:
        raise _Unavailable(_start_failure)
    if _worker is None or not _worker.alive():
        try:
            _worker = _Worker()
        except _Unavailable as error:
            _start_failure = str(error)
            raise
        except Exception as error:  # noqa: BLE001 - no subprocesses here, or no python
            _start_failure = f"the worker process could not start ({one_line(error)})"
            raise _Unavailable(_start_failure) from error
    return _worker


def _origin(answer: Callable[..., Any]) -> tuple[str, list[str]]:
    """The file that defines ``answer`` ("" if unknown), with its lines where Python keeps
    them in memory only: a notebook cell has no file, and the worker shows its lines."""
    code = getattr(answer, "__code__", None)
    if not isinstance(code, types.CodeType):
        return "", []
    filename = code.co_filename
    return filename, [] if os.path.exists(filename) else linecache.getlines(filename)


def _exit_text(code: int) -> str:
    if code < 0:
        with suppress(ValueError):
            return f"exit code {code}, {signal.Signals(-code).name}"
    return f"exit code {code}"


# --------------------------------------------------------------------------------------
# The worker process: the parent's handle, and the worker's own side
# --------------------------------------------------------------------------------------


class _Channel:
    """``(kind, payload)`` messages over a connection, pickled with plain `pickle`:
    multiprocessing's pickler is taught by torch to pass tensors through shared memory,
    which needs a multiprocessing parent."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._lock = threading.Lock()

    def send(self, kind: str, payload: Any) -> None:
        self.send_bytes(pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL))

    def send_bytes(self, data: bytes) -> None:
        with self._lock:  # the learner's threads may print while a reply goes out
            self.connection.send_bytes(data)

    def receive(
        self, deadline: float = float("inf"), on_print: Callable[[str], None] | None = None
    ) -> tuple[str, Any] | None:
        """The next message other than ``"print"`` (passed to ``on_print``); None at the
        deadline. EOFError when the other side is gone."""
        while (left := deadline - time.monotonic()) > 0:
            if not self.connection.poll(None if left == float("inf") else left):
                return None
            kind, payload = pickle.loads(self.connection.recv_bytes())
            if kind != "print":
                return kind, payload
            if on_print is not None:
                on_print(payload)
        return None


# The worker's first lines: take the parent's sys.path (a notebook may have added the
# package's folder to it), then import this module and serve.
_BOOT = """\
import pickle, sys
from multiprocessing.connection import Connection
connection = Connection(int(sys.argv[1]))
sys.path[:] = pickle.loads(connection.recv_bytes())
try:
    from lessons.exercises.sandbox import serve
except BaseException as error:
    connection.send_bytes(pickle.dumps(("failed", f"{type(error).__name__}: {error}")))
    raise SystemExit(1)
serve(connection)
"""


class _Worker:
    """The parent's handle on a worker: a ``python -c`` process that imported torch and
    waits for jobs on a socket. Its output goes nowhere; it runs in its own process
    group (killed as a whole, the learner's own subprocesses included) and exits when
    the socket closes."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
                start_new_session=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.channel = _Channel(Connection(ours.detach()))
        try:
            self._request("ready", "the worker process could not start", pickle.dumps(sys.path))
        except _Unavailable:
            self.kill()
            raise

    def alive(self) -> bool:
        return self.process.poll() is None

    def load(self, payload: bytes, origin: tuple[str, list[str]]) -> None:
        """Send the learner's function (cloudpickled) for the jobs that follow, with its
        `_origin` and this process's sys.path (a notebook may add a folder at any time)."""
        message = ("load", (payload, origin, sys.path))
        request = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self._request("loaded", "the worker process could not load your function", request)

    def _request(self, expected: str, failure: str, request: bytes) -> None:
        """Send ``request`` and wait for the reply ``expected``; else raise `_Unavailable`."""
        try:
            self.channel.send_bytes(request)
            reply = self.channel.receive(time.monotonic() + START_TIMEOUT_S)
        except (EOFError, OSError):
            reply = ("failed", f"it stopped, {_exit_text(self.stop())}")
        if reply is None:
            self.kill()
            reply = ("failed", f"no answer within {START_TIMEOUT_S:g} s")
        if reply[0] != expected:
            raise _Unavailable(f"{failure} ({reply[1]})")

    def stop(self) -> int:
        """Close the socket, wait a moment for the worker to exit, else kill it."""
        self.channel.connection.close()
        try:
            return self.process.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self) -> int:
        """Kill the worker's process group at once and reap the worker (no zombie)."""
        with suppress(OSError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with suppress(OSError):
            self.process.kill()
        self.channel.connection.close()
        return self.process.wait()


def serve(connection: Connection) -> None:
    """The worker's loop (in the worker process): load the learner's function, run jobs,
    until the parent closes the connection."""
    channel = _Channel(connection)
    torch.set_num_threads(1)
    with suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    os.environ[SANDBOX_ENV] = "off"  # a check inside the learner's code stays in here
    channel.send("ready", None)
    answer: Callable[..., Any] | None = None
    while True:
        try:
            kind, payload = channel.receive()
        except EOFError:
            return
        if kind == "load":
            answer = _load(channel, *payload)
        else:
            channel.send_bytes(_reply(_run_job(channel, answer, *payload)))


def _load(channel: _Channel, payload: bytes, origin: tuple[str, list[str]], path: list[str]) -> Any:
    sys.path[:] = path
    try:
        answer = pickle.loads(payload)
    except BaseException as error:  # noqa: BLE001 - e.g. its module is not importable here
        channel.send("failed", one_line(error))
        return None
    _restore_origin(answer, *origin)
    channel.send("loaded", None)
    return answer


def _restore_origin(answer: Any, filename: str, lines: list[str]) -> None:
    """Give the learner's function its file back, so that tracebacks show its lines:
    cloudpickle names the file of code sent by value "<dynamic-code>"."""
    if lines:  # mtime None: linecache keeps the entry
        linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)
    code = getattr(answer, "__code__", None)
    if filename and isinstance(code, types.CodeType) and code.co_filename == "<dynamic-code>":
        answer.__code__ = _renamed(code, filename)


def _renamed(code: types.CodeType, filename: str) -> types.CodeType:
    """``code`` and the code nested in it (lambdas, comprehensions) with this file name."""
    consts = tuple(
        _renamed(c, filename) if isinstance(c, types.CodeType) else c for c in code.co_consts
    )
    return code.replace(co_filename=filename, co_consts=consts)


def _run_job(
    channel: _Channel,
    answer: Callable[..., Any],
    job: Job,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    timeout_s: float,
) -> tuple[Outcome, bool]:
    """Run the job from a clean torch state, printing to the parent; also say whether
    the worker is still clean (no thread of the learner's left running)."""
    torch.set_default_dtype(torch.float32)
    torch.set_default_device(None)
    torch.set_grad_enabled(True)
    torch.set_num_threads(1)
    signal.setitimer(signal.ITIMER_REAL, timeout_s + _BACKSTOP_S)  # SIGALRM: default, exit
    try:
        with _printing_to(_CappedOutput(lambda text: channel.send("print", text))):
            outcome = _execute(job, answer, args, kwargs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return outcome, threading.active_count() == 1


def _reply(result: tuple[Outcome, bool]) -> bytes:
    """The pickled ``"done"`` message; what cannot be pickled is replaced by a stand-in."""
    outcome, clean = result
    try:
        pickle.dumps(outcome.error)
    except Exception:  # noqa: BLE001 - e.g. an exception class defined in a notebook
        outcome = replace(outcome, error=None)
    try:
        return pickle.dumps(("done", (outcome, clean)), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:  # noqa: BLE001 - e.g. a tensor type that does not pickle
        value = Opaque(type(outcome.value).__name__, f"(cannot be sent back: {one_line(error)})")
        outcome = replace(outcome, value=value, inputs=None)
        return pickle.dumps(("done", (outcome, clean)), protocol=pickle.HIGHEST_PROTOCOL)
