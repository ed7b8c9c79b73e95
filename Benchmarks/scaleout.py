#!/usr/bin/env python3
"""Acknowledged notifications per second with 1, 2 and 3 calgate instances sharing one PostgreSQL (loopback).

Starts a throwaway PostgreSQL database (on --postgres-url / CALGATE_TEST_POSTGRES_URL, else a cluster of its own via
scripts/pg-cluster), the Google simulator and up to three `calgate serve` instances with one database URL, secret key
and tokens. A Google account is connected once; then for N = 1, 2, 3 instances, N wrk processes (one per instance,
the same total of connections) send Google-shaped pushes (every one verified and committed to the shared inbox before
the answer) for --duration seconds. Writes Benchmarks/results/scaleout.md and scaleout.json: acks per second per N,
the ratio to one instance, CPU seconds each process used, and acks against inbox rows. Loopback only.
"""
import argparse, json, os, secrets, shutil, subprocess, sys, tempfile, threading, time, ssl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import ROOT, cpu_seconds, free_port, request, wait_http, write_google_script, wrk  # noqa: E402


def psql(url, sql):
    out = subprocess.run(["psql", url, "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    return out.stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calgate", default=os.path.join(ROOT, ".build/release/calgate"))
    parser.add_argument("--postgres-url")
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=48, help="total keep-alive connections, split over the instances")
    parser.add_argument("--max-instances", type=int, default=3)
    parser.add_argument("--profile", metavar="PERF_DATA", help="also perf-record the first instance during the last run")
    options = parser.parse_args()
    work = tempfile.mkdtemp(prefix="calgate-scaleout-bench-")
    os.chmod(work, 0o755)
    procs, cluster, database = [], None, None
    admin_url = options.postgres_url or os.environ.get("CALGATE_TEST_POSTGRES_URL")
    try:
        if not admin_url:
            cluster = os.path.join(work, "pg")
            admin_url = subprocess.run([os.path.join(ROOT, "scripts/pg-cluster"), "start", cluster, str(free_port())],
                                       check=True, capture_output=True, text=True, timeout=180).stdout.strip().splitlines()[-1]
        database = f"calgate_bench_{os.getpid()}"
        psql(admin_url, f"CREATE DATABASE {database}")
        url = admin_url.rpartition("/")[0] + "/" + database

        certs = os.path.join(work, "certs")
        subprocess.run([options.calgate, "certs", "dev", "--dir", certs], check=True, capture_output=True)
        ca = ssl.create_default_context(cafile=os.path.join(certs, "dev-ca.pem"))
        simulator_port = free_port()
        procs.append(subprocess.Popen([options.calgate, "simulate", "--provider", "google", "--listen", f"127.0.0.1:{simulator_port}",
                                       "--ca", os.path.join(certs, "dev-ca.pem"), "--refresh-token", "1//bench"], stdout=subprocess.DEVNULL))
        wait_http(f"http://127.0.0.1:{simulator_port}/control/channels")
        api_token, admin_token = secrets.token_hex(24), secrets.token_hex(24)
        environment = dict(os.environ, CALGATE_SECRET_KEY=secrets.token_hex(32))
        ports = [free_port() for _ in range(options.max_instances)]
        gateways = []

        def start(index):
            port = ports[index]
            config = {
                "listen": f"127.0.0.1:{port}", "data_dir": os.path.join(work, f"data{index}"), "database": url,
                "routes_dir": os.path.join(ROOT, "routes"), "tls": {"dev_cert_dir": certs, "session_resumption": False},
                "public_url": f"https://localhost:{ports[0]}", "admin_token": admin_token, "api_token": api_token,
                "google": {"token_url": f"http://127.0.0.1:{simulator_port}/token", "api_base_url": f"http://127.0.0.1:{simulator_port}/calendar/v3"},
                "log": {"level": "warning", "format": "json"},
                "limits": {"event_loop_threads": 1, "max_connections": 20000},
            }
            path = os.path.join(work, f"config{index}.json")
            with open(path, "w") as f:
                json.dump(config, f)
            log = open(os.path.join(work, f"gateway{index}.log"), "wb")
            process = subprocess.Popen([options.calgate, "serve", "--config", path], stdout=log, stderr=log, env=environment)
            procs.append(process)
            if not wait_http(f"https://localhost:{port}/admin/health", context=ca, timeout=60):
                sys.exit(f"instance {index} did not come up; see {work}/gateway{index}.log")
            gateways.append(process)

        start(0)
        request("POST", f"https://localhost:{ports[0]}/api/v1/connections", api_token,
                json.dumps({"user_id": "bench", "provider": "google", "client_id": "c", "client_secret": "s", "refresh_token": "1//bench"}), ca)
        import urllib.request
        channel = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{simulator_port}/control/channels").read())["channels"][0]

        def script(offset):
            return write_google_script(os.path.join(work, f"google-{offset}.lua"), channel, offset)

        results = {}
        acked_total = 0
        for count in range(1, options.max_instances + 1):
            while len(gateways) < count:
                start(len(gateways))
            time.sleep(1)
            # The server's processes now (each instance's pool connections have their own backend).
            postgres_pids = [int(p) for p in subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True).stdout.split()]
            per = max(1, options.connections // count)
            runs = [None] * count
            cpu_before = {p.pid: cpu_seconds(p.pid) for p in gateways}
            pg_before = sum(cpu_seconds(pid) for pid in postgres_pids)
            commits_sql = f"SELECT xact_commit FROM pg_stat_database WHERE datname = '{database}'"
            commits_before = int(psql(admin_url, commits_sql) or 0)

            def drive(index):
                offset = 10_000_000_000 * count + 1_000_000_000 * index
                runs[index] = wrk(f"https://localhost:{ports[index]}/webhooks/google", script(offset), per, options.duration)
            threads = [threading.Thread(target=drive, args=(i,)) for i in range(count)]
            recorder = None
            if options.profile and count == options.max_instances:
                recorder = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-o", options.profile, "-p", str(gateways[0].pid),
                                             "--", "sleep", str(options.duration)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if recorder:
                recorder.wait(timeout=60)
            acks = sum(r["requests"] - r["non2xx"] for r in runs)
            acked_total += acks
            time.sleep(0.6)  # pg_stat counters are flushed about every 500 ms
            commits = int(psql(admin_url, commits_sql) or 0) - commits_before
            calgate_cpu = sum(cpu_seconds(p.pid) - cpu_before[p.pid] for p in gateways)
            pg_cpu = sum(cpu_seconds(pid) for pid in postgres_pids) - pg_before
            results[f"instances_{count}"] = {
                "instances": count, "connections_each": per,
                "acks_per_second": round(sum(r["rps"] for r in runs), 1),
                "per_instance_rps": [round(r["rps"], 1) for r in runs],
                "non2xx": sum(r["non2xx"] for r in runs), "p99_ms": [r["p99_ms"] for r in runs],
                "calgate_cpu_seconds": [round(cpu_seconds(p.pid) - cpu_before[p.pid], 2) for p in gateways],
                "postgres_cpu_seconds": round(pg_cpu, 2),
                "transactions_per_ack": round(commits / acks, 3) if acks else None,
                "calgate_cpu_us_per_ack": round(calgate_cpu * 1e6 / acks, 1) if acks else None,
                "postgres_cpu_us_per_ack": round(pg_cpu * 1e6 / acks, 1) if acks else None,
            }
            print(json.dumps(results[f"instances_{count}"]), flush=True)
        time.sleep(2)
        rows = int(psql(url, "SELECT COUNT(*) FROM inbox") or 0)
        one = results["instances_1"]["acks_per_second"]
        for value in results.values():
            value["ratio_to_one"] = round(value["acks_per_second"] / one, 2) if one else None
        results["durability"] = {"acknowledged": acked_total, "inbox_rows": rows}
        results["machine"] = {"cores": os.cpu_count(), "duration_s": options.duration, "connections": options.connections}
        out_dir = os.path.join(ROOT, "Benchmarks", "results")
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "scaleout.json"), "w") as f:
            json.dump(results, f, indent=2)
        lines = ["# calgate instances sharing one PostgreSQL (loopback, one run)", "",
                 "| instances | acked notifications/s | ratio to one | per instance | calgate CPU µs/ack (all instances) | PostgreSQL CPU µs/ack | transactions/ack | p99 ms |",
                 "|---|---|---|---|---|---|---|---|"]
        for count in range(1, options.max_instances + 1):
            r = results[f"instances_{count}"]
            lines.append(f"| {count} | {r['acks_per_second']:,.0f} | {r['ratio_to_one']} | {', '.join(f'{x:,.0f}' for x in r['per_instance_rps'])} | "
                         f"{r['calgate_cpu_us_per_ack']} | {r['postgres_cpu_us_per_ack']} | {r['transactions_per_ack']} | "
                         f"{', '.join(str(x) for x in r['p99_ms'])} |")
        lines.append("")
        lines.append(f"Acknowledged {acked_total:,} pushes; {rows:,} inbox rows (rows ≥ acks). {os.cpu_count()} cores, {options.duration} s per run, "
                     f"{options.connections} connections in all.")
        with open(os.path.join(out_dir, "scaleout.md"), "w") as f:
            f.write("\n".join(lines) + "\n")
        print("\n".join(lines))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        if database and admin_url:
            try:
                psql(admin_url, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            except Exception:
                pass
        if cluster:
            subprocess.run([os.path.join(ROOT, "scripts/pg-cluster"), "stop", cluster], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
