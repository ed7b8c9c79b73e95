import CurlHTTP
import Foundation
import GatewayAssembly
import GatewayCore
import GatewayHTTP
import GoogleCalendar
import Hummingbird
import Logging
import MicrosoftGraph
import OpenSSLTLS
import SecretSealing
import ProviderSimulators
import Redtail
import SQLiteStore
import ServiceLifecycle
import SyncEngine

/// A month of provider time in a minute or two: the whole gateway in-process (real TLS on loopback, a real SQLite
/// file, libcurl) with the Google, Graph and Redtail simulators, all on one manual clock stepped hour by hour.
/// Providers misbehave throughout: a share of calls fail (429, 5xx, timeouts), a share of notifications is dropped,
/// Graph is down for a day, Graph removes a subscription, Google invalidates every sync token. Each step makes
/// random calendar changes, runs the renewal job, the reconciliation sweep and the Redtail poller, and waits until
/// the gateway is quiet; at the end every calendar must equal its provider's truth with nothing lapsed.
public enum MonthSimulation {
    /// What to simulate.
    public struct Options: Sendable {
        /// Days of provider time.
        public var days = 30
        /// Provider time per step, in hours (also the Redtail poll interval: Redtail changes made at the start of a
        /// step must be stored by its end).
        public var stepHours = 2.0
        /// Hours between reconciliation sweeps of each Google and Graph calendar.
        public var sweepHours = 6.0
        /// Share of provider API calls that fail.
        public var failureRate = 0.10
        /// Share of notifications dropped.
        public var dropRate = 0.05
        /// Random seed (changes, faults).
        public var seed: UInt64 = 2026
        /// The route table directory (the repository's `routes`).
        public var routesDirectory = "routes"
        /// Creates defaults.
        public init() {}
    }

    /// What happened.
    public struct Report: Sendable {
        /// Subscriptions or channels that expired before renewal (must be zero).
        public var lapsed = 0
        /// Calendars whose store equals the provider's truth at the end.
        public var converged = 0
        /// Calendars simulated.
        public var total = 0
        /// Calendars with more than one live channel or subscription at the end.
        public var duplicateChannels = 0
        /// Steps after which a Redtail calendar differed from Redtail (edits must appear within one poll).
        public var redtailLateSteps = 0
        /// Changes the reconciliation sweep found that push never announced, per provider.
        public var missedByPush: [Provider: Int] = [:]
        /// Provider calls failed and notifications dropped by the chaos.
        public var chaosFailures = 0
        /// Notifications dropped by the chaos.
        public var chaosDrops = 0
        /// Renewals done.
        public var renewals = 0
        /// Calendar changes made at the providers.
        public var changes = 0
        /// Calendars that differ, with what differs (empty when converged).
        public var differences: [String] = []
        /// Wall-clock seconds the run took.
        public var seconds = 0.0

        /// The closing line `scripts/simulated-month` ends with.
        public var summary: String {
            "month: \(lapsed) lapsed, \(converged) of \(total) calendars converged, \(duplicateChannels) duplicate channels"
        }
    }

    /// A calendar the run tracks: where the truth is and where calgate stores it.
    struct Tracked {
        var key: String
        var truth: @Sendable () -> [String: String]
        var mutate: @Sendable (inout SplitRandom, Date) -> Void
        var redtail: Bool
    }

    /// Runs the month; `progress` receives a line per simulated day.
    public static func run(_ options: Options, logger: Logger, progress: @Sendable (String) -> Void = { _ in }) async throws -> Report {
        let started = ContinuousClock.now
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("calgate-month-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let clock = ManualGatewayClock(start: Date())
        var random = SplitRandom(seed: options.seed)

        // Certificates, and the clients the simulators push with (trusting only the gateway's dev CA).
        let certificates = try DevCertificateAuthority.generate(directory: directory + "/certs")
        var pushConfiguration = CurlHTTPClient.Configuration()
        pushConfiguration.caBundlePath = certificates.caCertificate
        pushConfiguration.requestTimeout = .seconds(5)
        let pushClient = try CurlHTTPClient(configuration: pushConfiguration)

        // The simulators, on the manual clock, with chaos.
        let google = GoogleSimulator(refreshTokens: ["1//month-google"], pushClient: pushClient, clock: { clock.now() })
        google.addCalendar(id: "team", name: "Team")
        google.addCalendar(id: "family", name: "Family")
        let graph = GraphSimulator(
            refreshTokens: ["0.AAAA-month"], pushClient: pushClient,
            retryDelays: [.milliseconds(50), .milliseconds(100), .milliseconds(200)], clock: { clock.now() }
        )
        graph.addCalendar(id: "AAMkMonthWork=", name: "Work")
        graph.addCalendar(id: "AAMkMonthHolidays=", name: "Holidays (not synced)")
        let advisors = [
            RedtailSimulator.User(apiKey: "month-partner", username: "advisor-a", password: "pw-a", userKey: "UK-A", id: 1001),
            RedtailSimulator.User(apiKey: "month-partner", username: "advisor-b", password: "pw-b", userKey: "UK-B", id: 1002),
        ]
        let redtail = RedtailSimulator(users: advisors, clock: { clock.now() })
        google.chaos.configure(failureRate: options.failureRate, dropRate: options.dropRate, timeoutDelay: .milliseconds(300), seed: options.seed &+ 1)
        graph.chaos.configure(failureRate: options.failureRate, dropRate: options.dropRate, timeoutDelay: .milliseconds(300), seed: options.seed &+ 2)
        redtail.chaos.configure(failureRate: options.failureRate, dropRate: 0, timeoutDelay: .milliseconds(300), seed: options.seed &+ 3)
        let googleServer = try await SimulatorServer(router: google.makeRouter())
        let graphServer = try await SimulatorServer(router: graph.makeRouter())
        let redtailServer = try await SimulatorServer(router: redtail.makeRouter())

        // The gateway.
        var config = GatewayConfiguration()
        config.listen = ListenAddress(host: "127.0.0.1", port: try freeLoopbackPort())
        config.dataDirectory = directory
        config.routesDirectory = options.routesDirectory
        let publicURL = "https://localhost:\(config.listen.port)"
        let store = try SQLiteStore(path: config.effectiveDatabasePath)
        let sealer = try AESGCMSecretSealer(key: (0..<32).map { _ in UInt8.random(in: 0...255) })
        var httpConfiguration = CurlHTTPClient.Configuration()
        // Chaos timeouts answer after 0.3 s: the gateway gives up sooner, as it would on a hung provider.
        httpConfiguration.requestTimeout = .milliseconds(200)
        let http = try CurlHTTPClient(configuration: httpConfiguration)
        // Connecting is what a user does once, calmly: with a patient client, so a loaded machine cannot fail it.
        let patientHTTP = try CurlHTTPClient()
        func makeGoogle(_ http: CurlHTTPClient) -> GoogleConnectionSyncer {
            GoogleConnectionSyncer(
                client: GoogleCalendarClient(http: http, endpoints: GoogleEndpoints(tokenURL: googleServer.baseURL + "/token", apiBaseURL: googleServer.baseURL + "/calendar/v3")),
                store: store, sealer: sealer, clock: clock, webhookAddress: publicURL + "/webhooks/google"
            )
        }
        func makeGraph(_ http: CurlHTTPClient) -> GraphConnectionSyncer {
            GraphConnectionSyncer(
                client: GraphClient(
                    http: http,
                    endpoints: GraphEndpoints(
                        tokenURL: graphServer.baseURL + "/common/oauth2/v2.0/token", apiBaseURL: graphServer.baseURL + "/v1.0"
                    )),
                store: store, sealer: sealer, clock: clock, publicURL: publicURL
            )
        }
        func makeRedtail(_ http: CurlHTTPClient) -> RedtailConnector {
            RedtailConnector(
                client: RedtailClient(http: http, endpoints: RedtailEndpoints(baseURL: redtailServer.baseURL + "/api/public/v1")),
                store: store, sealer: sealer, clock: clock, overlap: 900
            )
        }
        let googleSyncer = makeGoogle(http), graphSyncer = makeGraph(http), redtailConnector = makeRedtail(http)
        let (googleSetup, graphSetup, redtailSetup) = (makeGoogle(patientHTTP), makeGraph(patientHTTP), makeRedtail(patientHTTP))
        var quiet = logger
        quiet.logLevel = .critical
        // The scheduler runs on the manual clock too: coalescing windows and backoffs are provider time, and the
        // month jumps the clock from one wake-up to the next (a discrete-event simulation).
        var schedule = SyncScheduler.Configuration()
        schedule.tick = .milliseconds(2)
        let step = options.stepHours * 3600
        config.maintenance.reconciliationIntervalSeconds = max(1, Int((options.sweepHours * 3600).rounded()))
        let tlsContext = try TLSServerContext(
            configuration: TLSServerConfiguration(
                certificateChainPath: certificates.serverCertificate, privateKeyPath: certificates.serverKey, handshakeTimeout: .seconds(5)
            ))
        let parts = GatewayAssembly.Parts(
            configuration: config, store: store, sealer: sealer, tlsContext: tlsContext, adminToken: "month-admin-token-0123456789abcdef",
            apiToken: "month-api-token-0123456789abcdef", metrics: GatewayMetrics(), clock: clock, version: "month", logger: quiet
        )
        let gateway = try GatewayAssembly(
            parts, plugins: [.google(googleSyncer), .microsoft(graphSyncer), .redtail(redtailConnector, pollInterval: step)], progress: nil,
            schedulerConfiguration: schedule
        )
        let (scheduler, renewal, sweep) = (gateway.scheduler, gateway.renewal, gateway.sweep)
        guard let poller = gateway.pollers.first else { throw CocoaError(.featureUnsupported) }
        // Renewal, sweep and poll run from the month's own loop, one step at a time; only these run as services.
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: StoreLifecycleService(store: store, logger: quiet)), .init(service: scheduler), .init(service: gateway.application)],
                logger: quiet
            ))
        let running = Task { try await group.run() }
        func shutdown() async {
            google.setPushClient(nil)
            graph.setPushClient(nil)
            await group.triggerGracefulShutdown()
            _ = try? await running.value
            await googleServer.stop()
            await graphServer.stop()
            await redtailServer.stop()
            await http.shutdown()
            await patientHTTP.shutdown()
            await pushClient.shutdown()
        }
        do {
            var ready = false
            for _ in 0..<250 where !ready {
                ready = (try? await pushClient.execute(CurlHTTPRequest(url: publicURL + "/admin/health")))?.status == 200
                if !ready { try await Task.sleep(for: .milliseconds(20)) }
            }
            guard ready else { throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "the gateway did not come up on \(publicURL)"]) }

            // Accounts: Google with three calendars, Microsoft with two of three, two Redtail advisors. Connecting is
            // done calmly (a user retries a failed connect); the chaos starts afterwards.
            let chaosSettings = (options.failureRate, options.dropRate)
            for chaos in [google.chaos, graph.chaos, redtail.chaos] { chaos.configure(failureRate: 0, dropRate: 0, seed: options.seed) }
            let googleConnection = try await googleSetup.connect(userID: "month-user", clientID: "c", clientSecret: "s", refreshToken: "1//month-google")
            _ = try await googleSetup.selectCalendars(connectionID: googleConnection.id, calendarIDs: ["primary", "team", "family"])
            let graphConnection = try await graphSetup.connect(userID: "month-user", clientID: "c", clientSecret: "s", refreshToken: "0.AAAA-month")
            _ = try await graphSetup.selectCalendars(connectionID: graphConnection.id, calendarIDs: [GraphSimulator.defaultCalendarID, "AAMkMonthWork="])
            var redtailKeys: [String: String] = [:]
            for advisor in advisors {
                let connection = try await redtailSetup.connect(
                    userID: "month-user", accountType: RedtailConnector.financialAdvisor, apiKey: advisor.apiKey,
                    username: advisor.username, password: advisor.password
                )
                redtailKeys[advisor.username] = "\(connection.id)/\(RedtailConnector.calendarID)"
            }
            google.chaos.configure(failureRate: chaosSettings.0, dropRate: chaosSettings.1, timeoutDelay: .milliseconds(300), seed: options.seed &+ 1)
            graph.chaos.configure(failureRate: chaosSettings.0, dropRate: chaosSettings.1, timeoutDelay: .milliseconds(300), seed: options.seed &+ 2)
            redtail.chaos.configure(failureRate: chaosSettings.0, dropRate: 0, timeoutDelay: .milliseconds(300), seed: options.seed &+ 3)

            var tracked: [Tracked] = []
            for calendar in ["primary", "team", "family"] {
                let key = "\(googleConnection.id)/\(calendar)"
                tracked.append(
                    Self.eventCalendar(key: key, simulator: google, calendar: calendar, idPrefix: "g") { id, start, title in
                        let times = (iso(start), iso(start.addingTimeInterval(3600)))
                        return ["id": .string(id), "summary": .string("Meeting \(title)"), "start": utc(times.0), "end": utc(times.1)]
                    })
            }
            for calendar in [GraphSimulator.defaultCalendarID, "AAMkMonthWork="] {
                let key = "\(graphConnection.id)/\(calendar)"
                tracked.append(
                    Self.eventCalendar(key: key, simulator: graph, calendar: calendar, idPrefix: "AAMk") { id, start, title in
                        ["id": .string(id), "subject": .string("Outlook \(title)"), "start": utc(wall(start)), "end": utc(wall(start.addingTimeInterval(1800)))]
                    })
            }
            for advisor in advisors {
                let username = advisor.username
                tracked.append(
                    Tracked(
                        key: redtailKeys[username] ?? "", truth: { redtail.liveActivities(username: username) },
                        mutate: { random, now in
                            let live = redtail.liveActivities(username: username).keys.sorted()
                            let roll = random.unit()
                            if roll < 0.25, let victim = random.pick(live).flatMap({ Int64($0) }) {
                                redtail.deleteActivity(id: victim)
                            } else {
                                let start = now.addingTimeInterval(Double(random.range(2...50)) * 86_400 + Double(random.range(8...17)) * 3600)
                                var fields: [String: JSONValue] = [
                                    "subject": .string("Client review \(random.identifier(""))"),
                                    "start_date": .string(iso(start)), "end_date": .string(iso(start.addingTimeInterval(3600))),
                                ]
                                if roll < 0.6, let existing = random.pick(live).flatMap({ Int64($0) }) { fields["id"] = .integer(existing) }
                                redtail.upsertActivity(username: username, fields)
                            }
                        }, redtail: true))
            }

            var report = Report()
            report.total = tracked.count
            let steps = Int((Double(options.days) * 24 / options.stepHours).rounded())
            let outageStart = steps / 6, outageEnd = outageStart + Int((24 / options.stepHours).rounded())
            for index in 0..<steps {
                let stepEnd = clock.now().addingTimeInterval(step)
                if index == outageStart { graph.chaos.setOutage(true) }
                if index == outageEnd { graph.chaos.setOutage(false) }
                if index == steps / 3, let subscription = graph.subscriptions.first {
                    graph.sendLifecycle(subscriptionID: subscription.id, event: "subscriptionRemoved")
                }
                if index == steps / 2 { google.invalidateSyncTokens() }
                let changes = random.range(0...4)
                for _ in 0..<changes {
                    guard let target = random.pick(Array(tracked.indices)) else { break }
                    tracked[target].mutate(&random, clock.now())
                }
                report.changes += changes
                await renewal.runOnce()
                await sweep.runOnce()
                await poller.runOnce()
                await runUntil(stepEnd, clock: clock, scheduler: scheduler, timed: [sweep, poller], google: google, graph: graph)
                for calendar in tracked where calendar.redtail {
                    if try await stored(store, calendar.key) != calendar.truth() { report.redtailLateSteps += 1 }
                }
                if index % Int((24 / options.stepHours).rounded()) == 0 {
                    progress("day \(index * Int(options.stepHours) / 24): \(report.changes) changes so far, chaos \(google.chaos.counts.failures + graph.chaos.counts.failures + redtail.chaos.counts.failures) failed calls")
                }
            }

            // The month is over: calm providers, one last renewal pass and sweep, then compare.
            for chaos in [google.chaos, graph.chaos, redtail.chaos] {
                let counts = chaos.counts
                report.chaosFailures += counts.failures
                report.chaosDrops += counts.drops
                chaos.configure(failureRate: 0, dropRate: 0, seed: options.seed)
                chaos.setOutage(false)
            }
            await renewal.runOnce()
            for calendar in tracked {
                scheduler.requestSync(calendarKey: calendar.key, provider: calendar.redtail ? .redtail : (calendar.key.hasPrefix("gc_") ? .google : .microsoft))
            }
            await runUntil(clock.now().addingTimeInterval(step), clock: clock, scheduler: scheduler, timed: [sweep, poller], google: google, graph: graph)
            for calendar in tracked {
                let have = try await stored(store, calendar.key)
                let want = calendar.truth()
                if have == want {
                    report.converged += 1
                } else {
                    let missing = Set(want.keys).subtracting(have.keys).count
                    let extra = Set(have.keys).subtracting(want.keys).count
                    let stale = want.filter { have[$0.key] != nil && have[$0.key] != $0.value }.count
                    report.differences.append("\(calendar.key): \(missing) missing, \(extra) extra, \(stale) stale")
                }
            }
            for calendar in ["primary", "team", "family"] where google.liveChannels(calendar: calendar).count > 1 { report.duplicateChannels += 1 }
            let perCalendar = Dictionary(grouping: graph.subscriptions, by: \.calendar)
            report.duplicateChannels += perCalendar.values.filter { $0.count > 1 }.count
            // A selected calendar without a live subscription would have lapsed silently: count it too.
            for calendar in ["primary", "team", "family"] where google.liveChannels(calendar: calendar).isEmpty { report.lapsed += 1 }
            for calendar in [GraphSimulator.defaultCalendarID, "AAMkMonthWork="] where perCalendar[calendar] == nil { report.lapsed += 1 }
            let totals = renewal.totalsByProvider
            report.lapsed += totals.values.map(\.lapsed).reduce(0, +)
            report.renewals = totals.values.map(\.renewed).reduce(0, +)
            report.missedByPush = scheduler.missedByPush
            report.seconds = Double((ContinuousClock.now - started).components.seconds)
            await shutdown()
            return report
        } catch {
            await shutdown()
            throw error
        }
    }

    /// Lets the gateway work through provider time up to `end`: whenever nothing runs and nothing is in flight, the
    /// clock jumps to the scheduler's next wake-up (coalescing window, backoff) if it comes before `end`; then the
    /// clock is set to `end`. Bounded in wall-clock time.
    static func runUntil(
        _ end: Date, clock: ManualGatewayClock, scheduler: SyncScheduler, timed: [ReconciliationSweep], google: GoogleSimulator, graph: GraphSimulator
    ) async {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            var calmChecks = 0
            while calmChecks < 2, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(2))
                let calm = scheduler.runningCount == 0 && google.pushesInFlight == 0 && graph.deliveriesInFlight == 0
                calmChecks = calm ? calmChecks + 1 : 0
            }
            let candidates = [scheduler.nextWake] + timed.map(\.nextDue)
            guard let next = candidates.compactMap({ $0 }).min(), next <= end else { break }
            clock.set(next)
            for service in timed { await service.runOnce() }
            // Give the scheduler a tick to start what is now due before looking again.
            try? await Task.sleep(for: .milliseconds(4))
        }
        clock.set(end)
    }

    /// id → title of what calgate stores for a calendar (cancelled instances excluded).
    static func stored(_ store: SQLiteStore, _ key: String) async throws -> [String: String] {
        var result: [String: String] = [:]
        for appointment in try await store.appointments(calendarKey: key) where appointment.status != "cancelled" {
            result[appointment.externalID] = appointment.title
        }
        return result
    }

    static func iso(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

    static func wall(_ date: Date) -> String { String(iso(date).dropLast()) + ".0000000" }

    /// A free loopback port (bound and released; Graph must know the URL before the gateway binds).
    static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CocoaError(.fileNoSuchFile) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw CocoaError(.fileWriteUnknown) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Google's and Graph's simulated calendars of events, as the month changes them.
protocol EventCalendarSimulator: Sendable {
    func liveEvents(calendar: String) -> [String: String]
    func deleteEvent(calendar: String, id: String)
    func upsertEvent(calendar: String, _ fields: [String: JSONValue]) -> String
}

extension GoogleSimulator: EventCalendarSimulator {}
extension GraphSimulator: EventCalendarSimulator {}

extension MonthSimulation {
    /// A calendar of events the month tracks: the truth is the simulator's live events; a change is, a quarter of
    /// the time, one of them deleted, otherwise an event starting 2 to 50 days ahead in office hours written, replacing
    /// one of them 35 % of the time and new (an id of `idPrefix` and random letters) the rest, with the fields `event`
    /// makes of its id, start and random title.
    static func eventCalendar(
        key: String, simulator: some EventCalendarSimulator, calendar: String, idPrefix: String,
        event: @escaping @Sendable (_ id: String, _ start: Date, _ title: String) -> [String: JSONValue]
    ) -> Tracked {
        Tracked(
            key: key, truth: { simulator.liveEvents(calendar: calendar) },
            mutate: { random, now in
                let live = simulator.liveEvents(calendar: calendar).keys.sorted()
                let roll = random.unit()
                if roll < 0.25, let victim = random.pick(live) {
                    simulator.deleteEvent(calendar: calendar, id: victim)
                    return
                }
                let id = roll < 0.6 ? (random.pick(live) ?? random.identifier(idPrefix)) : random.identifier(idPrefix)
                let start = now.addingTimeInterval(Double(random.range(2...50)) * 86_400 + Double(random.range(8...17)) * 3600)
                _ = simulator.upsertEvent(calendar: calendar, event(id, start, random.identifier("")))
            }, redtail: false)
    }

    /// A provider's `{dateTime, timeZone}` object in UTC.
    static func utc(_ dateTime: String) -> JSONValue { .object(["dateTime": .string(dateTime), "timeZone": .string("UTC")]) }
}

/// The month's changes come from a seeded generator, so a seed replays the same month.
typealias SplitRandom = SplitMix64

extension SplitMix64 {
    mutating func range(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }

    mutating func pick<T>(_ items: [T]) -> T? {
        items.isEmpty ? nil : items[Int(next() % UInt64(items.count))]
    }

    mutating func identifier(_ prefix: String) -> String {
        prefix + String(next() % 1_000_000_000, radix: 36)
    }
}
