"""Fixtures for the real-client tests: one `agentops serve` for the whole run, the read API, and
a runner for the client scripts in clients/ (each run with the right venv's python).

Setup: `scripts/python-env` (creates target/python/v03 and v04), and the server binary built
(`cargo build -p agentops-cli`). Then: `target/python/v04/bin/python -m pytest tests/python -q`.

Environment:
- AGENTOPS_BIN: the `agentops` binary (default: the newer of target/debug/agentops and
  target-server/debug/agentops).
- AGENTOPS_PYTHON_V03 / AGENTOPS_PYTHON_V04: the interpreters of the two venvs (default:
  target/python/v03/bin/python, target/python/v04/bin/python).

A missing binary or venv FAILS the run (it is never skipped): on CI a missing dependency must
not pass silently.
"""

import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLIENTS = Path(__file__).resolve().parent / "clients"
# Fixed for the whole run: the server is started with it, the clients send it.
API_KEY = "3f9a6c1e-8b2d-4e7f-9a1c-5d6e7f8a9b0c"
START_TIMEOUT = 30.0
CLIENT_TIMEOUT = 90.0

# Everything here talks to 127.0.0.1: keep any proxy of the environment out of it (requests,
# used by the tests and by the OTLP exporter in this process, honours these variables).
for _name in ("NO_PROXY", "no_proxy"):
    os.environ[_name] = ",".join(filter(None, ["127.0.0.1,localhost", os.environ.get(_name)]))


def _fail_setup(message):
    pytest.fail(message, pytrace=False)


def server_binary():
    """The server binary to test, or a failure saying how to build it."""
    explicit = os.environ.get("AGENTOPS_BIN")
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            _fail_setup(f"AGENTOPS_BIN={explicit} is not an executable file")
        return path
    candidates = [
        p
        for p in (REPO / "target/debug/agentops", REPO / "target-server/debug/agentops")
        if p.is_file() and os.access(p, os.X_OK)
    ]
    if not candidates:
        _fail_setup(
            "no agentops server binary: run `cargo build -p agentops-cli` first "
            "(looked for target/debug/agentops and target-server/debug/agentops), "
            "or set AGENTOPS_BIN"
        )
    return max(candidates, key=lambda p: p.stat().st_mtime)


def venv_python(version):
    """The interpreter of venv `version` ("v03" or "v04"), or a failure naming the setup step."""
    override = os.environ.get(f"AGENTOPS_PYTHON_{version.upper()}")
    path = Path(override) if override else REPO / "target/python" / version / "bin/python"
    if not (path.is_file() and os.access(path, os.X_OK)):
        _fail_setup(
            f"no Python venv {version} at {path}: run `scripts/python-env` first"
            + (f" (or fix AGENTOPS_PYTHON_{version.upper()})" if override else "")
        )
    return path


def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running `agentops serve` and a small client for its read API."""

    def __init__(self, binary, data_dir, log_path, extra_args=()):
        self.binary = binary
        self.data_dir = data_dir
        self.log_path = log_path
        # more `agentops serve` flags, e.g. ("--grpc-listen", "127.0.0.1:4317")
        self.extra_args = list(extra_args)
        self.url = None
        self.process = None

    def start(self):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = open(self.log_path, "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOPS_")}
        env["AGENTOPS_LOG"] = "info"
        self.process = subprocess.Popen(
            [
                str(self.binary),
                "serve",
                "--listen",
                f"127.0.0.1:{port}",
                "--data-dir",
                str(self.data_dir),
                "--api-key",
                API_KEY,
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        log.close()
        self.wait_healthy(time.monotonic() + START_TIMEOUT)

    def wait_healthy(self, deadline):
        import requests

        while True:
            if self.process.poll() is not None:
                _fail_setup(
                    f"agentops serve exited with {self.process.returncode} during start-up:\n{self.log_tail()}"
                )
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                _fail_setup(
                    f"agentops serve at {self.url} did not answer /health within {START_TIMEOUT}s:\n"
                    + self.log_tail()
                )
            time.sleep(0.05)

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def log_tail(self, lines=40):
        try:
            text = Path(self.log_path).read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    # --- read API -------------------------------------------------------------------------

    def get(self, path, headers=None, expect=200):
        import requests

        headers = {"X-Agentops-Api-Key": API_KEY} if headers is None else headers
        response = requests.get(f"{self.url}{path}", headers=headers, timeout=10)
        assert response.status_code == expect, (
            f"GET {path}: expected {expect}, got {response.status_code}: {response.text[:500]}"
        )
        return response.json()

    def sessions(self, limit=1000):
        return {s["id"]: s for s in self.get(f"/api/v1/sessions?limit={limit}")["sessions"]}

    def session(self, session_id):
        return self.get(f"/api/v1/sessions/{session_id}")

    def token(self):
        """A project token from /v3/auth/token, as the 0.4 client gets it."""
        import requests

        response = requests.post(f"{self.url}/v3/auth/token", json={"api_key": API_KEY}, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()["token"]


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """`agentops serve` on a free loopback port with a fresh data dir; stopped at the end."""
    binary = server_binary()
    root = tmp_path_factory.mktemp("agentops-server")
    srv = Server(binary, root / "data", root / "server.log")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
    if srv.process.returncode != 0:
        pytest.fail(
            f"agentops serve did not exit cleanly on SIGTERM (exit status {srv.process.returncode}):\n"
            + srv.log_tail(),
            pytrace=False,
        )


class OpenAIStub:
    """A local stand-in for the OpenAI API: POST /v1/chat/completions answers a fixed chat
    completion ("Echo: <last user message>") with fixed usage, and remembers each request."""

    MODEL = "gpt-4o-mini-2024-07-18"
    USAGE = {
        "prompt_tokens": 12,
        "completion_tokens": 5,
        "total_tokens": 17,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        stub = self
        self.requests = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                stub.requests.append({"path": self.path, "body": body})
                if not self.path.endswith("/chat/completions"):
                    self.send_error(404)
                    return
                question = body["messages"][-1]["content"]
                answer = {
                    "id": f"chatcmpl-stub-{len(stub.requests)}",
                    "object": "chat.completion",
                    "created": 1795311032,
                    "model": stub.MODEL,
                    "system_fingerprint": "fp_stub",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": f"Echo: {question}", "refusal": None},
                            "finish_reason": "stop",
                            "logprobs": None,
                        }
                    ],
                    "usage": stub.USAGE,
                }
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/v1"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self):
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture(scope="session")
def openai_stub():
    stub = OpenAIStub()
    try:
        yield stub
    finally:
        stub.close()


def offline_env(drop=("AGENTOPS_", "OTEL_", "OPENAI_")):
    """This environment for a client process: without the variables starting with `drop`, and
    without internet: anything that would leave 127.0.0.1 (0.3's PyPI version check, 0.4's
    metrics to otlp.agentops.ai) fails at once on a closed local port instead of hanging."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(tuple(drop))}
    env.update(
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    for key in ("http_proxy", "https_proxy", "all_proxy", "ALL_PROXY"):
        env.pop(key, None)
    return env


def run_client(server, version, script, *args, endpoint=None, extra_env=None, timeout=CLIENT_TIMEOUT):
    """Runs clients/`script` `args` with venv `version`'s python against `server` (or
    `endpoint`); returns the JSON object of the last stdout line that holds one."""
    python = venv_python(version)
    env = offline_env()
    env.update(AGENTOPS_API_KEY=API_KEY, AGENTOPS_API_ENDPOINT=endpoint or server.url)
    env.update(extra_env or {})
    try:
        done = subprocess.run(
            [str(python), str(CLIENTS / script), *args],
            env=env,
            cwd=tempfile.gettempdir(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{script} ({version}) did not finish in {timeout}s:\n{e.stderr}", pytrace=False)
    report = (
        f"{script} ({version}) exited {done.returncode}\n--- stdout\n{done.stdout[-3000:]}"
        f"\n--- stderr\n{done.stderr[-5000:]}\n--- server log\n{server.log_tail()}"
    )
    if done.returncode != 0:
        pytest.fail(report, pytrace=False)
    for line in reversed(done.stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    pytest.fail(f"{script} printed no JSON line\n{report}", pytrace=False)


@pytest.fixture(scope="session")
def v03_single(server):
    return run_client(server, "v03", "v03_single.py")


@pytest.fixture(scope="session")
def v03_multi(server):
    return run_client(server, "v03", "v03_multi.py")


@pytest.fixture(scope="session")
def v03_inherit(server):
    first = run_client(server, "v03", "v03_inherit.py", "start")
    second = run_client(server, "v03", "v03_inherit.py", "resume", first["session_id"])
    return {"start": first, "resume": second}


@pytest.fixture(scope="session")
def v04_run(server):
    return run_client(server, "v04", "v04_traces.py")


@pytest.fixture(scope="session")
def v04_legacy(server):
    return run_client(server, "v04", "v04_legacy.py")


def openai_env(stub):
    return {"OPENAI_BASE_URL": stub.url, "OPENAI_API_KEY": "sk-stub-not-a-real-key"}


@pytest.fixture(scope="session")
def v03_openai(server, openai_stub):
    return run_client(server, "v03", "v03_openai.py", extra_env=openai_env(openai_stub))


@pytest.fixture(scope="session")
def v04_openai(server, openai_stub):
    return run_client(server, "v04", "v04_openai.py", extra_env=openai_env(openai_stub))


def pytest_sessionstart(session):
    """Checks every dependency before any test runs: one clear message instead of many errors."""
    problems = []
    for check in (server_binary, lambda: venv_python("v03"), lambda: venv_python("v04")):
        try:
            check()
        except pytest.fail.Exception as e:
            problems.append(str(e))
    try:
        import google.protobuf  # noqa: F401
        import opentelemetry.exporter.otlp.proto.http  # noqa: F401
        import requests  # noqa: F401
    except ImportError as e:
        problems.append(
            f"{e}: run pytest with the v04 venv's python: target/python/v04/bin/python -m pytest tests/python"
        )
    if problems:
        pytest.exit("cannot run the real-client tests:\n  " + "\n  ".join(problems), returncode=1)


def pytest_report_header(config):
    try:
        return [f"agentops binary: {server_binary()}"]
    except pytest.fail.Exception:
        return ["agentops binary: missing"]
