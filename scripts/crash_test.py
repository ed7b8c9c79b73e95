#!/usr/bin/env python3
"""Crash test: acknowledged notifications survive SIGKILL, nothing is applied twice, the store ends equal to the truth.

Starts the Google and Microsoft Graph simulators as processes of their own (they outlive the gateway), a gateway
whose data directory persists across restarts, connects one Google account with many calendars and one Microsoft
account with several, and then sends notifications the way the providers do (Google: empty POST with X-Goog-*
headers from the channel; Graph: JSON batches with the subscription's clientState) from several threads while a
mutator keeps changing events in the simulators, so syncs have real work. At random moments the gateway is killed
with SIGKILL and restarted. At the end, once the inbox has drained, it checks:

* every notification that got a 2xx is an inbox row (by its dedupe key) that has been processed, and its
  calendar's cursor was saved after the row was received (a sync completed after it);
* no appointment exists twice (per calendar and external id, nor across calendars unless the simulator has it twice);
* each calendar's stored appointments equal the simulator's live events (ids and titles; titles carry a version).

Prints `crash: N acked, L lost, D duplicated` and exits non-zero unless L and D are 0 and the store equals the truth.
Loopback only; stdlib Python only; every wait is bounded.
"""
import argparse, http.client, json, os, random, signal, socket, sqlite3, ssl, subprocess, sys, tempfile, threading, time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(method, url, body=None, token=None, context=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, method=method, data=data)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
        raw = response.read()
        return response.status, (json.loads(raw) if raw else {})


def wait_until(predicate, timeout, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:
            pass
        time.sleep(interval)
    raise SystemExit(f"crash-test: timed out after {timeout} s waiting for {what}")


def stop_processes(procs):
    """SIGTERM to every process, then a bounded wait for each (SIGKILL after 10 s)."""
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


class Gateway:
    """`calgate serve` as a child process that can be SIGKILLed and restarted on the same data directory."""

    def __init__(self, binary, config, log_path, port, ca, environment=None):
        self.binary, self.config, self.log_path, self.port, self.ca = binary, config, log_path, port, ca
        self.environment = environment
        self.process = None
        self.starts = 0

    def start(self):
        self.starts += 1
        log_file = open(self.log_path, "ab")
        log_file.write(f"\n==== start {self.starts} ====\n".encode())
        log_file.flush()
        self.process = subprocess.Popen([self.binary, "serve", "--config", self.config], stdout=log_file, stderr=log_file,
                                        env=self.environment)
        log_file.close()
        started = time.monotonic()

        def healthy():
            if self.process.poll() is not None:
                raise SystemExit(f"crash-test: the gateway exited with {self.process.returncode} on start {self.starts}; see {self.log_path}")
            try:
                urllib.request.urlopen(f"https://127.0.0.1:{self.port}/admin/health", timeout=1, context=self.ca)
                return True
            except urllib.error.HTTPError:
                return True
            except SystemExit:
                raise
            except Exception:
                return False
        deadline = time.monotonic() + 30
        while not healthy():
            if time.monotonic() > deadline:
                raise SystemExit(f"crash-test: the gateway did not answer /admin/health within 30 s (start {self.starts})")
            time.sleep(0.02)
        return time.monotonic() - started

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


class Sender(threading.Thread):
    """Sends notifications over one keep-alive TLS connection (reconnecting when the gateway dies)."""

    def __init__(self, driver, index):
        super().__init__(daemon=True)
        self.driver, self.index = driver, index
        self.connection = None
        self.rng = random.Random(driver.seed * 1000 + index)

    def connect(self):
        self.connection = http.client.HTTPSConnection("127.0.0.1", self.driver.port, context=self.driver.ca, timeout=10)

    def post(self, path, headers, body):
        """One attempt; returns the status or None when the connection failed (then it reconnects next time)."""
        if self.connection is None:
            self.connect()
        try:
            self.connection.request("POST", path, body=body, headers=headers)
            response = self.connection.getresponse()
            response.read()
            if response.getheader("Connection", "").lower() == "close":
                self.connection.close()
                self.connection = None
            return response.status
        except (OSError, http.client.HTTPException):
            try:
                self.connection.close()
            except Exception:
                pass
            self.connection = None
            return None

    def deliver(self, notification, deadline=None):
        """Sends like the provider: retries a failed connection or a 5xx a few times with a short pause."""
        kind, target, keys, path, headers, body = notification
        attempts = 0
        while True:
            attempts += 1
            status = self.post(path, headers, body)
            self.driver.record_attempt(status)
            if status is not None and 200 <= status < 300:
                self.driver.record_ack(keys)
                return True
            if status is not None and status < 500:
                self.driver.record_refused(status, kind)
                return False
            if deadline is None and attempts >= 3:
                return False
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.05 + self.rng.random() * 0.1)

    def run(self):
        while not self.driver.stop_sending.is_set():
            notification = self.driver.next_notification(self.rng)
            if notification is None:
                break
            self.deliver(notification)
            if self.driver.pace:
                time.sleep(self.driver.pace)
        if self.connection:
            self.connection.close()


class Driver:
    def __init__(self, options):
        self.options = options
        self.seed = options.seed
        self.lock = threading.Lock()
        self.acked = {}            # dedupe key -> calendar key
        self.sent = 0              # notifications handed to a sender
        self.attempts = {"ok": 0, "failed": 0, "refused": 0}
        self.refused = {}
        self.stop_sending = threading.Event()
        self.stop_mutating = threading.Event()
        self.pace = 0.0

    # MARK: bookkeeping (called from sender threads)

    def record_attempt(self, status):
        with self.lock:
            if status is None or status >= 500:
                self.attempts["failed"] += 1
            elif 200 <= status < 300:
                self.attempts["ok"] += 1

    def record_ack(self, keys):
        with self.lock:
            for key, calendar_key in keys:
                self.acked[key] = calendar_key

    def record_refused(self, status, kind):
        with self.lock:
            self.attempts["refused"] += 1
            self.refused[(kind, status)] = self.refused.get((kind, status), 0) + 1

    def next_notification(self, rng):
        """The next notification (a Graph batch counts as as many notifications as it carries), or None when done."""
        target = rng.choice(self.targets)
        count = 1 if target["provider"] == "google" or rng.random() < 0.7 else rng.randint(2, 3)
        with self.lock:
            if self.sent >= self.budget:
                return None
            number = self.sent
            count = min(count, self.budget - self.sent)
            self.sent += count
        return self.make_notification(rng, number, target, count)

    def make_notification(self, rng, number, target, count=1):
        """A notification to `target`'s channel or subscription; a Graph batch carries `count` items."""
        if target["provider"] == "google":
            channel = target["channel"]
            # Far above the simulator's own message numbers, unique per notification.
            message = 10_000_000_000 + number
            headers = {
                "X-Goog-Channel-ID": channel["id"], "X-Goog-Channel-Token": channel["token"],
                "X-Goog-Resource-ID": channel["resource_id"], "X-Goog-Resource-State": "exists",
                "X-Goog-Resource-URI": f"https://www.googleapis.com/calendar/v3/calendars/{channel['calendar']}/events?alt=json",
                "X-Goog-Message-Number": str(message), "X-Goog-Channel-Expiration": channel["expiration"],
                "Content-Length": "0",
            }
            keys = [(f"google:{channel['id']}:{message}", target["calendar_key"])]
            return ("google", target, keys, "/webhooks/google", headers, b"")
        subscription = target["subscription"]
        items, keys = [], []
        for item in range(count):
            resource_id = f"AAMkcrash{number + item}="
            etag = f"W/\"crash-{number + item}\""
            items.append({
                "subscriptionId": subscription["id"], "clientState": subscription["clientState"], "changeType": "updated",
                "subscriptionExpirationDateTime": subscription.get("expirationDateTime", "2030-01-01T00:00:00Z"),
                "tenantId": "84bd8158-6d4d-4958-8b9f-9d6445542f95",
                "resource": f"Users/0b8b2a5c-1111-4a2b-9c3d-00000000aaaa/Events/{resource_id}",
                "resourceData": {"@odata.type": "#Microsoft.Graph.Event", "@odata.id": f"Users/0b8b2a5c/Events/{resource_id}",
                                 "@odata.etag": etag, "id": resource_id},
            })
            # GraphNotificationDecoder.inboxEntry: no "id" field, so the identity is changeType:resourceId:etag.
            keys.append((f"graph:{subscription['id']}:updated:{resource_id}:{etag}", target["calendar_key"]))
        body = json.dumps({"value": items}).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        return ("microsoft", target, keys, "/webhooks/microsoft", headers, body)

    # MARK: the run

    def run(self):
        options = self.options
        binary = options.calgate
        work = tempfile.mkdtemp(prefix="calgate-crash-")
        self.work = work
        procs = []
        self.gateway = None
        log(f"work directory {work}, seed {self.seed}")
        try:
            certs = self.start_simulators(work, binary, "crash", procs)
            self.port = free_port()
            self.create_calendars(events_each=5)

            config = {
                "listen": f"127.0.0.1:{self.port}", "data_dir": os.path.join(work, "data"), "routes_dir": os.path.join(ROOT, "routes"),
                "tls": {"dev_cert_dir": certs}, "public_url": f"https://localhost:{self.port}",
                "google": {"token_url": f"{self.google}/token", "api_base_url": f"{self.google}/calendar/v3"},
                "microsoft": {"token_url": f"{self.graph}/common/oauth2/v2.0/token", "api_base_url": f"{self.graph}/v1.0"},
                "log": {"level": "info", "format": "json"},
            }
            config_path = os.path.join(work, "config.json")
            with open(config_path, "w") as f:
                json.dump(config, f)
            self.gateway = Gateway(binary, config_path, os.path.join(work, "gateway.log"), self.port, self.ca)
            self.gateway.start()
            self.db_path = os.path.join(work, "data", "calgate.sqlite")
            api = open(os.path.join(work, "data", "api-token")).read().strip()
            base = f"https://127.0.0.1:{self.port}"
            _, google_connection = http_json("POST", base + "/api/v1/connections", {
                "user_id": "crash", "provider": "google", "client_id": "c", "client_secret": "s", "refresh_token": "1//crash"}, api, self.ca, 120)
            _, graph_connection = http_json("POST", base + "/api/v1/connections", {
                "user_id": "crash", "provider": "microsoft", "client_id": "c", "client_secret": "s", "refresh_token": "0.AAAA-crash"}, api, self.ca, 120)
            self.connections = {"google": google_connection["id"], "microsoft": graph_connection["id"]}
            http_json("PUT", base + f"/api/v1/connections/{self.connections['google']}/calendars", {"selected": self.google_calendars}, api, self.ca, 120)
            http_json("PUT", base + f"/api/v1/connections/{self.connections['microsoft']}/calendars", {"selected": self.graph_calendars}, api, self.ca, 120)
            self.targets = self.collect_targets()
            log(f"connected: {len(self.google_calendars)} Google calendars, {len(self.graph_calendars)} Graph calendars")

            # Send, mutate and kill.
            finals = len(self.targets)
            self.budget = options.notifications - finals
            self.pace = options.pace
            self.kill_rng = random.Random(self.seed + 2)
            kill_points = self.kill_points(self.budget, options.kills)
            senders = [Sender(self, i) for i in range(options.senders)]
            mutator = threading.Thread(target=self.mutate, daemon=True)
            started = time.monotonic()
            mutator.start()
            for sender in senders:
                sender.start()
            kills = []
            for point in kill_points:
                while True:
                    with self.lock:
                        progress = self.sent
                    if progress >= point or not any(s.is_alive() for s in senders):
                        break
                    time.sleep(0.005)
                # A random moment: a little jitter after the threshold.
                time.sleep(self.kill_rng.random() * 0.3)
                with self.lock:
                    at = self.sent
                inbox = self.inbox_backlog()
                self.gateway.kill()
                down = self.kill_rng.random() * 0.5
                time.sleep(down)
                restart = self.gateway.start()
                kills.append(at)
                log(f"SIGKILL {len(kills)} at notification {at} (inbox backlog {inbox}); restarted in {restart + down:.2f} s")
            for sender in senders:
                sender.join(timeout=max(1, options.deadline - (time.monotonic() - started)))
                if sender.is_alive():
                    raise SystemExit("crash-test: senders did not finish in time")
            self.stop_mutating.set()
            mutator.join(timeout=30)
            send_seconds = time.monotonic() - started
            log(f"sent {self.sent} notifications in {send_seconds:.1f} s ({self.attempts})")

            # One last notification per calendar, after the last change: an ack now means a sync after every change.
            final_sender = Sender(self, 999)
            for index, target in enumerate(self.targets):
                notification = self.make_notification(self.kill_rng, self.budget + index, target)
                if not final_sender.deliver(notification, deadline=time.monotonic() + 30):
                    raise SystemExit(f"crash-test: the final notification for {target['calendar_key']} was not acknowledged")
            if final_sender.connection:
                final_sender.connection.close()
            total_sent = self.budget + finals

            # Drain, then compare.
            verdict = self.wait_for_verdict(timeout=options.drain_timeout)
            self.gateway.stop()
            verdict = self.verdict()  # once more on the quiescent database
            if len(kills) < options.kills:
                verdict["problems"].append(f"only {len(kills)} of {options.kills} kills happened")
            lost, duplicated, problems = verdict["lost"], verdict["duplicated"], verdict["problems"]
            for problem in problems[:20]:
                log(problem)
            if len(problems) > 20:
                log(f"... and {len(problems) - 20} more problems")
            log(f"{total_sent} notifications sent, {len(self.acked)} acknowledged ({total_sent - len(self.acked)} unanswered while "
                f"the gateway was down), {len(kills)} SIGKILLs, "
                f"{verdict['appointments']} appointments in {verdict['calendars']} calendars, run {time.monotonic() - started:.1f} s")
            print(f"crash: {len(self.acked)} acked, {lost} lost, {duplicated} duplicated", flush=True)
            ok = lost == 0 and duplicated == 0 and not problems
            if ok and not options.keep:
                import shutil
                shutil.rmtree(work, ignore_errors=True)
            else:
                log(f"kept {work} for inspection")
            return 0 if ok else 1
        finally:
            self.stop_sending.set()
            self.stop_mutating.set()
            if self.gateway:
                self.gateway.stop()
            stop_processes(procs)

    def start_simulators(self, work, binary, name, procs, google_args=()):
        """A dev CA and certificate in work/certs, and the Google and Graph simulators trusting it, each a process of
        its own added to `procs` as it starts; sets self.ca, self.google and self.graph. Returns the certificate
        directory."""
        certs = os.path.join(work, "certs")
        subprocess.run([binary, "certs", "dev", "--dir", certs], check=True, capture_output=True, timeout=60)
        ca_file = os.path.join(certs, "dev-ca.pem")
        self.ca = ssl.create_default_context(cafile=ca_file)
        self.ca.check_hostname = False  # we connect to 127.0.0.1; the chain is still verified against the dev CA
        urls = {}
        for simulator, provider, token, extra in (("google", "google", f"1//{name}", list(google_args)),
                                                  ("graph", "microsoft", f"0.AAAA-{name}", [])):
            port = free_port()
            simulator_log = open(os.path.join(work, f"{simulator}-simulator.log"), "wb")
            procs.append(subprocess.Popen([binary, "simulate", "--provider", provider, "--listen", f"127.0.0.1:{port}", "--ca", ca_file,
                                           "--refresh-token", token] + extra, stdout=simulator_log, stderr=simulator_log))
            urls[simulator] = f"http://127.0.0.1:{port}"
        self.google, self.graph = urls["google"], urls["graph"]
        wait_until(lambda: http_json("GET", self.google + "/control/channels", timeout=2), 30, what="the Google simulator")
        wait_until(lambda: http_json("GET", self.graph + "/control/subscriptions", timeout=2), 30, what="the Graph simulator")
        return certs

    def create_calendars(self, events_each):
        """The options' numbers of Google and Graph calendars in the simulators, each with `events_each` events, so
        the first full syncs have work too."""
        options = self.options
        self.google_calendars = ["primary"] + [f"cal{i:02d}" for i in range(1, options.google_calendars)]
        for calendar in self.google_calendars[1:]:
            http_json("POST", self.google + "/control/calendars", {"id": calendar, "name": f"Google {calendar}"})
        self.graph_calendars = ["AAMkCalendarDefault="] + [f"mscal{i:02d}" for i in range(1, options.graph_calendars)]
        for calendar in self.graph_calendars[1:]:
            http_json("POST", self.graph + "/control/calendars", {"id": calendar, "name": f"Graph {calendar}"})
        self.rng = random.Random(self.seed)
        self.event_ids = {("google", c): [] for c in self.google_calendars}
        self.event_ids.update({("microsoft", c): [] for c in self.graph_calendars})
        self.version = 0
        for key in list(self.event_ids):
            for _ in range(events_each):
                self.create_event(*key)

    def kill_points(self, budget, kills):
        """Random notification counts at which to kill, spread over the run (never two within 5 % of the budget)."""
        while True:
            points = sorted(self.kill_rng.randint(budget // 20, budget - budget // 10) for _ in range(kills))
            if all(b - a >= budget // 20 for a, b in zip(points, points[1:])):
                return points

    def collect_targets(self):
        """The live channel or subscription of every selected calendar, as the simulators report them."""
        def ready():
            channels = [c for c in http_json("GET", self.google + "/control/channels")[1]["channels"] if not c["stopped"]]
            subscriptions = http_json("GET", self.graph + "/control/subscriptions")[1]["subscriptions"]
            by_calendar = {c["calendar"]: c for c in channels}
            subs = {}
            for s in subscriptions:
                resource = s.get("resource", "")
                for calendar in self.graph_calendars:
                    if f"/calendars/{calendar}/" in resource:
                        subs[calendar] = s
            if set(by_calendar) >= set(self.google_calendars) and set(subs) >= set(self.graph_calendars):
                self._targets = [{"provider": "google", "channel": by_calendar[c], "calendar": c,
                                  "calendar_key": f"{self.connections['google']}/{c}"} for c in self.google_calendars]
                self._targets += [{"provider": "microsoft", "subscription": subs[c], "calendar": c,
                                   "calendar_key": f"{self.connections['microsoft']}/{c}"} for c in self.graph_calendars]
                return True
            self._last_seen = (sorted(by_calendar), [s.get("resource") for s in subscriptions])
            return False
        try:
            wait_until(ready, 60, 0.2, "a channel per Google calendar and a subscription per Graph calendar")
        except SystemExit:
            log(f"seen: {getattr(self, '_last_seen', None)}")
            raise
        return self._targets

    # MARK: simulator changes

    def event_fields(self, provider, title):
        day = 1 + self.rng.randint(0, 27)
        hour = self.rng.randint(8, 17)
        if provider == "google":
            return {"summary": title, "start": {"dateTime": f"2026-12-{day:02d}T{hour:02d}:00:00Z"},
                    "end": {"dateTime": f"2026-12-{day:02d}T{hour:02d}:30:00Z"}}
        return {"subject": title, "start": {"dateTime": f"2026-12-{day:02d}T{hour:02d}:00:00.0000000", "timeZone": "UTC"},
                "end": {"dateTime": f"2026-12-{day:02d}T{hour:02d}:30:00.0000000", "timeZone": "UTC"}}

    def simulator(self, provider):
        return self.google if provider == "google" else self.graph

    def create_event(self, provider, calendar):
        self.version += 1
        _, created = http_json("POST", f"{self.simulator(provider)}/control/calendars/{calendar}/events",
                               self.event_fields(provider, f"{calendar} event v{self.version}"))
        self.event_ids[(provider, calendar)].append(created["id"])

    def mutate(self):
        """Creates, renames and deletes events in random calendars until told to stop."""
        keys = list(self.event_ids)
        self.rng = random.Random(self.seed + 1)  # the mutator's own; the main thread's kills use kill_rng
        while not self.stop_mutating.is_set():
            provider, calendar = self.rng.choice(keys)
            ids = self.event_ids[(provider, calendar)]
            roll = self.rng.random()
            try:
                if roll < 0.3 or len(ids) < 3:
                    self.create_event(provider, calendar)
                elif roll < 0.85:
                    self.version += 1
                    event = self.rng.choice(ids)
                    title_key = "summary" if provider == "google" else "subject"
                    http_json("PATCH", f"{self.simulator(provider)}/control/calendars/{calendar}/events/{event}",
                              {title_key: f"{calendar} {event} v{self.version}"})
                else:
                    event = ids.pop(self.rng.randrange(len(ids)))
                    http_json("DELETE", f"{self.simulator(provider)}/control/calendars/{calendar}/events/{event}")
            except Exception as error:
                log(f"mutation failed: {error}")
            time.sleep(self.options.mutation_interval)

    # MARK: checks

    def database(self):
        return sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)

    def inbox_backlog(self):
        try:
            with self.database() as db:
                return db.execute("SELECT COUNT(*) FROM inbox WHERE processed_at_ms IS NULL").fetchone()[0]
        except sqlite3.Error:
            return "?"

    def truth(self):
        result = {}
        for (provider, calendar) in self.event_ids:
            _, body = http_json("GET", f"{self.simulator(provider)}/control/calendars/{calendar}/events")
            result[f"{self.connections[provider]}/{calendar}"] = body["events"]
        return result

    def count_lost(self, rows, cursors, problems):
        """Acknowledged notifications not stored, not processed, or processed without a sync of their calendar that
        started after they arrived. `rows`: dedupe key → (received, processed or None); `cursors`: calendar → when its
        cursor last moved (same unit as received). Appends a line per loss to `problems`; returns the count."""
        lost = 0
        with self.lock:
            acked = dict(self.acked)
        for key, calendar_key in acked.items():
            row = rows.get(key)
            if row is None:
                lost += 1
                problems.append(f"lost: {key} was acknowledged but is not in the inbox")
            elif row[1] is None:
                lost += 1
                problems.append(f"lost: {key} is in the inbox but was never processed")
            elif cursors.get(calendar_key) is None or cursors[calendar_key] < row[0]:
                lost += 1
                problems.append(f"lost: {key} was marked processed but {calendar_key} has not synced since it arrived")
        return lost

    @staticmethod
    def compare_truth(truth, stored, problems):
        """Each calendar's stored appointments (external id → title) against the simulator's live events."""
        for calendar_key, events in truth.items():
            mine = stored.get(calendar_key, {})
            if mine != events:
                missing = sorted(set(events) - set(mine))
                extra = sorted(set(mine) - set(events))
                stale = sorted(k for k in set(events) & set(mine) if events[k] != mine[k])
                problems.append(f"{calendar_key}: store differs from the simulator: missing {missing[:5]}, extra {extra[:5]}, "
                                f"stale titles {[(k, mine[k], events[k]) for k in stale[:3]]}")

    def verdict(self):
        problems = []
        with self.database() as db:
            rows = {key: (received, processed) for key, received, processed in
                    db.execute("SELECT dedupe_key, received_at_ms, processed_at_ms FROM inbox WHERE dedupe_key IS NOT NULL")}
            backlog = db.execute("SELECT COUNT(*) FROM inbox WHERE processed_at_ms IS NULL").fetchone()[0]
            cursors = dict(db.execute("SELECT calendar_key, updated_at_ms FROM sync_cursors"))
            stored = {}
            pairs = {}
            for calendar_key, external_id, title in db.execute("SELECT calendar_key, external_id, title FROM appointments"):
                stored.setdefault(calendar_key, {})
                pairs[(calendar_key, external_id)] = pairs.get((calendar_key, external_id), 0) + 1
                stored[calendar_key][external_id] = title
        lost = self.count_lost(rows, cursors, problems)
        if backlog:
            problems.append(f"{backlog} inbox rows still unprocessed")
        truth = self.truth()
        duplicated = sum(count - 1 for count in pairs.values() if count > 1)
        # Across calendars: an external id stored more often than the simulators have it.
        truth_counts, stored_counts = {}, {}
        for events in truth.values():
            for event_id in events:
                truth_counts[event_id] = truth_counts.get(event_id, 0) + 1
        for (calendar_key, external_id), count in pairs.items():
            stored_counts[external_id] = stored_counts.get(external_id, 0) + count
        for event_id, count in stored_counts.items():
            if count > max(1, truth_counts.get(event_id, 0)):
                duplicated += count - max(1, truth_counts.get(event_id, 0))
                problems.append(f"duplicated: {event_id} is stored {count} times, the simulators have it {truth_counts.get(event_id, 0)} times")
        self.compare_truth(truth, stored, problems)
        for calendar_key in stored:
            if calendar_key not in truth:
                problems.append(f"{calendar_key}: appointments for a calendar that was never selected")
        return {"lost": lost, "duplicated": duplicated, "problems": problems,
                "appointments": sum(len(v) for v in stored.values()), "calendars": len(stored), "backlog": backlog}

    def wait_for_verdict(self, timeout):
        deadline = time.monotonic() + timeout
        verdict = None
        while time.monotonic() < deadline:
            verdict = self.verdict()
            if not verdict["problems"] and not verdict["lost"] and not verdict["duplicated"]:
                return verdict
            time.sleep(0.5)
        log(f"no clean state within {timeout} s of the last notification (backlog {verdict['backlog'] if verdict else '?'})")
        return verdict


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calgate", default=os.path.join(ROOT, ".build/release/calgate"))
    parser.add_argument("--notifications", type=int, default=20_000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--senders", type=int, default=6)
    parser.add_argument("--google-calendars", type=int, default=20)
    parser.add_argument("--graph-calendars", type=int, default=6)
    parser.add_argument("--mutation-interval", type=float, default=0.02, help="seconds between simulator changes")
    parser.add_argument("--pace", type=float, default=0.004, help="seconds each sender waits between notifications")
    parser.add_argument("--deadline", type=float, default=420, help="most seconds the sending phase may take")
    parser.add_argument("--drain-timeout", type=float, default=120)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--keep", action="store_true", help="keep the work directory even when the run passes")
    options = parser.parse_args()
    sys.exit(Driver(options).run())


if __name__ == "__main__":
    main()
