#!/usr/bin/env python3
"""Cost figures for issue 18 that do not depend on what else loads the machine.

  --allocations   allocations, bytes and CPU per webhook per thread (the event loop apart): calgate runs with a
                  preloaded malloc counter (Benchmarks/malloccount), wrk sends keep-alive pushes for --duration seconds,
                  the inbox drains, and an idle window of the same length is subtracted. (Valgrind 3.19 cannot load the
                  Swift 6.3 runtime here and the VM exposes no instruction counters, so allocations and CPU time are the
                  repeatable figures.)
  --backlog N     µs of CPU per inbox row: N unprocessed rows for one connected calendar are written into a stopped
                  gateway's SQLite file, the gateway starts, and the process CPU time from ready to an empty backlog is
                  divided by N.

Works with any calgate binary (`--calgate`), so a figure can be measured before and after a change. Loopback only.
"""
import argparse, glob, json, os, re, signal, socket, sqlite3, ssl, subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import ROOT, free_port, wait_http, request, cpu_seconds, wrk, write_google_script, write_graph_script, simulators_and_config  # noqa: E402

def gateway_setup(calgate, work, procs):
    """Simulators, certificates and a configured data directory with one Google and one Microsoft account."""
    certs = os.path.join(work, "certs")
    subprocess.run([calgate, "certs", "dev", "--dir", certs], check=True, capture_output=True)
    sim_google, sim_graph, port = simulators_and_config(
        calgate, work, certs, lambda args, **kw: procs.append(subprocess.Popen(args, **kw)))
    ca = ssl.create_default_context(cafile=os.path.join(certs, "dev-ca.pem"))
    gateway = start(calgate, work, port, ca)
    token = open(os.path.join(work, "data", "api-token")).read().strip()
    base = f"https://localhost:{port}"
    for body in ({"provider": "google", "refresh_token": "1//bench"}, {"provider": "microsoft", "refresh_token": "0.AAAA-bench"}):
        request("POST", base + "/api/v1/connections", token, json.dumps({"user_id": "bench", "client_id": "c", "client_secret": "s", **body}), ca)
    channel = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{sim_google}/control/channels").read())["channels"][0]
    subscription = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{sim_graph}/control/subscriptions").read())["subscriptions"][0]
    stop(gateway)
    return port, ca, channel, subscription


def start(calgate, work, port, ca, prefix=()):
    gateway = subprocess.Popen(list(prefix) + [calgate, "serve", "--config", os.path.join(work, "config.json")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_http(f"https://localhost:{port}/admin/health", context=ca, timeout=120):
        gateway.kill()
        sys.exit("calgate did not come up")
    return gateway


def stop(gateway):
    gateway.send_signal(signal.SIGTERM)
    try:
        gateway.wait(timeout=120)
    except subprocess.TimeoutExpired:
        gateway.kill()


def backlog_count(work):
    db = sqlite3.connect(f"file:{os.path.join(work, 'data', 'calgate.sqlite')}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("SELECT COUNT(*) FROM inbox WHERE processed_at_ms IS NULL").fetchone()[0]
    finally:
        db.close()


def graph_request(subscription, number):
    item = {"subscriptionId": subscription["id"], "clientState": subscription["clientState"], "changeType": "updated",
            "subscriptionExpirationDateTime": "2026-12-08T09:00:00+00:00", "tenantId": "84bd8158-6d4d-4958-8b9f-9d6445542f95",
            "resource": "Users/0b8b2a5c-1111-4a2b-9c3d-00000000aaaa/Events/AAMkADFAKEeventid=",
            "resourceData": {"@odata.type": "#Microsoft.Graph.Event", "@odata.id": "Users/0b8b2a5c/Events/AAMkADFAKEeventid=",
                             "@odata.etag": f"W/e{number}", "id": "AAMkADFAKEeventid="}}
    body = json.dumps({"value": [item, item, item]}).encode()
    return (f"POST /webhooks/microsoft HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def thread_cpu(pid):
    """CPU seconds per thread (user + system) and each thread's name, from /proc."""
    out = {}
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            with open(task + "/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(task + "/comm") as f:
                name = f.read().strip()
        except FileNotFoundError:
            continue
        out[int(os.path.basename(task))] = (name, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    return out


def allocation_counts(pid, path):
    """Allocations and bytes per thread id so far (the preloaded counter writes them on SIGUSR2)."""
    if os.path.exists(path):
        os.remove(path)
    os.kill(pid, signal.SIGUSR2)
    deadline = time.time() + 10
    while time.time() < deadline:
        if os.path.exists(path) and open(path).read().endswith("end\n"):
            break
        time.sleep(0.02)
    counts = {}
    for line in open(path).read().splitlines():
        if line != "end":
            tid, allocations, size = map(int, line.split())
            counts[tid] = (allocations, size)
    return counts


def allocations(options, work, port, ca, channel, subscription):
    """Allocations and CPU per request, per thread: wrk drives keep-alive pushes at a preloaded malloc counter."""
    library = os.path.join(work, "malloccount.so")
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", library, os.path.join(ROOT, "Benchmarks", "malloccount", "malloccount.c")], check=True)
    counts_path = os.path.join(work, "malloccount.txt")
    os.environ["LD_PRELOAD"], os.environ["MALLOCCOUNT_OUT"] = library, counts_path
    try:
        gateway = start(options.calgate, work, port, ca)
    finally:
        del os.environ["LD_PRELOAD"]
    pid = gateway.pid
    if options.kind == "google":
        script = write_google_script(os.path.join(work, "google.lua"), channel, 1000)
        path = "/webhooks/google"
    else:
        template = graph_request(subscription, "ETAG").split(b"\r\n\r\n", 1)[1].decode()
        script = write_graph_script(os.path.join(work, "graph.lua"), template)
        path = "/webhooks/microsoft"
    url = f"https://localhost:{port}{path}"
    wrk(url, script, options.connections, 2)  # warm-up
    while backlog_count(work) > 0:
        time.sleep(0.2)
    time.sleep(1.5)

    def snapshot():
        return thread_cpu(pid), allocation_counts(pid, counts_path), time.monotonic()

    first = snapshot()
    run = wrk(url, script, options.connections, options.duration)
    deadline = time.time() + 120
    while backlog_count(work) > 0 and time.time() < deadline:
        time.sleep(0.1)
    second = snapshot()
    time.sleep(second[2] - first[2])
    third = snapshot()
    stop(gateway)
    requests = run["requests"]
    load_s, idle_s = second[2] - first[2], third[2] - second[2]
    threads = {}
    for tid, (name, cpu) in second[0].items():
        a0, a1, a2 = (first[1].get(tid, (0, 0)), second[1].get(tid, (0, 0)), third[1].get(tid, (0, 0)))
        c0, c2 = first[0].get(tid, (name, 0))[1], third[0].get(tid, (name, cpu))[1]
        scale = load_s / idle_s if idle_s else 1
        busy = {"cpu_us": (cpu - c0 - (c2 - cpu) * scale) * 1e6 / requests, "allocs": (a1[0] - a0[0] - (a2[0] - a1[0]) * scale) / requests,
                "bytes": (a1[1] - a0[1] - (a2[1] - a1[1]) * scale) / requests}
        label = re.sub(r"\d+$", "", name) if not name.startswith("NIO-ELT") else name
        entry = threads.setdefault(label, {"cpu_us": 0.0, "allocs": 0.0, "bytes": 0.0, "threads": 0})
        for key in ("cpu_us", "allocs", "bytes"):
            entry[key] += busy[key]
        entry["threads"] += 1
    threads = {k: {**{x: round(v[x], 1) for x in ("cpu_us", "allocs", "bytes")}, "threads": v["threads"]}
               for k, v in sorted(threads.items(), key=lambda kv: -kv[1]["cpu_us"]) if abs(v["cpu_us"]) >= 0.05 or abs(v["allocs"]) >= 0.05}
    loop = [v for k, v in threads.items() if k.startswith("NIO-ELT")]
    total = {x: round(sum(v[x] for v in threads.values()), 1) for x in ("cpu_us", "allocs", "bytes")}
    return {"kind": options.kind, "requests": requests, "rps": run["rps"], "non2xx": run["non2xx"], "load_seconds": round(load_s, 1),
            "event_loop": loop[0] if loop else None, "process": total, "threads": threads}


def backlog(options, work, port, ca, channel):
    db = sqlite3.connect(os.path.join(work, "data", "calgate.sqlite"))
    key = db.execute("SELECT calendar_key FROM push_subscriptions WHERE provider='google' AND id=?", (channel["id"],)).fetchone()[0]
    now = int(time.time() * 1000)
    headers = json.dumps({"calgate.calendar_key": key, "x-goog-channel-id": channel["id"], "x-goog-message-number": "1",
                          "x-goog-resource-id": channel["resource_id"], "x-goog-resource-state": "exists"}, sort_keys=True,
                         separators=(",", ":"))
    db.executemany(
        "INSERT INTO inbox (provider, channel_id, dedupe_key, kind, received_at_ms, headers, body, attempts) VALUES ('google', ?, ?, 'exists', ?, ?, x'', 0)",
        ((channel["id"], f"google:{channel['id']}:{10_000_000 + i}", now, headers.replace('"1"', f'"{10_000_000 + i}"')) for i in range(options.backlog)))
    db.commit()
    db.close()
    gateway = start(options.calgate, work, port, ca)
    ready_cpu, ready = cpu_seconds(gateway.pid), time.monotonic()
    deadline = time.time() + 600
    while backlog_count(work) > 0 and time.time() < deadline:
        time.sleep(0.05)
    drained_s = time.monotonic() - ready
    spent = cpu_seconds(gateway.pid) - ready_cpu
    left = backlog_count(work)
    time.sleep(1)
    idle = cpu_seconds(gateway.pid) - ready_cpu - spent  # one second of idle CPU, for context
    stop(gateway)
    return {"rows": options.backlog, "left": left, "drained_seconds": round(drained_s, 2), "cpu_seconds": round(spent, 3),
            "cpu_us_per_row": round(spent * 1e6 / options.backlog, 2), "idle_cpu_seconds_per_s": round(idle, 3)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calgate", default=os.path.join(ROOT, ".build/release/calgate"))
    parser.add_argument("--allocations", action="store_true", help="allocations and CPU per request, per thread, under wrk")
    parser.add_argument("--duration", type=int, default=6)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--kind", choices=["google", "graph"], default="google")
    parser.add_argument("--backlog", type=int, metavar="N", help="inbox rows to drain")
    parser.add_argument("--label", default="", help="a name for this binary in the output")
    options = parser.parse_args()
    work = tempfile.mkdtemp(prefix="calgate-costs-")
    procs = []
    try:
        port, ca, channel, subscription = gateway_setup(options.calgate, work, procs)
        result = {"label": options.label}
        if options.allocations:
            result["allocations"] = allocations(options, work, port, ca, channel, subscription)
        if options.backlog:
            result["backlog"] = backlog(options, work, port, ca, channel)
        print(json.dumps(result, indent=1))
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
