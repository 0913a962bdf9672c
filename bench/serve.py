"""How fast `publish serve` answers feed readers, next to nginx serving the same file.

    python bench/serve.py [--seconds 3] [--rounds 3] [--connections 32]

Builds the demo site in a temporary folder, starts `publish serve` (one process,
no access log) and nginx (one worker, no access log, its own ETag) on loopback,
then measures GET /rss.xml with wrk: a full 200 answer, and a 304 answer to
If-None-Match with the server's own ETag. Prints requests/s and the ratio
publisher / nginx for both (the goal is >= 0.3). Needs nginx and wrk
(Debian packages `nginx` and `wrk`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.3

NGINX_CONF = """\
{user}
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{ application/rss+xml xml; text/html html; }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
        etag on;
        location / {{ }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"bench: {what} exited early (code {proc.returncode})")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    sys.exit(f"bench: {what} did not start")


def wrk(url: str, seconds: int, connections: int, header: str | None = None) -> float:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", url]
    if header:
        cmd[1:1] = ["-H", header]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s*([\d.]+)", out)
    if not match:
        sys.exit(f"bench: cannot read wrk's output:\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    if non2xx:
        sys.exit(f"bench: {non2xx.group(1)} failed answers from {url}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"bench: {tool} is not installed (apt-get install {tool})")

    with tempfile.TemporaryDirectory(prefix="publisher-bench-") as tmp_s:
        tmp = Path(tmp_s)
        os.chmod(tmp, 0o755)
        site = tmp / "site"
        site.mkdir()
        ours, theirs = free_port(), free_port()
        config = (ROOT / "config.toml").read_text(encoding="utf-8")
        config = re.sub(r'base_url = ".*?"', f'base_url = "http://127.0.0.1:{ours}/"', config)
        (site / "config.toml").write_text(config, encoding="utf-8")
        shutil.copytree(ROOT / "seeds", site / "seeds")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cli = [sys.executable, "-m", "publisher", "--config", str(site / "config.toml")]
        subprocess.run([*cli, "now", "--no-email"], env=env, check=True, capture_output=True)
        public = site / "public"
        size = (public / "rss.xml").stat().st_size

        (tmp / "nginx.conf").write_text(
            NGINX_CONF.format(
                user="user root;" if os.geteuid() == 0 else "", tmp=tmp, port=theirs, root=public
            ),
            encoding="utf-8",
        )
        servers = {
            "publisher": subprocess.Popen(
                [*cli, "serve", "--port", str(ours), "--no-access-log"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            "nginx": subprocess.Popen(
                ["nginx", "-c", str(tmp / "nginx.conf"), "-p", str(tmp)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
        }
        urls = {
            "publisher": f"http://127.0.0.1:{ours}/rss.xml",
            "nginx": f"http://127.0.0.1:{theirs}/rss.xml",
        }
        try:
            etags = {}
            for name, url in urls.items():
                wait_up(url, servers[name], name)
                r = httpx.get(url, headers={"accept-encoding": "identity"})
                assert r.status_code == 200 and len(r.content) == size, (name, r.status_code)
                etags[name] = r.headers["etag"]
                assert httpx.get(url, headers={"if-none-match": etags[name]}).status_code == 304, name
                wrk(url, 1, args.connections)  # warm up
            # Rounds alternate the two servers, and each keeps its best round, so a
            # busy machine (other jobs, the load generator) penalises both alike.
            results: dict[tuple[str, str], float] = {}
            for _ in range(args.rounds):
                for name, url in urls.items():
                    for case, header in (("200", None), ("304", f"If-None-Match: {etags[name]}")):
                        rate = wrk(url, args.seconds, args.connections, header)
                        results[(name, case)] = max(results.get((name, case), 0.0), rate)
        finally:
            for proc in servers.values():
                proc.terminate()
            for proc in servers.values():
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()

    print(
        f"GET /rss.xml ({size} bytes), wrk -t1 -c{args.connections} -d{args.seconds}s, best of {args.rounds} "
        f"rounds, loopback, one process each, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    print(f"{'answer':<8}{'publisher req/s':>18}{'nginx req/s':>14}{'ratio':>8}  goal >= {GOAL}")
    worst = 1.0
    for case in ("200", "304"):
        ratio = results[("publisher", case)] / results[("nginx", case)]
        worst = min(worst, ratio)
        print(
            f"{case:<8}{results[('publisher', case)]:>18.0f}{results[('nginx', case)]:>14.0f}"
            f"{ratio:>8.2f}  {'ok' if ratio >= GOAL else 'BELOW GOAL'}"
        )
    sys.exit(0 if worst >= GOAL else 1)


if __name__ == "__main__":
    main()
