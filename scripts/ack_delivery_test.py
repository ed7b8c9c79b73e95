#!/usr/bin/env python3
"""Ack delivery test: every webhook row the gateway commits to its inbox got an answer the client actually received.

Starts the Google and Microsoft Graph simulators and a gateway on a data directory of its own (as scripts/crash_test.py
does, whose pieces this reuses), connects one Google account with a few calendars, and then sends Google push
notifications (empty POSTs with the channel's X-Goog-* headers, each with a message number of its own, so each maps to
exactly one inbox dedupe key `google:<channel>:<number>`) over TLS from several sender threads. The senders mix the
ways clients use a connection:

* keep-alive: one request after the other on a connection kept open between them;
* close: a new connection for one request that says `Connection: close`;
* pipelined: a new connection, several requests written at once, the last one saying `Connection: close`;
* half-close: a new connection, one to three requests written at once, then a TCP FIN (shutdown(SHUT_WR)), then the
  answers are read. The TLS is an ssl.SSLObject over memory BIOs on a plain socket, so the socket can be half-closed
  and what the server sends afterwards can still be decrypted.

Meanwhile the gateway reloads its certificate every second (SIGHUP; the files are replaced by rename, alternating two
certificates from the same dev CA), and is restarted gracefully once midway (SIGTERM, exit 0, started again on the
same port and data directory); a connection that fails while it is down is retried on a new one. Per request it
records whether a complete answer (status line, headers, Content-Length bytes of body) arrived, and its status. At the
end it stops the gateway and reads the committed dedupe keys from the SQLite inbox.

Prints `ack-delivery: N committed, A answered, U unanswered`, where committed counts this run's inbox rows, answered
those whose request got a 2xx, and unanswered those whose request got no answer or a non-2xx. Exits non-zero unless U
is 0 and every 2xx belongs to a committed row (otherwise it also says `N acked but not committed`).
Loopback only; stdlib Python only; every wait is bounded.
"""
import argparse, json, os, random, shutil, signal, socket, sqlite3, ssl, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crash_test import ROOT, Driver, Gateway, http_json, free_port, log, stop_processes  # noqa: E402

# Message numbers start far above the simulator's own (its pushes are not this run's requests).
FIRST_MESSAGE = 50_000_000_000
MODES = ("keep-alive", "close", "pipelined", "half-close")


class TLSConnection:
    """A TLS client connection made by hand: a plain socket, an ssl.SSLObject and two memory BIOs. Unlike an
    SSLSocket, the socket can be half-closed (TCP FIN) and what arrives afterwards is still decrypted."""

    def __init__(self, context, port, timeout):
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=False, server_hostname="localhost")
        self.write_closed = False
        self.buffer = b""
        try:
            while True:
                try:
                    self.tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    self._flush()
                    if not self._fill():
                        raise ConnectionError("closed during the handshake")
            self._flush()
        except BaseException:
            self.close()
            raise

    def _flush(self):
        data = self.outgoing.read()
        if data and not self.write_closed:
            self.sock.sendall(data)

    def _fill(self):
        """Moves what the socket has into the TLS object; False at the end of the stream."""
        data = self.sock.recv(65536)
        if not data:
            self.incoming.write_eof()
            return False
        self.incoming.write(data)
        return True

    def send(self, data):
        self.tls.write(data)  # into the memory BIO: never blocks, never partial
        self._flush()

    def half_close(self):
        """TCP FIN after what was sent; no close_notify (a client that simply stops sending)."""
        self.sock.shutdown(socket.SHUT_WR)
        self.write_closed = True

    def _more(self):
        """Decrypted bytes into self.buffer; False at the end of the stream (close_notify, or a FIN without it)."""
        while True:
            try:
                data = self.tls.read(65536)
                try:
                    self._flush()  # post-handshake messages may want an answer (dropped once half-closed)
                except OSError:
                    self.write_closed = True  # the server stopped reading; what it sent is still read
                if not data:
                    return False
                self.buffer += data
                return True
            except ssl.SSLWantReadError:
                if not self._fill():
                    continue  # the TLS object now raises SSLEOFError or reports close_notify
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return False

    def read_response(self):
        """The next complete answer as its status, or None when the stream ends first. Raises OSError (reset,
        timeout) and ssl.SSLError like the socket does, and ValueError on a malformed answer."""
        while True:
            while b"\r\n\r\n" not in self.buffer:
                if not self._more():
                    return None
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ")[1])
            fields = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
            if "transfer-encoding" in fields:
                raise ValueError(f"unexpected Transfer-Encoding: {fields['transfer-encoding']}")
            length = int(fields.get("content-length", "0"))
            self.buffer = rest
            while len(self.buffer) < length:
                if not self._more():
                    return None
            self.buffer = self.buffer[length:]
            if 100 <= status < 200:
                continue  # an interim answer; the real one follows
            self.closes = fields.get("connection", "").lower() == "close"
            return status

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class AckSender(threading.Thread):
    """Sends the driver's requests in sessions of a random mode until the budget is spent."""

    def __init__(self, driver, index):
        super().__init__(daemon=True, name=f"sender-{index}")
        self.driver, self.index = driver, index
        self.rng = random.Random(driver.seed * 1000 + index)
        self.kept = None  # the keep-alive connection, reused across keep-alive sessions

    def connect(self):
        """A new connection, retried while the gateway is down (restart) until the sending deadline."""
        driver = self.driver
        while time.monotonic() < driver.send_deadline and not driver.aborted.is_set():
            try:
                return TLSConnection(driver.ca, driver.port, driver.options.timeout)
            except (OSError, ssl.SSLError, ConnectionError):
                driver.count("connect retries")
                time.sleep(0.02 + self.rng.random() * 0.03)
        return None

    def exchange(self, connection, mode, requests, half_close=False):
        """Writes `requests` (message key, bytes) at once, optionally half-closes, then reads as many answers. Every
        request written is recorded with its status, or None and why no complete answer arrived."""
        driver = self.driver
        for key, _ in requests:
            driver.record_sent(key, mode)
        try:
            connection.send(b"".join(data for _, data in requests))
            if half_close:
                connection.half_close()
        except (OSError, ssl.SSLError) as error:
            # Some of it may have reached the server: what it commits must still have been answered (it was not).
            for key, _ in requests:
                driver.record_answer(key, None, f"write failed: {type(error).__name__}")
            return False
        for position, (key, _) in enumerate(requests):
            why = None
            try:
                status = connection.read_response()
                if status is None:
                    why = "closed before the answer"
            except socket.timeout:
                status, why = None, "timed out"
            except (OSError, ssl.SSLError, ValueError) as error:
                status, why = None, f"{type(error).__name__}"
            driver.record_answer(key, status, why)
            if status is None:
                for later, _ in requests[position + 1:]:
                    driver.record_answer(later, None, why)
                return False
        return True

    def keep_alive(self):
        """1-10 requests one after the other on the kept connection (a new one when the server closed it)."""
        for _ in range(self.rng.randint(1, 10)):
            if self.kept is None:
                self.kept = self.connect()
                if self.kept is None:
                    return
            requests = self.driver.requests(1)
            if not requests:
                return
            if not self.exchange(self.kept, "keep-alive", requests) or self.kept.closes:
                self.kept.close()
                self.kept = None

    def one_shot(self, mode):
        """A new connection for a burst: close (one request), pipelined (2-6, the last says close) or half-close
        (1-3, then FIN)."""
        count = {"close": 1, "pipelined": self.rng.randint(2, 6), "half-close": self.rng.randint(1, 3)}[mode]
        connection = self.connect()
        if connection is None:
            return
        try:
            requests = self.driver.requests(count, close_last=mode != "half-close")
            if requests:
                self.exchange(connection, mode, requests, half_close=mode == "half-close")
        finally:
            connection.close()

    def run(self):
        try:
            while not self.driver.done():
                mode = self.rng.choices(MODES, weights=self.driver.options.mix)[0]
                if mode == "keep-alive":
                    self.keep_alive()
                else:
                    self.one_shot(mode)
        except Exception as error:  # a bug here must not pass as "nothing unanswered"
            self.driver.problem(f"{self.name} crashed: {type(error).__name__}: {error}")
        finally:
            if self.kept:
                self.kept.close()


class AckDriver(Driver):
    """Reuses crash_test's simulators, calendars and channel lookup; sends, reloads, restarts and counts."""

    def __init__(self, options):
        super().__init__(options)
        self.results = {}      # dedupe key -> [mode, status or None, why no answer]
        self.counts = {}       # diagnostics: "connect retries", ...
        self.problems = []
        self.next_number = 0
        self.target_turn = 0

    # MARK: bookkeeping (called from sender threads)

    def count(self, what, by=1):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + by

    def problem(self, text):
        with self.lock:
            self.problems.append(text)
        log(text)

    def done(self):
        with self.lock:
            return self.next_number >= self.options.requests or time.monotonic() > self.send_deadline or self.aborted.is_set()

    def requests(self, count, close_last=False):
        """Up to `count` new requests (dedupe key, bytes), each with a message number of its own, round-robin over
        the channels; the last says `Connection: close` if asked. Empty when the budget is spent."""
        with self.lock:
            count = min(count, self.options.requests - self.next_number)
            first, self.next_number = self.next_number, self.next_number + max(count, 0)
            turn, self.target_turn = self.target_turn, self.target_turn + 1
        made = []
        for offset in range(max(count, 0)):
            channel = self.channels[(turn + offset) % len(self.channels)]
            number = FIRST_MESSAGE + first + offset
            close = close_last and offset == count - 1
            head = (
                f"POST /webhooks/google HTTP/1.1\r\nHost: localhost:{self.port}\r\n"
                f"X-Goog-Channel-ID: {channel['id']}\r\nX-Goog-Channel-Token: {channel['token']}\r\n"
                f"X-Goog-Resource-ID: {channel['resource_id']}\r\nX-Goog-Resource-State: exists\r\n"
                f"X-Goog-Resource-URI: https://www.googleapis.com/calendar/v3/calendars/{channel['calendar']}/events?alt=json\r\n"
                f"X-Goog-Message-Number: {number}\r\nX-Goog-Channel-Expiration: {channel['expiration']}\r\n"
                f"Content-Length: 0\r\n{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n"
            )
            # The key WebhookIntake/GoogleChannelVerifier stores: google:<channel id>:<message number>.
            made.append((f"google:{channel['id']}:{number}", head.encode()))
        return made

    def record_sent(self, key, mode):
        with self.lock:
            self.results[key] = [mode, None, "no answer read"]

    def record_answer(self, key, status, why):
        with self.lock:
            self.results[key][1:] = [status, why]

    # MARK: certificate reloads and the restart

    def make_certificates(self, binary, certs):
        """A second server certificate from the same dev CA (certs dev reuses a CA it finds), so every reload swaps
        the certificate and every client still verifies against the one CA."""
        self.certificate_sets = [os.path.join(self.work, "cert-a"), os.path.join(self.work, "cert-b")]
        for directory in self.certificate_sets:
            os.makedirs(directory)
        for name in ("server.pem", "server.key"):
            shutil.copy2(os.path.join(certs, name), os.path.join(self.certificate_sets[0], name))
        for name in ("dev-ca.pem", "dev-ca.key"):
            shutil.copy2(os.path.join(certs, name), os.path.join(self.certificate_sets[1], name))
        subprocess.run([binary, "certs", "dev", "--dir", self.certificate_sets[1]], check=True, capture_output=True, timeout=60)

    def install_certificate(self, index):
        """Replaces the gateway's certificate files by rename, as a deploy tool or certbot does."""
        source = self.certificate_sets[index % 2]
        for name in ("server.pem", "server.key"):
            staged = os.path.join(self.certs, "next-" + name)
            shutil.copy2(os.path.join(source, name), staged)
            os.rename(staged, os.path.join(self.certs, name))

    def reload_loop(self):
        """Every reload interval: the other certificate, then SIGHUP; never while the gateway is being restarted
        (before serve traps SIGHUP, the signal would end the process; it does by the time /admin/health answers)."""
        while not self.stop_reloading.wait(self.options.reload_interval):
            with self.gateway_lock:
                process = self.gateway.process
                if process.poll() is not None:
                    # Not restarting (that holds the lock): the gateway died on its own. Stop sending.
                    self.problem(f"the gateway exited with {process.returncode} on its own; see {self.gateway.log_path}")
                    self.aborted.set()
                    return
                self.reloads_sent += 1
                self.install_certificate(self.reloads_sent)
                process.send_signal(signal.SIGHUP)

    def restart(self):
        """SIGTERM, a bounded wait for exit 0, and a start on the same port and data directory."""
        with self.gateway_lock:
            with self.lock:
                at = self.next_number
            began = time.monotonic()
            self.gateway.process.send_signal(signal.SIGTERM)
            try:
                code = self.gateway.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.gateway.process.kill()
                code = self.gateway.process.wait(timeout=10)
            stopped = time.monotonic() - began
            if code != 0:
                self.problem(f"the graceful stop at request {at} exited with {code}, not 0")
            self.gateway.start()
            self.restarts += 1
            log(f"graceful restart at request {at}: stopped in {stopped:.2f} s (exit {code}), up again after {time.monotonic() - began:.2f} s")

    # MARK: the run

    def run(self):
        options = self.options
        binary = options.calgate
        work = tempfile.mkdtemp(prefix="calgate-ack-")
        self.work = work
        procs = []
        self.gateway = None
        self.stop_reloading, self.aborted = threading.Event(), threading.Event()
        self.gateway_lock = threading.Lock()
        self.reloads_sent = self.restarts = 0
        log(f"work directory {work}, seed {self.seed}")
        ok = False
        try:
            self.certs = self.start_simulators(work, binary, "ack", procs)
            self.make_certificates(binary, self.certs)
            self.port = free_port()
            self.create_calendars(events_each=2)
            self.graph_calendars = []  # only Google pushes here; the Graph simulator just stands by

            config = {
                "listen": f"127.0.0.1:{self.port}", "data_dir": os.path.join(work, "data"), "routes_dir": os.path.join(ROOT, "routes"),
                "tls": {"dev_cert_dir": self.certs}, "public_url": f"https://localhost:{self.port}",
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
            _, connection = http_json("POST", base + "/api/v1/connections", {
                "user_id": "ack", "provider": "google", "client_id": "c", "client_secret": "s", "refresh_token": "1//ack"}, api, self.ca, 120)
            self.connections = {"google": connection["id"]}
            http_json("PUT", base + f"/api/v1/connections/{connection['id']}/calendars", {"selected": self.google_calendars}, api, self.ca, 120)
            self.channels = [target["channel"] for target in self.collect_targets()]
            log(f"connected: {len(self.channels)} Google channels; sending {options.requests} requests from {options.senders} senders")

            # Send, reload every interval, restart once midway.
            started = time.monotonic()
            self.send_deadline = started + options.deadline
            senders = [AckSender(self, i) for i in range(options.senders)]
            reloader = threading.Thread(target=self.reload_loop, daemon=True)
            for thread in senders + [reloader]:
                thread.start()
            if not options.no_restart:
                while any(s.is_alive() for s in senders):
                    with self.lock:
                        if self.next_number >= options.requests // 2:
                            break
                    time.sleep(0.005)
                if not self.aborted.is_set():
                    self.restart()
            for sender in senders:
                sender.join(timeout=max(1, self.send_deadline + 3 * options.timeout - time.monotonic()))
                if sender.is_alive():
                    self.problem(f"{sender.name} did not finish in time")
            self.stop_reloading.set()
            reloader.join(timeout=10)
            send_seconds = time.monotonic() - started
            with self.lock:
                results = {key: list(value) for key, value in self.results.items()}
            if len(results) < options.requests:
                self.problem(f"only {len(results)} of {options.requests} requests were sent within the {options.deadline:.0f} s deadline")

            # Stop (the inbox is read once the file is quiet), then compare.
            with self.gateway_lock:
                self.gateway.process.send_signal(signal.SIGTERM)
                try:
                    code = self.gateway.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.gateway.process.kill()
                    code = self.gateway.process.wait(timeout=10)
                if code != 0:
                    self.problem(f"the final graceful stop exited with {code}, not 0")
            ok = self.report(results, send_seconds)
            return 0 if ok else 1
        finally:
            self.stop_reloading.set()
            if self.gateway:
                self.gateway.stop()
            stop_processes(procs)
            if ok and not options.keep:
                shutil.rmtree(work, ignore_errors=True)
            else:
                log(f"kept {work} for inspection")

    # MARK: the verdict

    def committed_keys(self):
        """This run's inbox rows (message numbers from FIRST_MESSAGE up), by dedupe key."""
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10) as db:
            keys = [key for key, in db.execute("SELECT dedupe_key FROM inbox WHERE provider = 'google' AND dedupe_key IS NOT NULL")]
        return {key for key in keys if int(key.rsplit(":", 1)[1]) >= FIRST_MESSAGE}

    def report(self, results, send_seconds):
        committed = self.committed_keys()
        acked = {key for key, (_, status, _) in results.items() if status is not None and 200 <= status < 300}
        answered = committed & acked
        unanswered = committed - acked
        acked_not_committed = acked - committed
        never_sent = committed - set(results)

        # Per mode: sent, 2xx, other statuses, no answer; and of the committed ones, how many went unanswered.
        per_mode = {mode: {"sent": 0, "2xx": 0, "non-2xx": 0, "no answer": 0, "committed": 0, "unanswered": 0} for mode in MODES}
        statuses, reasons = {}, {}
        for key, (mode, status, why) in results.items():
            row = per_mode[mode]
            row["sent"] += 1
            if status is None:
                row["no answer"] += 1
                reasons[why] = reasons.get(why, 0) + 1
            elif 200 <= status < 300:
                row["2xx"] += 1
            else:
                row["non-2xx"] += 1
                statuses[status] = statuses.get(status, 0) + 1
            if key in committed:
                row["committed"] += 1
                if key in unanswered:
                    row["unanswered"] += 1
        for mode in MODES:
            log(f"{mode:>10}: " + ", ".join(f"{n} {what}" for what, n in per_mode[mode].items()))
        log(f"non-2xx statuses: {statuses or 'none'}; no answer because: {reasons or 'always answered'}")
        with open(self.gateway.log_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        reloaded, refused = text.count("certificate reloaded"), text.count("certificate reload failed")
        log(f"{len(results)} requests sent in {send_seconds:.1f} s ({len(results) / max(send_seconds, 0.001):.0f}/s); "
            f"{self.restarts} graceful restarts; {self.reloads_sent} SIGHUPs, {reloaded} reloads logged, {refused} refused; "
            f"{self.counts.get('connect retries', 0)} connection attempts retried")
        for key in sorted(unanswered)[:10]:
            mode, status, why = results[key]
            log(f"unanswered: {key} ({mode}) was committed; the client got {status if status is not None else why}")
        if refused:
            self.problems.append(f"{refused} certificate reloads were refused")
        if self.reloads_sent and not reloaded:
            self.problems.append(f"{self.reloads_sent} SIGHUPs were sent but no reload was logged")
        if never_sent:
            self.problems.append(f"{len(never_sent)} committed rows belong to no request this run sent, e.g. {sorted(never_sent)[:3]}")
        if acked_not_committed:
            log(f"ack-delivery: {len(acked_not_committed)} acked but not committed, e.g. {sorted(acked_not_committed)[:3]}")
        for problem in self.problems:
            log(f"problem: {problem}")
        print(f"ack-delivery: {len(committed)} committed, {len(answered)} answered, {len(unanswered)} unanswered", flush=True)
        return not unanswered and not acked_not_committed and not self.problems


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calgate", default=os.path.join(ROOT, ".build/release/calgate"))
    parser.add_argument("--requests", type=int, default=100_000, help="webhook requests to send")
    parser.add_argument("--senders", type=int, default=8, help="sender threads")
    parser.add_argument("--mix", type=lambda text: [float(w) for w in text.split(",")], default=[4, 2, 2, 2],
                        help="weights of keep-alive, close, pipelined and half-close sessions (default 4,2,2,2)")
    parser.add_argument("--google-calendars", type=int, default=4, help="calendars, each with a channel the pushes rotate over")
    parser.add_argument("--reload-interval", type=float, default=1.0, help="seconds between certificate reloads (SIGHUP)")
    parser.add_argument("--no-restart", action="store_true", help="no graceful restart midway")
    parser.add_argument("--timeout", type=float, default=10, help="seconds a connection may wait for the server")
    parser.add_argument("--deadline", type=float, default=600, help="most seconds the sending phase may take")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--keep", action="store_true", help="keep the work directory even when the run passes")
    options = parser.parse_args()
    if len(options.mix) != len(MODES) or sum(options.mix) <= 0:
        parser.error("--mix takes four non-negative weights: keep-alive,close,pipelined,half-close")
    options.graph_calendars = 1  # create_calendars always makes the default one; it gets no pushes
    sys.exit(AckDriver(options).run())


if __name__ == "__main__":
    main()
