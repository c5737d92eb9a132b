"""The buffering reverse proxy of docker-compose.yml (deploy/nginx/conf.d/ingest.conf), run with
Debian's nginx in front of a real `wa-analytics serve`: idle clients, bodies at the limits,
nginx's own refusals. `make test` installs nginx if it is missing (as root, from Debian)."""

import http.client
import os
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest
from idle_clients import IdleClients, probe

from wa_analytics.core.processes import free_port, spawn_cli, stop_all, wait_ready

SITE = Path(__file__).parent.parent / "deploy" / "nginx" / "conf.d" / "ingest.conf"
HOST = "127.0.0.1"
APP_LIMIT = 3 * 1024 * 1024  # WA_MAX_BODY_BYTES' default
PROXY_LIMIT = 4 * 1024 * 1024  # client_max_body_size


def nginx_binary() -> str:
    found = (
        os.environ.get("WA_NGINX")
        or shutil.which("nginx")
        or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    )
    assert found, "nginx is not installed: `make test` installs Debian's package (apt-get)"
    return found


def render(prefix: Path, listen_port: int, upstream_port: int) -> list[str]:
    """The shipped site with compose's names replaced by loopback ports, inside a main config
    like the official image's (its own pid, logs and temporary paths under ``prefix``); the
    command line that runs it in the foreground."""
    site = SITE.read_text()
    for compose_only in ("server ingest:8000;", "listen 8000;"):
        assert site.count(compose_only) == 1, f"{SITE} should say `{compose_only}` once"
    site = site.replace("server ingest:8000;", f"server {HOST}:{upstream_port};")
    site = site.replace("listen 8000;", f"listen {HOST}:{listen_port};")
    (prefix / "conf.d").mkdir(parents=True, exist_ok=True)
    (prefix / "conf.d" / "ingest.conf").write_text(site)
    temp_paths = "\n".join(
        f"    {kind}_temp_path {prefix}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (prefix / "nginx.conf").write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"""worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 1024; }}
http {{
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    keepalive_timeout 65;
{temp_paths}
    include {prefix}/conf.d/*.conf;
}}
"""
    )
    prefix_args = ["-p", str(prefix), "-e", str(prefix / "error.log")]
    return [nginx_binary(), *prefix_args, "-c", str(prefix / "nginx.conf")]


class Nginx:
    """nginx in the foreground on a free loopback port, in front of ``upstream_port``."""

    def __init__(self, prefix: Path, upstream_port: int):
        self.prefix = prefix
        self.port = free_port()
        self.command = render(prefix, self.port, upstream_port)

    def __enter__(self) -> "Nginx":
        self.process = subprocess.Popen(self.command, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            assert self.process.poll() is None, self.process.stderr.read().decode()
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return self
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start listening"
                time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process.stderr.close()

    def error_log(self) -> str:
        return (self.prefix / "error.log").read_text()


@pytest.fixture
def sync_service(servers, redis_conn, monkeypatch):
    """`wa-analytics serve` with the sync workers it used to default to (2 x cores + 1 of them):
    the service the proxy must protect. Yields its port."""
    # One thread: gunicorn turns a sync worker with threads into its threaded one.
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--worker-class sync --threads 1")
    port = free_port()
    service = spawn_cli(["serve", "--port", str(port)])
    try:
        wait_ready(f"http://{HOST}:{port}", service)
        yield port
    finally:
        stop_all([service])


def exchange(port: int, method: str, path: str, body: bytes = b"", headers=None):
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_the_shipped_config_passes_nginx_t(tmp_path):
    command = render(tmp_path, free_port(), free_port())
    result = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_behind_the_proxy_200_idle_clients_stop_nothing(sync_service, tmp_path):
    """The same 200 idle connections that stop bare sync workers cost nothing behind nginx:
    every probe of /healthz and of a signed webhook answers within a second."""
    with IdleClients(HOST, sync_service, count=200):
        bare = probe(HOST, sync_service, duration=3, timeout=1.5)
    # Without the proxy the probes can fail: the test below would see it.
    assert bare.slowest("GET /healthz") > 1.0, bare.summary()

    with Nginx(tmp_path / "nginx", sync_service) as nginx:
        with IdleClients(HOST, nginx.port, count=200):
            time.sleep(0.5)  # every idle connection made, before the clock starts
            proxied = probe(HOST, nginx.port, duration=6, timeout=3)
    for name in proxied.times:
        assert proxied.slowest(name) < 1.0, proxied.summary()
    assert proxied.statuses == {"GET /healthz": {200}, "POST /webhooks/whatsapp": {200}}


def test_the_service_decides_at_its_limit_and_nginx_above_it(sync_service, tmp_path):
    with Nginx(tmp_path / "nginx", sync_service) as nginx:
        # Exactly at the service's limit: read whole, in memory, and judged by the service
        # (unsigned, so refused for that, not for its size).
        status, _, answer = exchange(nginx.port, "POST", "/webhooks/crm", b"x" * APP_LIMIT,
                                     {"Content-Type": "application/json"})  # fmt: skip
        assert status == 401 and "signature" in orjson.loads(answer)["reason"]
        # One byte over: the service's own 413, with the limit it applies.
        status, headers, answer = exchange(nginx.port, "POST", "/webhooks/crm",
                                           b"x" * (APP_LIMIT + 1))  # fmt: skip
        assert status == 413 and headers["Content-Type"] == "application/json"
        assert orjson.loads(answer)["reason"] == f"body larger than {APP_LIMIT} bytes"
        # Beyond nginx's limit: refused by nginx from the headers alone, in the same format.
        with socket.create_connection((HOST, nginx.port), timeout=10) as sock:
            sock.sendall(f"POST /webhooks/crm HTTP/1.1\r\nHost: x\r\nContent-Length: "
                         f"{PROXY_LIMIT + 1}\r\n\r\n".encode())  # fmt: skip
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413") and b"Content-Type: application/json" in head
        assert set(orjson.loads(body)) == {"error", "reason"}
        assert "temporary file" not in nginx.error_log()


class RecordingUpstream(BaseHTTPRequestHandler):
    """Answers 200 and keeps what it was sent."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[dict[str, str], bytes]] = []
    peers: list[tuple[tuple[str, int], str]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((dict(self.headers), body))
        self.peers.append((self.client_address, self.path))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def test_the_proxy_forwards_the_sender_over_kept_alive_connections(tmp_path):
    upstream = ThreadingHTTPServer((HOST, 0), RecordingUpstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    try:
        with Nginx(tmp_path / "nginx", upstream.server_address[1]) as nginx:
            for _ in range(3):
                connection = http.client.HTTPConnection(HOST, nginx.port, timeout=10)
                connection.request("POST", "/webhooks/whatsapp", body=iter([b'{"a":', b"1}"]),
                                   headers={"X-Forwarded-For": "203.0.113.9"},
                                   encode_chunked=True)  # fmt: skip
                assert connection.getresponse().status == 200
                connection.close()
    finally:
        upstream.shutdown()
        upstream.server_close()
    headers, body = RecordingUpstream.seen[-1]
    # A chunked body arrives whole, with its length; the address nginx saw comes last.
    assert (body, headers["Content-Length"]) == (b'{"a":1}', "7")
    assert headers["X-Forwarded-For"] == "203.0.113.9, 127.0.0.1"
    assert headers["X-Forwarded-Proto"] == "http"
    # Three requests from three clients, one connection upstream.
    assert len({peer for peer, _ in RecordingUpstream.peers[-3:]}) == 1


def test_the_proxy_answers_its_own_errors_in_json(tmp_path):
    with Nginx(tmp_path / "nginx", free_port()) as nginx:  # nothing listens upstream
        # The service's metrics are for Prometheus on the private network, not the internet.
        status, _, answer = exchange(nginx.port, "GET", "/metrics", b"")
        assert status == 404 and set(orjson.loads(answer)) == {"error", "reason"}
        status, headers, answer = exchange(nginx.port, "POST", "/webhooks/whatsapp", b"{}")
        assert status == 502 and headers["Content-Type"] == "application/json"
        assert headers["Retry-After"] == "5"
        assert set(orjson.loads(answer)) == {"error", "reason"}
        with socket.create_connection((HOST, nginx.port), timeout=10) as sock:
            sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            head, _, body = sock.recv(65536).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400") and set(orjson.loads(body)) == {"error", "reason"}
