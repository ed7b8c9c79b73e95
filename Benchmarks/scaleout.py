#!/usr/bin/env python3
"""Work per acknowledged notification with 1, 2, 3 and 4 calgate instances sharing one PostgreSQL (loopback).

Starts a throwaway PostgreSQL database (on --postgres-url / CALGATE_TEST_POSTGRES_URL, else a cluster of its own via
scripts/pg-cluster), the Google simulator and up to four `calgate serve` instances with one database URL, secret key
and tokens. A Google account is connected once; then for N = 1 .. 4 instances, N wrk processes (one per instance,
the same total of connections) send Google-shaped pushes (every one verified and committed to the shared inbox before
the answer) for --duration seconds. Per N it reports acks per second, CPU µs per ack of all calgate instances and of
PostgreSQL (the cluster's postmaster and backends, exited ones included, when the cluster is this run's own),
transactions per ack (pg_stat_database.xact_commit) and inbox rows read per ack (the instances'
calgate_inbox_rows_read_total, summed). The figure to hold is total work per ack, not req/s (2 cores are shared by
everything). Then, with N instances under load, it SIGKILLs the instance owning the pushed calendar's partition and
measures the handover: until no live partition lease names it and all 256 are owned, and until every row that was
unprocessed at the kill is processed. Writes Benchmarks/results/scaleout.md and scaleout.json. Loopback only.
"""
import argparse, json, os, re, secrets, shutil, signal, subprocess, sys, tempfile, threading, time, ssl, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import ROOT, children, cpu_seconds, free_port, request, wait_http, write_google_script, wrk  # noqa: E402


def cluster_cpu_seconds(postmaster):
    """CPU of a PostgreSQL cluster: the postmaster, its live children, and (cutime, cstime) the exited ones it reaped."""
    try:
        with open(f"/proc/{postmaster}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        own = sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except FileNotFoundError:
        return 0.0
    return own + sum(cpu_seconds(pid) for pid in children(postmaster))


def rows_read(port, admin, context):
    """The instance's calgate_inbox_rows_read_total (0 before its first read)."""
    req = urllib.request.Request(f"https://localhost:{port}/admin/metrics")
    req.add_header("Authorization", f"Bearer {admin}")
    text = urllib.request.urlopen(req, timeout=10, context=context).read().decode()
    match = re.search(r"^calgate_inbox_rows_read_total(?:\{[^}]*\})? ([0-9.e+]+)", text, re.M)
    return float(match.group(1)) if match else 0.0


def psql(url, sql):
    out = subprocess.run(["psql", url, "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    return out.stdout.strip()


def project(results, measured, target):
    """A least-squares line through the measured instance counts, per figure, evaluated at `target` instances: what
    the measured growth per added instance would make of 20 (the figures are per ack, so a flat line is the goal)."""
    counts = list(range(1, measured + 1))
    out = {"instances": target, "from_instances": counts}
    for figure in ("total_cpu_us_per_ack", "calgate_cpu_us_per_ack", "postgres_cpu_us_per_ack", "transactions_per_ack", "rows_read_per_ack"):
        values = [results[f"instances_{n}"][figure] for n in counts]
        if any(v is None for v in values) or len(counts) < 2:
            continue
        mean_x, mean_y = sum(counts) / len(counts), sum(values) / len(values)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(counts, values)) / sum((x - mean_x) ** 2 for x in counts)
        at_target = mean_y + slope * (target - mean_x)
        out[figure] = {"per_added_instance": round(slope, 3), "at_target": round(at_target, 3),
                       "ratio_to_one": round(at_target / values[0], 2) if values[0] else None}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calgate", default=os.path.join(ROOT, ".build/release/calgate"))
    parser.add_argument("--postgres-url")
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=48, help="total keep-alive connections, split over the instances")
    parser.add_argument("--max-instances", type=int, default=4)
    parser.add_argument("--handover-load", type=int, default=20, help="seconds of load on the survivors around the SIGKILL")
    parser.add_argument("--partition-lease", type=int, default=10, help="maintenance.partition_lease_s of the instances")
    parser.add_argument("--profile", metavar="PERF_DATA", help="also perf-record the first instance during the last run")
    options = parser.parse_args()
    work = tempfile.mkdtemp(prefix="calgate-scaleout-bench-")
    os.chmod(work, 0o755)
    procs, cluster, database = [], None, None
    admin_url = options.postgres_url or os.environ.get("CALGATE_TEST_POSTGRES_URL")
    try:
        postmaster = None
        if not admin_url:
            cluster = os.path.join(work, "pg")
            admin_url = subprocess.run([os.path.join(ROOT, "scripts/pg-cluster"), "start", cluster, str(free_port())],
                                       check=True, capture_output=True, text=True, timeout=180).stdout.strip().splitlines()[-1]
            with open(os.path.join(cluster, "postmaster.pid")) as f:
                postmaster = int(f.readline())
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
                "maintenance": {"partition_lease_s": options.partition_lease},
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

        def partition_owners():
            """Live partition leases per instance, most first."""
            out = psql(url, "SELECT COUNT(*) FROM partition_leases WHERE expires_at > clock_timestamp() GROUP BY owner ORDER BY 1 DESC")
            return [int(x) for x in out.split()] if out else []

        def handover():
            """SIGKILL the instance owning the pushed calendar's partition while the others take pushes."""
            owner = psql(url, "SELECT l.owner FROM partition_leases l JOIN inbox i ON i.partition = l.partition ORDER BY i.id DESC LIMIT 1")
            victim = next(p for p in gateways if owner.endswith(f"-{p.pid}"))
            survivors = [ports[i] for i, p in enumerate(gateways) if p is not victim]
            victim_partitions = int(psql(url, f"SELECT COUNT(*) FROM partition_leases WHERE owner = '{owner}' AND expires_at > clock_timestamp()"))
            runs = [None] * len(survivors)

            def drive(index):
                runs[index] = wrk(f"https://localhost:{survivors[index]}/webhooks/google", script(90_000_000_000 + 1_000_000_000 * index),
                                  max(1, options.connections // len(survivors)), options.handover_load)
            threads = [threading.Thread(target=drive, args=(i,)) for i in range(len(survivors))]
            for t in threads:
                t.start()
            time.sleep(3)
            last_id = int(psql(url, "SELECT COALESCE(MAX(id), 0) FROM inbox"))
            victim.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            victim.wait(timeout=10)
            unprocessed_at_kill = int(psql(url, f"SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL AND id <= {last_id}"))
            taken, processed = None, None
            while time.monotonic() - killed < 120 and (taken is None or processed is None):
                if taken is None:
                    held = int(psql(url, f"SELECT COUNT(*) FROM partition_leases WHERE owner = '{owner}' AND expires_at > clock_timestamp()"))
                    owned = int(psql(url, "SELECT COUNT(*) FROM partition_leases WHERE expires_at > clock_timestamp()"))
                    if held == 0 and owned == 256:
                        taken = round(time.monotonic() - killed, 2)
                if processed is None and int(psql(url, f"SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL AND id <= {last_id}")) == 0:
                    processed = round(time.monotonic() - killed, 2)
                time.sleep(0.05)
            for t in threads:
                t.join()
            gateways.remove(victim)
            return {"victim_partitions": victim_partitions, "partitions_taken_over_s": taken, "rows_unprocessed_at_kill": unprocessed_at_kill,
                    "rows_processed_s": processed, "acks_during": sum(r["requests"] - r["non2xx"] for r in runs),
                    "non2xx_during": sum(r["non2xx"] for r in runs), "partition_lease_s": options.partition_lease}

        results = {}
        acked_total = 0
        for count in range(1, options.max_instances + 1):
            while len(gateways) < count:
                start(len(gateways))
            # Measure after the partitions settled (a joining instance holds its share after one or two heartbeats).
            share = -(-256 // count)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                owners = partition_owners()
                if len(owners) == count and sum(owners) == 256 and max(owners) <= share:
                    break
                time.sleep(0.2)
            time.sleep(1)
            # The server's processes now (each instance's pool connections have their own backend).
            postgres_pids = [int(p) for p in subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True).stdout.split()]

            def pg_cpu_now():
                return cluster_cpu_seconds(postmaster) if postmaster else sum(cpu_seconds(pid) for pid in postgres_pids)
            per = max(1, options.connections // count)
            runs = [None] * count
            cpu_before = {p.pid: cpu_seconds(p.pid) for p in gateways}
            read_before = sum(rows_read(port, admin_token, ca) for port in ports[:count])
            pg_before = pg_cpu_now()
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
            pg_cpu = pg_cpu_now() - pg_before
            read = sum(rows_read(port, admin_token, ca) for port in ports[:count]) - read_before
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
                "total_cpu_us_per_ack": round((calgate_cpu + pg_cpu) * 1e6 / acks, 1) if acks else None,
                "rows_read_per_ack": round(read / acks, 3) if acks else None,
                "partition_owners": partition_owners(),
            }
            print(json.dumps(results[f"instances_{count}"]), flush=True)
        results["handover"] = handover()
        print(json.dumps(results["handover"]), flush=True)
        time.sleep(2)
        rows = int(psql(url, "SELECT COUNT(*) FROM inbox") or 0)
        one = results["instances_1"]["acks_per_second"]
        work_one = results["instances_1"]["total_cpu_us_per_ack"]
        for key, value in results.items():
            if not key.startswith("instances_"):
                continue
            value["ratio_to_one"] = round(value["acks_per_second"] / one, 2) if one else None
            value["work_ratio_to_one"] = round(value["total_cpu_us_per_ack"] / work_one, 2) if work_one else None
        results["projection_20"] = project(results, options.max_instances, 20)
        results["durability"] = {"acknowledged": acked_total, "inbox_rows": rows}
        results["machine"] = {"cores": os.cpu_count(), "duration_s": options.duration, "connections": options.connections}
        out_dir = os.path.join(ROOT, "Benchmarks", "results")
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "scaleout.json"), "w") as f:
            json.dump(results, f, indent=2)
        lines = ["# calgate instances sharing one PostgreSQL (loopback, one run, partitioned ownership)", "",
                 "| instances | total CPU µs/ack (calgate + PostgreSQL) | × one instance | calgate CPU µs/ack (all instances) | PostgreSQL CPU µs/ack | "
                 "transactions/ack | inbox rows read/ack | acked notifications/s | per instance | partitions owned | p99 ms |",
                 "|---|---|---|---|---|---|---|---|---|---|---|"]
        for count in range(1, options.max_instances + 1):
            r = results[f"instances_{count}"]
            lines.append(f"| {count} | {r['total_cpu_us_per_ack']} | {r['work_ratio_to_one']} | {r['calgate_cpu_us_per_ack']} | {r['postgres_cpu_us_per_ack']} | "
                         f"{r['transactions_per_ack']} | {r['rows_read_per_ack']} | {r['acks_per_second']:,.0f} | "
                         f"{', '.join(f'{x:,.0f}' for x in r['per_instance_rps'])} | {', '.join(str(x) for x in r['partition_owners'])} | "
                         f"{', '.join(str(x) for x in r['p99_ms'])} |")
        h = results["handover"]
        lines.append("")
        lines.append(f"Handover after a SIGKILL of the instance owning the pushed calendar's partition ({h['victim_partitions']} partitions), "
                     f"{options.max_instances - 1} survivors under load, partition lease {options.partition_lease} s: all 256 partitions owned by "
                     f"survivors after {h['partitions_taken_over_s']} s; every row unprocessed at the kill ({h['rows_unprocessed_at_kill']}) "
                     f"processed after {h['rows_processed_s']} s; {h['acks_during']:,} pushes acknowledged meanwhile, {h['non2xx_during']} not.")
        p = results["projection_20"]
        if "total_cpu_us_per_ack" in p:
            lines.append("")
            lines.append(f"Projected to 20 instances (least-squares line through 1–{options.max_instances}): total CPU "
                         f"{p['total_cpu_us_per_ack']['at_target']} µs/ack ({p['total_cpu_us_per_ack']['ratio_to_one']}× one instance; "
                         f"{p['total_cpu_us_per_ack']['per_added_instance']:+} µs per added instance), transactions "
                         f"{p['transactions_per_ack']['at_target']}/ack, rows read {p['rows_read_per_ack']['at_target']}/ack.")
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
