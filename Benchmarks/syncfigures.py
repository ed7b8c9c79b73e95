#!/usr/bin/env python3
"""The sync-side figures of the benchmark suite (issue 7), produced by `calgate-bench` and `calgate serve`.

- delta fetches for 1,000 pushes on one calendar, and for 1,000 calendars x 10 pushes (`calgate-bench coalesce-one`,
  `coalesce-many`: the gateway in-process with real TLS, SQLite and libcurl, the Google simulator on loopback HTTP,
  every notification a real HTTPS push to /webhooks/google);
- appointments applied per second from pages of 250 (`calgate-bench apply`: 100,000 events, full then incremental);
- resident memory of `calgate serve` on a store with 10,000 connections and their channels/subscriptions
  (`calgate-bench seed`, then serve against simulators, RSS read from /proc after it settles).

`run()` returns entries shaped like bench.py's `results`; `python3 Benchmarks/syncfigures.py` runs it alone.
"""
import json, os, signal, socket, ssl, subprocess, sys, tempfile, time, urllib.error, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEP_TIMEOUT = 120  # each figure takes well under a minute on 2 cores; this only stops a hung run


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return 0
    return 0


def _wait_http(url, context=None, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1, context=context)
            return True
        except urllib.error.HTTPError:
            return True
        except Exception:
            time.sleep(0.05)
    return False


def _bench(bench_binary, *args):
    """Runs one calgate-bench subcommand; its last stdout line is the JSON object."""
    out = subprocess.run([bench_binary, *args], capture_output=True, text=True, timeout=STEP_TIMEOUT, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"calgate-bench {' '.join(args)} failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _serve_rss(calgate_binary, work_dir, data_dir, certs, google, microsoft, settle=3.0):
    """Starts `calgate serve` on data_dir, waits for /admin/health, settles, returns (rss_kb, ready_ms, health)."""
    port = _free_port()
    config = {
        "listen": f"127.0.0.1:{port}", "data_dir": data_dir, "routes_dir": os.path.join(ROOT, "routes"),
        "tls": {"dev_cert_dir": certs}, "public_url": f"https://localhost:{port}",
        "google": {"token_url": f"{google}/token", "api_base_url": f"{google}/calendar/v3"},
        "microsoft": {"token_url": f"{microsoft}/common/oauth2/v2.0/token", "api_base_url": f"{microsoft}/v1.0"},
        "log": {"level": os.environ.get("SYNCFIG_LOG", "warning"), "format": "json"},
    }
    path = os.path.join(work_dir, f"config-{os.path.basename(data_dir)}.json")
    with open(path, "w") as f:
        json.dump(config, f)
    ca = ssl.create_default_context(cafile=os.path.join(certs, "dev-ca.pem"))
    log = open(os.path.join(work_dir, f"serve-{os.path.basename(data_dir)}.log"), "w")
    started = time.monotonic()
    proc = subprocess.Popen([calgate_binary, "serve", "--config", path], stdout=log, stderr=log)
    try:
        if not _wait_http(f"https://localhost:{port}/admin/health", context=ca):
            raise RuntimeError(f"calgate serve on {data_dir} did not come up (see {log.name})")
        ready_ms = (time.monotonic() - started) * 1000
        time.sleep(settle)
        rss = _rss_kb(proc.pid)
        if proc.poll() is not None:
            raise RuntimeError(f"calgate serve on {data_dir} exited ({proc.returncode}, see {log.name})")
        token = open(os.path.join(data_dir, "admin-token")).read().strip()
        req = urllib.request.Request(f"https://localhost:{port}/admin/health", headers={"Authorization": f"Bearer {token}"})
        try:
            health = json.loads(urllib.request.urlopen(req, timeout=10, context=ca).read())
        except urllib.error.HTTPError as e:  # degraded/failing answers are not 200 but still JSON
            health = json.loads(e.read() or b"{}")
        return rss, ready_ms, health
    finally:
        _stop(proc)
        log.close()


def run(bench_binary: str, calgate_binary: str, work_dir: str, sim_env: dict) -> dict:
    """Runs every sync-side figure. From `sim_env` only "certs" (a directory with dev-ca.pem, server.pem and
    server.key, as bench.py makes) is used, when given; the in-process figures bring their own simulators, and the
    memory figure starts its own `calgate simulate` pair (the Graph one must accept one refresh token per seeded
    Microsoft connection)."""
    results = {}
    procs = []
    try:
        one = _bench(bench_binary, "coalesce-one")
        results["delta_fetches_1000_notifications_one_calendar"] = {
            "calgate": one["delta_fetches"], "target": "≤ 2",
            "notifications": one["notifications"], "acknowledged": one["acknowledged"], "burst_s": round(one["burst_seconds"], 3),
            "settled_s": round(one["until_settled_seconds"], 3), "converged": one["converged"],
        }

        many = _bench(bench_binary, "coalesce-many")
        results["delta_fetches_1000_calendars_x10"] = {
            "calgate": many["delta_fetches"], "target": "≤ 2,000", "wall_s": round(many["wall_seconds"], 2),
            "burst_s": round(many["burst_seconds"], 2), "notifications": many["notifications"], "acknowledged": many["acknowledged"],
            "calendars_converged": many["calendars_converged"],
            "order": f"{many['order']}: blocks of {many['block_calendars']} calendars, each calendar's 10 pushes within "
                     f"{round(many['per_calendar_push_span_seconds_max'], 2)} s (max; median {round(many['per_calendar_push_span_seconds_median'], 2)} s)",
            "setup": many["setup"] + f" ({many['accounts']} accounts, {round(many['connect_seconds'], 1)} s)",
        }

        apply = _bench(bench_binary, "apply")
        results["appointments_applied_per_s"] = {
            "calgate": apply["appointments_applied_per_s"], "target": "≥ 50,000",
            "full_sync": f"{apply['full_sync_changes']} events, {apply['full_sync_pages']} list calls, {round(apply['full_sync_seconds'], 2)} s",
            "incremental_per_s": apply["incremental_applied_per_s"],
            "incremental": f"{apply['incremental_changes']} changes, {apply['incremental_pages']} list calls, {round(apply['incremental_seconds'], 2)} s",
            "converged": apply["converged"],
        }

        certs = sim_env.get("certs")
        if not certs:
            certs = os.path.join(work_dir, "certs")
            subprocess.run([calgate_binary, "certs", "dev", "--dir", certs], check=True, capture_output=True)
        seeded_dir = os.path.join(work_dir, "data-10k")
        seed = _bench(bench_binary, "seed", "--data-dir", seeded_dir, "--connections", "10000")
        # Simulators of our own: Graph rotates a refresh token on first use, so each seeded Microsoft connection has
        # its own, which bench.py's simulators would not accept.
        ca_file = os.path.join(certs, "dev-ca.pem")
        google_port, microsoft_port = _free_port(), _free_port()
        procs.append(subprocess.Popen([calgate_binary, "simulate", "--provider", "google", "--listen", f"127.0.0.1:{google_port}",
                                       "--ca", ca_file, "--refresh-token", "1//bench"], stdout=subprocess.DEVNULL))
        tokens = []
        for i in range(seed["microsoft"]):
            tokens += ["--refresh-token", f"{seed['microsoft_refresh_token_prefix']}{i}"]
        procs.append(subprocess.Popen([calgate_binary, "simulate", "--provider", "microsoft", "--listen", f"127.0.0.1:{microsoft_port}",
                                       "--ca", ca_file, "--refresh-token", "0.AAAA-bench", *tokens], stdout=subprocess.DEVNULL))
        google, microsoft = f"http://127.0.0.1:{google_port}", f"http://127.0.0.1:{microsoft_port}"
        _wait_http(f"{google}/control/channels")
        _wait_http(f"{microsoft}/control/subscriptions")

        empty_dir = os.path.join(work_dir, "data-empty")
        empty_rss, _, _ = _serve_rss(calgate_binary, work_dir, empty_dir, certs, google, microsoft)
        rss, ready_ms, health = _serve_rss(calgate_binary, work_dir, seeded_dir, certs, google, microsoft)
        results["rss_with_10000_connections_mb"] = {
            "calgate": round(rss / 1024, 1), "target": "≤ 100 MB",
            "empty_store_mb": round(empty_rss / 1024, 1), "connections": seed["connections"],
            "split": f"{seed['google']} Google (channel each), {seed['microsoft']} Microsoft (subscription each)",
            "startup_to_ready_ms": round(ready_ms, 1), "health": health.get("status"), "seed_s": round(seed["seconds"], 1),
            "note": "VmRSS 3 s after the first /admin/health answer",
        }
    finally:
        for p in reversed(procs):
            _stop(p)
    return results


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument("--bench", default=os.path.join(ROOT, ".build/release/calgate-bench"))
    parser.add_argument("--calgate", default=os.path.join(ROOT, ".build/release/calgate"))
    options = parser.parse_args()
    work = tempfile.mkdtemp(prefix="calgate-syncfigures-")
    print(json.dumps(run(options.bench, options.calgate, work, {}), indent=2, ensure_ascii=False))
