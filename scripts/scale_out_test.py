#!/usr/bin/env python3
"""Scale-out test: three calgate instances share one PostgreSQL; one is SIGKILLed midway, and later a new one joins.

Starts the Google and Microsoft Graph simulators, a throwaway PostgreSQL database (on the server given by
--postgres-url or CALGATE_TEST_POSTGRES_URL, else a cluster of its own started with scripts/pg-cluster), and three
`calgate serve` instances with one database URL, one secret key and one pair of tokens. It connects a Google account
with many calendars and a Microsoft account with several, makes one Google calendar the "Add to calendar" target, and
then sends notifications the way the providers do, round-robin over the three instances (a failed connection or a 5xx
is retried on the next instance, as a load balancer would), while a mutator changes events in the simulators, LeadCenter
appointments are created through all three instances (each is pushed out once), and the renewal job replaces channels
and renews subscriptions every few seconds. Each instance owns a share of the 256 partitions. Phase 1: midway one
instance is killed with SIGKILL and stays down: its partition leases and work leases lapse and the other two take its
partitions and work over (the handover time is logged). Phase 2: at three quarters of the notifications a new
instance starts, joins the round-robin and takes its share of the partitions from the survivors, which give them back
(the time until it holds its share is logged). At the end it checks, reading the database with psql:

* lost: every acknowledged notification is an inbox row that was processed, and its calendar's cursor moved after the
  row arrived;
* duplicated work: no inbox row was covered by two successful syncs, no two claims of the same work (sync, renewal,
  push) overlapped in time, no push job completed twice, and every LeadCenter appointment exists once at the simulator;
* the store equals the simulators' truth, and no appointment is stored twice.

Prints `scale-out: N acked, L lost, D duplicated work` and exits non-zero unless L and D are 0 and the store is right.
Loopback only; stdlib Python plus the psql client; every wait is bounded.
"""
import argparse, json, os, random, secrets, shutil, subprocess, sys, tempfile, threading, time
import http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crash_test import ROOT, Driver, Gateway, Sender, free_port, http_json, log, stop_processes  # noqa: E402


class Database:
    """psql against the run's own database; rows come back tab-separated."""

    def __init__(self, url):
        self.url = url

    def rows(self, sql):
        result = subprocess.run(["psql", self.url, "-X", "-q", "-tA", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return [line.split("\t") for line in result.stdout.splitlines() if line]

    def value(self, sql):
        rows = self.rows(sql)
        return rows[0][0] if rows else None


class RoundRobinSender(Sender):
    """Sends each notification to the next instance in turn over keep-alive connections, one per instance; a refused
    connection or a 5xx goes to the next instance on retry."""

    def __init__(self, driver, index):
        super().__init__(driver, index)
        self.connections = {}
        self.turn = index

    def post(self, path, headers, body):
        ports = self.driver.ports
        port = ports[self.turn % len(ports)]
        self.turn += 1
        connection = self.connections.get(port)
        if connection is None:
            connection = http.client.HTTPSConnection("127.0.0.1", port, context=self.driver.ca, timeout=10)
            self.connections[port] = connection
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
                self.connections.pop(port, None)
            self.driver.record_instance(port, response.status)
            return response.status
        except (OSError, http.client.HTTPException):
            try:
                connection.close()
            except Exception:
                pass
            self.connections.pop(port, None)
            return None

    def run(self):
        super().run()
        for connection in self.connections.values():
            connection.close()


class ScaleOutDriver(Driver):
    def __init__(self, options):
        super().__init__(options)
        self.per_instance = {}

    def record_instance(self, port, status):
        with self.lock:
            counts = self.per_instance.setdefault(port, {})
            counts[status] = counts.get(status, 0) + 1

    def start_database(self, work):
        """A database of this run's own on the given server, or on a cluster started here."""
        url = self.options.postgres_url or os.environ.get("CALGATE_TEST_POSTGRES_URL")
        if not url:
            cluster = os.path.join(work, "pg")
            os.makedirs(cluster)
            os.chmod(work, 0o755)
            url = subprocess.run([os.path.join(ROOT, "scripts/pg-cluster"), "start", os.path.join(cluster, "data"), str(free_port())],
                                 check=True, capture_output=True, text=True, timeout=180).stdout.strip().splitlines()[-1]
            self.cluster = os.path.join(cluster, "data")
        name = f"calgate_scale_{self.seed}_{os.getpid()}"
        self.admin_db = Database(url)
        self.admin_db.rows(f"CREATE DATABASE {name}")
        self.db_name = name
        base, _, _ = url.rpartition("/")
        return base + "/" + name

    def stop_database(self):
        try:
            if getattr(self, "db_name", None) and getattr(self, "remove_work", False):
                self.admin_db.rows(f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)")
        except Exception as error:
            log(f"could not drop the test database: {error}")
        if getattr(self, "cluster", None):
            subprocess.run([os.path.join(ROOT, "scripts/pg-cluster"), "stop", self.cluster], capture_output=True, timeout=60)

    def run(self):
        options = self.options
        binary = options.calgate
        work = tempfile.mkdtemp(prefix="calgate-scale-")
        self.work = work
        procs, self.gateways, self.configs = [], [], []
        self.phase_one, self.phase_two = None, None
        log(f"work directory {work}, seed {self.seed}")
        try:
            url = self.start_database(work)
            self.db = Database(url)
            certs = self.start_simulators(work, binary, "scale", procs, ["--channel-lifetime", str(options.channel_lifetime)])
            self.ports = [free_port() for _ in range(options.instances)]
            self.port = self.ports[0]
            self.create_calendars(events_each=3)

            # One database, one key, one pair of tokens; each instance its own port and data directory. The public URL
            # (where Graph delivers its own notifications and handshakes) is the first instance, which stays up.
            self.api_token, admin_token = secrets.token_hex(24), secrets.token_hex(24)
            environment = dict(os.environ, CALGATE_SECRET_KEY=secrets.token_hex(32))
            for index, port in enumerate(self.ports):
                config = {
                    "listen": f"127.0.0.1:{port}", "data_dir": os.path.join(work, f"data{index + 1}"), "database": url,
                    "routes_dir": os.path.join(ROOT, "routes"), "tls": {"dev_cert_dir": certs},
                    "public_url": f"https://localhost:{self.ports[0]}",
                    "admin_token": admin_token, "api_token": self.api_token,
                    "google": {"token_url": f"{self.google}/token", "api_base_url": f"{self.google}/calendar/v3"},
                    "microsoft": {"token_url": f"{self.graph}/common/oauth2/v2.0/token", "api_base_url": f"{self.graph}/v1.0"},
                    # Every sender shares 127.0.0.1, and pushes on a channel a renewal just replaced are refused (404):
                    # without a larger budget the failed-verification limiter would answer everything 429.
                    "limits": {"verification_failure_burst": 100_000},
                    "maintenance": {"renewal_check_interval_s": options.renewal_interval,
                                    "renewal_minimum_lead_s": options.renewal_lead},
                    "log": {"level": "info", "format": "json"},
                }
                config_path = os.path.join(work, f"config{index + 1}.json")
                with open(config_path, "w") as f:
                    json.dump(config, f)
                self.configs.append(config)
                self.gateways.append(Gateway(binary, config_path, os.path.join(work, f"gateway{index + 1}.log"), port, self.ca, environment))
            for gateway in self.gateways:
                started = gateway.start()
                log(f"instance on port {gateway.port} ready in {started:.2f} s")

            api = self.api_token
            base = f"https://127.0.0.1:{self.ports[0]}"
            _, google_connection = http_json("POST", base + "/api/v1/connections", {
                "user_id": "scale", "provider": "google", "client_id": "c", "client_secret": "s", "refresh_token": "1//scale"}, api, self.ca, 120)
            _, graph_connection = http_json("POST", f"https://127.0.0.1:{self.ports[1]}/api/v1/connections", {
                "user_id": "scale", "provider": "microsoft", "client_id": "c", "client_secret": "s", "refresh_token": "0.AAAA-scale"}, api, self.ca, 120)
            self.connections = {"google": google_connection["id"], "microsoft": graph_connection["id"]}
            http_json("PUT", base + f"/api/v1/connections/{self.connections['google']}/calendars", {"selected": self.google_calendars}, api, self.ca, 120)
            http_json("PUT", base + f"/api/v1/connections/{self.connections['microsoft']}/calendars", {"selected": self.graph_calendars}, api, self.ca, 120)
            http_json("PUT", base + "/api/v1/users/scale/push-target",
                      {"connection_id": self.connections["google"], "calendar_id": "primary"}, api, self.ca, 60)
            self.targets = self.collect_targets()
            log(f"connected: {len(self.google_calendars)} Google calendars, {len(self.graph_calendars)} Graph calendars")

            # Send, mutate, create appointments to push, and kill one instance halfway.
            finals = len(self.targets)
            self.budget = options.notifications - finals
            self.pace = options.pace
            senders = [RoundRobinSender(self, i) for i in range(options.senders)]
            mutator = threading.Thread(target=self.mutate, daemon=True)
            refresher = threading.Thread(target=self.refresh_targets, daemon=True)
            pusher = threading.Thread(target=self.create_appointments, daemon=True)
            started = time.monotonic()
            for thread in [mutator, refresher, pusher] + senders:
                thread.start()
            victim = self.gateways[-1]
            while True:
                with self.lock:
                    progress = self.sent
                if progress >= self.budget // 2 or not any(s.is_alive() for s in senders):
                    break
                time.sleep(0.005)
            time.sleep(random.Random(self.seed + 2).random() * 0.3)
            # Killed while it holds work if it can be caught doing some within 5 s: its claims must lapse and the
            # others must finish that work.
            self.victim_pid = victim.process.pid
            held, deadline = [], time.monotonic() + 5
            while not held and time.monotonic() < deadline:
                held = [key for key, in self.db.rows(
                    f"SELECT key FROM work_leases WHERE owner LIKE '%-{self.victim_pid}' AND expires_at > clock_timestamp()")]
            with self.lock:
                killed_at = self.sent
            victim.kill()
            killed_clock = time.monotonic()
            self.ports = self.ports[:-1]
            log(f"SIGKILL of the instance on port {victim.port} at notification {killed_at}, holding {held or 'no claims'}; it stays down")
            self.phase_one = self.wait_for_handover(victim.process.pid, killed_clock)

            # Phase 2: a new instance joins while notifications still flow, and takes its share over.
            while True:
                with self.lock:
                    progress = self.sent
                if progress >= self.budget * 3 // 4 or not any(s.is_alive() for s in senders):
                    break
                time.sleep(0.005)
            joiner_port = free_port()
            joiner_config = dict(self.configs[-1], listen=f"127.0.0.1:{joiner_port}", data_dir=os.path.join(work, "data-joiner"))
            joiner_path = os.path.join(work, "config-joiner.json")
            with open(joiner_path, "w") as f:
                json.dump(joiner_config, f)
            joiner = Gateway(binary, joiner_path, os.path.join(work, "gateway-joiner.log"), joiner_port, self.ca, environment)
            with self.lock:
                joined_at = self.sent
            joined_clock = time.monotonic()
            joiner.start()
            # Before the victim, which stays last (the ones before it are stopped gracefully at the end).
            self.gateways.insert(len(self.gateways) - 1, joiner)
            self.ports = self.ports + [joiner_port]
            log(f"phase 2: a new instance on port {joiner_port} started at notification {joined_at}")
            self.phase_two = self.wait_for_join(joiner.process.pid, joined_clock, len(self.ports))
            for sender in senders:
                sender.join(timeout=max(1, options.deadline - (time.monotonic() - started)))
                if sender.is_alive():
                    raise SystemExit("scale-out: senders did not finish in time")
            self.stop_mutating.set()
            for thread in (mutator, refresher, pusher):
                thread.join(timeout=30)
            log(f"sent {self.sent} notifications in {time.monotonic() - started:.1f} s ({self.attempts}); "
                f"{len(self.appointments)} appointments created; per instance {self.per_instance}")

            # One last notification per calendar, after the last change. A renewal may replace a channel between
            # reading it and sending (the push is then refused 404, as Google's would be): read it again and resend.
            final_sender = RoundRobinSender(self, 999)
            for index in range(len(self.targets)):
                for attempt in range(10):
                    target = self.collect_targets()[index]
                    notification = self.make_notification(random.Random(self.seed + 3), self.budget + index * 10 + attempt, target)
                    if final_sender.deliver(notification, deadline=time.monotonic() + 30):
                        break
                else:
                    raise SystemExit(f"scale-out: the final notification for {target['calendar_key']} was not acknowledged")
            for connection in final_sender.connections.values():
                connection.close()

            verdict = self.wait_for_verdict(timeout=options.drain_timeout)
            # Who owns the partitions before the graceful stops give them back.
            self.final_partitions = self.partition_owners()
            for gateway in self.gateways[:-1]:
                gateway.stop()
            verdict = self.verdict()
            lost, duplicated, problems = verdict["lost"], verdict["duplicated"], verdict["problems"]
            for problem in problems[:20]:
                log(problem)
            if len(problems) > 20:
                log(f"... and {len(problems) - 20} more problems")
            log(f"{len(self.acked)} acknowledged; work log: {verdict['work']}; "
                f"{verdict['appointments']} appointments in {verdict['calendars']} calendars; run {time.monotonic() - started:.1f} s")
            if self.phase_one is None:
                problems.append("phase 1: the killed instance's partitions were not taken over")
            if self.phase_two is None:
                problems.append("phase 2: the new instance did not get its share of the partitions")
            print(f"scale-out: phase 1 (SIGKILL): partitions taken over in {self.phase_one or '?'} s; "
                  f"phase 2 (join): the new instance held its share in {self.phase_two or '?'} s; "
                  f"partitions now {verdict['partitions']}", flush=True)
            print(f"scale-out: {len(self.acked)} acked, {lost} lost, {duplicated} duplicated work", flush=True)
            ok = lost == 0 and duplicated == 0 and not problems
            self.remove_work = ok and not options.keep
            if not self.remove_work:
                log(f"kept {work} (and the database {self.db_name}) for inspection")
            return 0 if ok else 1
        finally:
            self.stop_sending.set()
            self.stop_mutating.set()
            for gateway in self.gateways:
                gateway.stop()
            stop_processes(procs)
            self.stop_database()
            # Last: a cluster of our own lives in the work directory.
            if getattr(self, "remove_work", False):
                shutil.rmtree(work, ignore_errors=True)

    def refresh_targets(self):
        """Channels are replaced by renewals: notifications follow the live ones, as Google's would."""
        while not self.stop_mutating.is_set():
            time.sleep(1)
            try:
                self.targets = self.collect_targets()
            except SystemExit:
                pass

    def create_appointments(self):
        """LeadCenter appointments created through every instance in turn; each must reach the simulator once."""
        self.appointments = []
        rng = random.Random(self.seed + 4)
        number = 0
        while not self.stop_mutating.is_set() and number < self.options.appointments:
            port = self.ports[number % len(self.ports)]
            day = 1 + rng.randint(0, 27)
            body = {"user_id": "scale", "title": f"lcpush-{number}", "start": f"2027-01-{day:02d}T10:00:00Z", "end": f"2027-01-{day:02d}T10:30:00Z"}
            try:
                _, created = http_json("POST", f"https://127.0.0.1:{port}/api/v1/appointments", body, self.api_token, self.ca, 30)
                self.appointments.append(created["id"])
                number += 1
            except Exception as error:
                log(f"appointment create via port {port} failed (retried on the next instance): {error}")
            time.sleep(0.2)

    # MARK: partitions

    def partition_owners(self):
        """Live partition leases per owner."""
        return {owner: int(n) for owner, n in self.db.rows(
            "SELECT owner, COUNT(*) FROM partition_leases WHERE expires_at > clock_timestamp() GROUP BY owner")}

    def wait_for_handover(self, pid, since, timeout=60):
        """Seconds from the SIGKILL until no live lease names the killed instance and the survivors own all 256."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            owners = self.partition_owners()
            if not any(owner.endswith(f"-{pid}") for owner in owners) and sum(owners.values()) == 256:
                elapsed = round(time.monotonic() - since, 2)
                log(f"phase 1: the killed instance's partitions were taken over {elapsed} s after the SIGKILL: {owners}")
                return elapsed
            time.sleep(0.1)
        log(f"phase 1: partitions not taken over within {timeout} s: {self.partition_owners()}")
        return None

    def wait_for_join(self, pid, since, instances, timeout=60):
        """Seconds from starting the new instance until it holds its fair share and every partition is owned."""
        share = -(-256 // instances)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            owners = self.partition_owners()
            mine = sum(n for owner, n in owners.items() if owner.endswith(f"-{pid}"))
            if mine >= 256 - share * (instances - 1) and sum(owners.values()) == 256 and max(owners.values()) <= share:
                elapsed = round(time.monotonic() - since, 2)
                log(f"phase 2: the new instance holds {mine} partitions {elapsed} s after it was started: {owners}")
                return elapsed
            time.sleep(0.1)
        log(f"phase 2: the new instance did not get its share within {timeout} s: {self.partition_owners()}")
        return None

    # MARK: checks

    def inbox_backlog(self):
        try:
            return int(self.db.value("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL"))
        except Exception:
            return "?"

    def verdict(self):
        problems = []
        db = self.db
        rows = {key: (float(received), processed or None) for key, received, processed in db.rows(
            "SELECT dedupe_key, extract(epoch FROM received_at), coalesce(extract(epoch FROM processed_at)::text, '') FROM inbox WHERE dedupe_key IS NOT NULL")}
        backlog = int(db.value("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL"))
        cursors = {key: float(at) for key, at in db.rows("SELECT calendar_key, extract(epoch FROM updated_at) FROM sync_cursors")}
        stored, pairs = {}, {}
        for calendar_key, external_id, title in db.rows("SELECT calendar_key, external_id, title FROM appointments"):
            if title.startswith("lcpush-"):
                continue  # an echo of a pushed LeadCenter appointment, checked below
            stored.setdefault(calendar_key, {})[external_id] = title
            pairs[(calendar_key, external_id)] = pairs.get((calendar_key, external_id), 0) + 1
        lost = self.count_lost(rows, cursors, problems)
        if backlog:
            problems.append(f"{backlog} inbox rows still unprocessed")

        # Duplicated work, from the work log every claim's release writes.
        duplicated = 0
        covered = {}
        for row_id, in db.rows("SELECT unnest(inbox_rows) FROM work_log WHERE kind = 'sync' AND outcome = 'ok'"):
            covered[row_id] = covered.get(row_id, 0) + 1
        twice = {r: n for r, n in covered.items() if n > 1}
        if twice:
            duplicated += sum(n - 1 for n in twice.values())
            problems.append(f"duplicated: {len(twice)} inbox rows were covered by more than one successful sync, e.g. {sorted(twice)[:5]}")
        overlaps = db.rows("""
            SELECT a.kind, a.key, a.owner, b.owner FROM work_log a JOIN work_log b
              ON a.key = b.key AND a.id < b.id AND a.started_at < b.finished_at AND b.started_at < a.finished_at""")
        if overlaps:
            duplicated += len(overlaps)
            problems.append(f"duplicated: {len(overlaps)} pairs of claims of the same work overlapped in time, e.g. {overlaps[:3]}")
        pushes = db.rows("SELECT inbox_rows[1], COUNT(*) FROM work_log WHERE kind = 'push' AND outcome = 'ok' GROUP BY 1 HAVING COUNT(*) > 1")
        if pushes:
            duplicated += sum(int(n) - 1 for _, n in pushes)
            problems.append(f"duplicated: push jobs completed more than once: {pushes[:5]}")
        _, primary = http_json("GET", f"{self.google}/control/calendars/primary/events")
        pushed_titles = [title for title in primary["events"].values() if title.startswith("lcpush-")]
        for title in set(pushed_titles):
            if pushed_titles.count(title) > 1:
                duplicated += pushed_titles.count(title) - 1
                problems.append(f"duplicated: {title} was pushed {pushed_titles.count(title)} times")
        expected = len(getattr(self, "appointments", []))
        if len(set(pushed_titles)) != expected:
            problems.append(f"{len(set(pushed_titles))} of {expected} LeadCenter appointments reached the Google calendar")
        work = dict((kind, int(n)) for kind, n in db.rows("SELECT kind || ':' || outcome, COUNT(*) FROM work_log GROUP BY 1"))
        owners = dict((owner, int(n)) for owner, n in db.rows("SELECT owner, COUNT(*) FROM work_log GROUP BY 1"))
        work["by instance"] = owners
        if getattr(self, "victim_pid", None):
            # Claims the killed instance still held: they lapsed and the others took the work over.
            work["claims left by the killed instance"] = [key for key, in db.rows(
                f"SELECT key FROM work_leases WHERE owner LIKE '%-{self.victim_pid}'")]

        truth = {}
        for (provider, calendar) in self.event_ids:
            _, body = http_json("GET", f"{self.simulator(provider)}/control/calendars/{calendar}/events")
            truth[f"{self.connections[provider]}/{calendar}"] = {k: v for k, v in body["events"].items() if not v.startswith("lcpush-")}
        duplicated_rows = sum(count - 1 for count in pairs.values() if count > 1)
        if duplicated_rows:
            duplicated += duplicated_rows
            problems.append(f"duplicated: {duplicated_rows} appointments stored twice")
        self.compare_truth(truth, stored, problems)
        partitions = getattr(self, "final_partitions", None) or self.partition_owners()
        if sum(partitions.values()) != 256:
            problems.append(f"only {sum(partitions.values())} of 256 partitions are owned at the end: {partitions}")
        return {"lost": lost, "duplicated": duplicated, "problems": problems, "work": work, "partitions": sorted(partitions.values(), reverse=True),
                "appointments": sum(len(v) for v in stored.values()), "calendars": len(stored), "backlog": backlog}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calgate", default=os.path.join(ROOT, ".build/release/calgate"))
    parser.add_argument("--postgres-url", help="a server to create the run's database on (default: CALGATE_TEST_POSTGRES_URL, else a cluster of its own)")
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--notifications", type=int, default=6_000)
    parser.add_argument("--appointments", type=int, default=30, help="LeadCenter appointments created (and pushed out) during the run")
    parser.add_argument("--senders", type=int, default=6)
    parser.add_argument("--google-calendars", type=int, default=12)
    parser.add_argument("--graph-calendars", type=int, default=4)
    parser.add_argument("--renewal-interval", type=int, default=3, help="seconds between renewal passes on each instance")
    parser.add_argument("--channel-lifetime", type=int, default=120, help="seconds the Google simulator's channels live")
    parser.add_argument("--renewal-lead", type=int, default=100,
                        help="renew this long before expiry: with 120 s channels, each calendar's channel is replaced every 10-20 s")
    parser.add_argument("--mutation-interval", type=float, default=0.02)
    parser.add_argument("--pace", type=float, default=0.004)
    parser.add_argument("--deadline", type=float, default=420)
    parser.add_argument("--drain-timeout", type=float, default=120)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--keep", action="store_true")
    options = parser.parse_args()
    if options.instances < 2:
        parser.error("--instances must be at least 2 (one is killed)")
    sys.exit(ScaleOutDriver(options).run())


if __name__ == "__main__":
    main()
