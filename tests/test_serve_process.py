"""The real thing: `python -m convlens.app.serve` (the Docker entrypoint) on a loopback port."""

import os
import re
import subprocess
import sys
import time

import httpx
import pytest

from benchmarks.harness import ROOT, png_bytes, running_server

pytestmark = pytest.mark.slow


def test_uvicorn_process_serves_health_ready_and_predictions(mnist_test):
    with running_server({"WEB_CONCURRENCY": "1"}) as server:
        assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
        assert httpx.get(server.url + "/readyz").json()["status"] == "ready"
        r = httpx.post(
            server.url + "/v1/predict", files={"file": ("d.png", png_bytes(mnist_test.images[0]), "image/png")}
        )
        assert r.status_code == 200 and r.json()["digit"] == mnist_test.labels[0]
        assert server.terminate() == 0


def sigterm_mid_burst(server, image: bytes, n: int) -> tuple[list[bytes], int]:
    """`n` requests inside the handler (each told "100 Continue": the app is reading its
    body) when SIGTERM lands; then the bodies. Returns every reply and the exit code."""
    import socket

    from benchmarks.harness import BOUNDARY, multipart

    body = multipart([("file", image)])
    head = (
        f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: 100-continue\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    socks = [socket.create_connection(("127.0.0.1", server.port), timeout=30) for _ in range(n)]
    for s in socks:
        s.sendall(head)
    for s in socks:
        assert s.recv(64).startswith(b"HTTP/1.1 100 Continue")
    server.proc.send_signal(15)
    time.sleep(0.3)  # the server is now shutting down with n requests in flight
    for s in socks:
        s.sendall(body)
    replies = []
    for s in socks:
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        s.close()
        replies.append(b"".join(chunks))
    return replies, server.proc.wait(30)


def test_sigterm_during_a_burst_completes_every_request(mnist_test):
    with running_server({"WEB_CONCURRENCY": "1", "CONVLENS_GRACE_SECONDS": "20"}) as server:
        replies, code = sigterm_mid_burst(server, png_bytes(mnist_test.images[1]), 24)
    assert [r.split(b"\r\n", 1)[0] for r in replies] == [b"HTTP/1.1 200 OK"] * 24
    assert all(f'"digit":{mnist_test.labels[1]},'.encode() in r for r in replies)
    assert code == 0


def test_multi_worker_mode_serves_and_counts_across_workers(mnist_test):
    body = png_bytes(mnist_test.images[2])
    with running_server({"WEB_CONCURRENCY": "2"}, ready_timeout=90) as server:
        n = 30
        for _ in range(n):
            with httpx.Client() as c:  # a new connection each time, so both workers get some
                r = c.post(server.url + "/v1/predict", files={"file": ("d.png", body, "image/png")})
                assert r.status_code == 200 and r.json()["digit"] == mnist_test.labels[2]
        totals = set()
        for _ in range(6):
            with httpx.Client() as c:
                text = c.get(server.url + "/metrics").text
            m = re.search(
                r'convlens_http_requests_total\{endpoint="/v1/predict",method="POST",status="200"\} (\S+)', text
            )
            totals.add(float(m.group(1)))
        # whichever worker answers /metrics, it reports the sum over all workers
        assert totals == {float(n)}
        metric_dir = f"/tmp/convlens-metrics-{server.port}"
        pids = {re.search(r"_(\d+)\.db$", f).group(1) for f in os.listdir(metric_dir) if f.startswith("counter_")}
        assert len(pids) == 2, f"expected both workers to have served, saw {pids}"
        assert server.terminate() == 0


def _served_by_pid(metric_dir: str) -> dict[str, float]:
    """/v1/predict answers per worker process, from prometheus_client's per-process files."""
    from prometheus_client.mmap_dict import MmapedDict

    counts: dict[str, float] = {}
    for name in os.listdir(metric_dir):
        if name.startswith("counter_"):
            pid = re.search(r"_(\d+)\.db$", name).group(1)
            for key, value, *_ in MmapedDict.read_all_values_from_file(os.path.join(metric_dir, name)):
                if "convlens_http_requests_total" in key and "/v1/predict" in key:
                    counts[pid] = counts.get(pid, 0) + value
    return counts


def test_keep_alive_connections_opened_at_once_spread_over_both_workers(mnist_test):
    """16 clients connect together and keep their connections: with one socket per worker
    (SO_REUSEPORT) the kernel spreads them; with one shared socket, one worker could take
    them all and leave the other idle."""
    import threading

    body = png_bytes(mnist_test.images[3])
    with running_server({"WEB_CONCURRENCY": "2"}, ready_timeout=90) as server:
        start = threading.Barrier(16)
        errors: list[str] = []

        def client() -> None:
            with httpx.Client(base_url=server.url) as c:
                start.wait()
                for _ in range(5):  # five requests on one kept-alive connection
                    r = c.post("/v1/predict", files={"file": ("d.png", body, "image/png")})
                    if r.status_code != 200:
                        errors.append(r.text)

        threads = [threading.Thread(target=client) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        served = _served_by_pid(f"/tmp/convlens-metrics-{server.port}")
        assert sum(served.values()) == 80
        assert len(served) == 2 and min(served.values()) >= 2 * 5, served  # >= 2 connections each
        assert server.terminate() == 0


def test_sigterm_drains_both_workers(mnist_test):
    """Requests in flight in both workers when SIGTERM lands are all answered; exit 0."""
    with running_server({"WEB_CONCURRENCY": "2", "CONVLENS_GRACE_SECONDS": "20"}, ready_timeout=90) as server:
        replies, code = sigterm_mid_burst(server, png_bytes(mnist_test.images[4]), 16)
        served = _served_by_pid(f"/tmp/convlens-metrics-{server.port}")
    assert [r.split(b"\r\n", 1)[0] for r in replies] == [b"HTTP/1.1 200 OK"] * 16
    assert len(served) == 2, served  # both workers had requests in flight
    assert code == 0


def test_missing_weights_stop_startup_with_one_clear_line(tmp_path):
    env = {**os.environ, "CONVLENS_WEIGHTS_DIR": str(tmp_path / "nope"), "PORT": "0"}
    out = subprocess.run(
        [sys.executable, "-m", "convlens.app.serve"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1
    lines = (out.stdout + out.stderr).strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("convlens: cannot start: weights file not found")
    assert "nope/shipped/model.safetensors" in lines[0]


def test_slow_clients_do_not_stall_the_others(mnist_test):
    import socket

    body = png_bytes(mnist_test.images[3])
    with running_server({"WEB_CONCURRENCY": "1"}) as server:
        slow = []
        for _ in range(20):  # each announces 10 kB and sends 10 bytes, then stalls
            s = socket.create_connection(("127.0.0.1", server.port))
            s.sendall(
                b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                b"Content-Length: 10000\r\n\r\n" + b"\x89PNG\r\n\x1a\n\0\0"
            )
            slow.append(s)
        for _ in range(10):
            r = httpx.post(server.url + "/v1/predict", files={"file": ("d.png", body, "image/png")}, timeout=10)
            assert r.status_code == 200 and r.json()["digit"] == mnist_test.labels[3]
        assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200
        for s in slow:
            s.close()  # hang up mid-upload: a client's problem, not a server error
        time.sleep(0.5)
        assert server.terminate() == 0
        log = server.proc.stdout.read()
    assert "Traceback" not in log and "ClientDisconnect" not in log, log[-2000:]


def read_response(s) -> str:
    """Headers and body may arrive in separate segments: read to the end of the body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            return data.decode()
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0,
    )
    while len(body) < length and (chunk := s.recv(4096)):
        body += chunk
    return (head + b"\r\n\r\n" + body).decode()


def test_a_trickling_upload_times_out_with_504():
    import socket

    with running_server({"WEB_CONCURRENCY": "1", "CONVLENS_REQUEST_TIMEOUT_S": "1"}) as server:
        s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\nabc")
        reply = read_response(s)  # nothing more is sent: the server must give up by itself
        s.close()
        assert reply.startswith("HTTP/1.1 504")
        assert '"code":"timeout"' in reply
        assert httpx.get(server.url + "/healthz").status_code == 200


def _workers(supervisor_pid: int) -> set[int]:
    """The supervisor's worker processes (multiprocessing's resource tracker left out)."""
    from pathlib import Path

    kids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if ppid == supervisor_pid and b"spawn_main" in cmdline:
            kids.add(int(stat.parent.name))
    return kids


def test_a_worker_that_dies_is_replaced_and_the_port_keeps_answering(mnist_test):
    body = png_bytes(mnist_test.images[5])
    with running_server({"WEB_CONCURRENCY": "2"}, ready_timeout=90) as server:
        workers = _workers(server.proc.pid)
        assert len(workers) == 2
        victim = min(workers)
        os.kill(victim, 9)
        deadline = time.time() + 60
        while time.time() < deadline:
            now = _workers(server.proc.pid)
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.2)
        assert len(now) == 2 and victim not in now, now
        replacement = str(max(now - workers))
        metric_dir = f"/tmp/convlens-metrics-{server.port}"
        for _ in range(60):  # new connections, hashed over both sockets: none may fail
            with httpx.Client(timeout=30) as c:
                r = c.post(server.url + "/v1/predict", files={"file": ("d.png", body, "image/png")})
            assert r.status_code == 200 and r.json()["digit"] == mnist_test.labels[5]
            if replacement in _served_by_pid(metric_dir):
                break
        assert replacement in _served_by_pid(metric_dir)  # the new worker takes its share
        assert server.terminate() == 0


def test_the_convlens_command_serves_and_stops_cleanly(tmp_path):
    from benchmarks.harness import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "convlens.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models").json()["default"] == "shipped"
        proc.send_signal(15)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
