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
        /// Calendars. 7 (without `fleet`) is the classic month's hand-made layout; any other number builds a fleet
        /// from the seed: Google, Microsoft and Redtail accounts in the ratio 300 : 200 : 50, one calendar per Redtail
        /// account and the rest spread over the Google and Microsoft accounts 3 : 2 (1,000 calendars: 300 Google
        /// accounts with 570 calendars, 200 Microsoft accounts with 380, 50 Redtail advisors).
        public var calendars = 7
        /// Builds the generated fleet layout even at 7 calendars.
        public var fleet = false
        /// Days Graph is down (from a sixth of the month on).
        public var outageDays = 1.0
        /// How many times Google invalidates every sync token (evenly spread over the month).
        public var syncTokenInvalidations = 1
        /// Google accounts whose refresh token is revoked (a tenth into the month) and that the user reconnects later
        /// (spread over days 15 to 20 of a 30-day month).
        public var revokedAccounts = 0
        /// Whether Google calendars get recurring series whose exceptions are edited throughout.
        public var recurringSeries = false
        /// Where a fleet run's Markdown report goes (nil: none).
        public var reportPath: String?
        /// Creates defaults.
        public init() {}

        /// What is wrong with these options, if anything (the command's and the tests' check).
        public var problem: String? {
            if !(1...90).contains(days) { return "--days must be between 1 and 90 (got \(days))" }
            if !(3...5_000).contains(calendars) { return "--calendars must be between 3 and 5000 (got \(calendars))" }
            if !(0...0.5).contains(failureRate) { return "--failure-rate must be between 0 and 0.5 (got \(failureRate))" }
            if !(0...0.5).contains(dropRate) { return "--drop-rate must be between 0 and 0.5 (got \(dropRate))" }
            if outageDays < 0 || outageDays > Double(days) { return "the outage must last between 0 and \(days) days (got \(outageDays))" }
            if revokedAccounts < 0 { return "revoked accounts cannot be negative (got \(revokedAccounts))" }
            if syncTokenInvalidations < 0 { return "sync token invalidations cannot be negative (got \(syncTokenInvalidations))" }
            return nil
        }

        /// Whether the run builds the generated fleet rather than the classic 7 calendars.
        public var usesFleetLayout: Bool { fleet || calendars != 7 }

        /// Issue 20's fleet month: `calendars` calendars (1,000 by default: 300 Google, 200 Microsoft and 50 Redtail
        /// accounts), 30 days, 30 % of provider calls failing, 5 % of notifications dropped, Graph down for 7 days,
        /// Google invalidating every sync token twice, 20 revoked refresh tokens reconnected later, recurring series
        /// with exceptions edited throughout.
        public static func fleet(calendars: Int = 1_000) -> Options {
            var options = Options()
            options.fleet = true
            options.calendars = calendars
            options.failureRate = 0.30
            options.dropRate = 0.05
            options.outageDays = 7
            options.syncTokenInvalidations = 2
            options.revokedAccounts = max(1, Int((Double(calendars) / 50).rounded()))
            options.recurringSeries = true
            return options
        }
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
        /// Whether the run used the generated fleet layout (the summary line then starts with `fleet:`).
        public var fleet = false
        /// Events the store still holds that the provider deleted (or never had), summed over calendars.
        public var ghostEvents = 0
        /// Calendars found without a live channel or subscription at a step's end while their provider was up and
        /// their credentials valid (episodes; must be zero). Part of `lapsed`.
        public var lapsedWhileReachable = 0
        /// Calendars that lost their channel or subscription while the provider was down or the user's refresh token
        /// revoked (nothing can renew then; recreated afterwards). Not part of `lapsed`.
        public var expiredWhileUnreachable = 0
        /// Lapses the gateway's renewal counted (`calgate_subscription_lapses_total`), including the unavoidable ones.
        public var gatewayLapses = 0
        /// Provider minutes from the end of the Graph outage until every Graph calendar had a live subscription and
        /// equalled Graph's truth (nil: no outage, or never within the month).
        public var recoveryMinutes: Double?
        /// Per provider: calls, failures, throttling, renewals.
        public var providers: [Provider: ProviderFigures] = [:]
        /// Most calendars waiting for a sync (due, backing off or running) at once.
        public var peakBacklog = 0
        /// Peak resident memory of the process, in MiB (VmHWM).
        public var peakMemoryMiB = 0.0
        /// Accounts simulated per provider.
        public var accounts: [Provider: Int] = [:]
        /// Calendars per provider.
        public var calendarsByProvider: [Provider: Int] = [:]

        /// The closing line `scripts/simulated-month` ends with.
        public var summary: String {
            guard fleet else {
                return "month: \(lapsed) lapsed, \(converged) of \(total) calendars converged, \(duplicateChannels) duplicate channels"
            }
            let recovery = recoveryMinutes.map { String(Int($0.rounded(.up))) } ?? "n/a"
            return "fleet: \(lapsed) lapsed, \(converged) of \(total) calendars converged, \(duplicateChannels) duplicate channels, \(ghostEvents) ghost events, recovery after outage \(recovery) min"
        }

        /// Whether everything the run checks holds.
        public var passed: Bool {
            lapsed == 0 && converged == total && duplicateChannels == 0 && ghostEvents == 0 && (!fleet || !hadOutage || recoveryMinutes != nil)
        }

        /// Whether Graph was down during the run.
        public var hadOutage = false
    }

    /// One provider's figures for the month.
    public struct ProviderFigures: Sendable {
        /// API calls the simulator admitted (past its quotas).
        public var calls = 0
        /// Calls the chaos failed (including every call during an outage).
        public var failures = 0
        /// 429/403 answers because a published limit was exceeded.
        public var quotaThrottles = 0
        /// 429 answers the chaos injected.
        public var chaosThrottles = 0
        /// Most quota 429/403 answers in one provider minute.
        public var peakQuotaThrottlesPerMinute = 0
        /// Most 429/403 answers of either kind in one provider minute.
        public var peakThrottlesPerMinute = 0
        /// Most 429/403 answers of either kind in one provider minute from the end of the outage on (Graph).
        public var peakThrottlesPerMinuteAfterOutage = 0
        /// Channels or subscriptions renewed.
        public var renewals = 0
        /// Changes the sweep found that push had not announced.
        public var missedByPush = 0
        /// Creates zeros.
        public init() {}
    }

    /// A calendar the run tracks: where the truth is and where calgate stores it.
    struct Tracked {
        var key: String
        var truth: @Sendable () -> [String: String]
        var mutate: @Sendable (inout SplitRandom, Date) -> Void
        var provider: Provider
        var redtail: Bool { provider == .redtail }
    }

    /// What the run tracks: its calendars, which Google and Graph calendars (simulator ids) belong to which
    /// connection, and the Google accounts whose refresh tokens get revoked.
    struct Layout {
        var tracked: [Tracked] = []
        var googleCalendars: [String: String] = [:]
        var graphCalendars: [String: String] = [:]
        var revocable: [(connectionID: String, refreshToken: String)] = []
        var accounts: [Provider: Int] = [:]
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

        // The simulators, on the manual clock, with chaos and the providers' published limits.
        let plan = options.usesFleetLayout ? FleetPlan(calendars: options.calendars) : nil
        let google = GoogleSimulator(
            refreshTokens: Set(plan?.google.map(\.refreshToken) ?? ["1//month-google"]), pushClient: pushClient, clock: { clock.now() }
        )
        let graph = GraphSimulator(
            refreshTokens: Set(plan?.graph.map(\.refreshToken) ?? ["0.AAAA-month"]), pushClient: pushClient,
            retryDelays: [.milliseconds(50), .milliseconds(100), .milliseconds(200)], clock: { clock.now() }
        )
        let advisors: [RedtailSimulator.User]
        if let plan {
            for account in plan.google {
                for calendar in account.calendars { google.addCalendar(id: calendar, name: "Fleet \(calendar)") }
            }
            for account in plan.graph {
                for calendar in account.calendars { graph.addCalendar(id: calendar, name: "Fleet \(calendar)") }
            }
            advisors = plan.redtail.enumerated().map { FleetPlan.redtailUser($0.element, index: $0.offset) }
        } else {
            google.addCalendar(id: "team", name: "Team")
            google.addCalendar(id: "family", name: "Family")
            graph.addCalendar(id: "AAMkMonthWork=", name: "Work")
            graph.addCalendar(id: "AAMkMonthHolidays=", name: "Holidays (not synced)")
            advisors = [
                RedtailSimulator.User(apiKey: "month-partner", username: "advisor-a", password: "pw-a", userKey: "UK-A", id: 1001),
                RedtailSimulator.User(apiKey: "month-partner", username: "advisor-b", password: "pw-b", userKey: "UK-B", id: 1002),
            ]
        }
        let redtail = RedtailSimulator(users: advisors, clock: { clock.now() })
        google.enforcePublishedLimits(true)
        graph.enforcePublishedLimits(true)
        redtail.enforcePublishedLimits(true)
        // A fleet's chaos timeouts hold sync slots: shorter ones (still past the gateway's patience) keep a month of
        // them from dominating the wall clock.
        let chaosTimeout: Duration = plan == nil ? .milliseconds(300) : .milliseconds(200)
        google.chaos.configure(failureRate: options.failureRate, dropRate: options.dropRate, timeoutDelay: chaosTimeout, seed: options.seed &+ 1)
        graph.chaos.configure(failureRate: options.failureRate, dropRate: options.dropRate, timeoutDelay: chaosTimeout, seed: options.seed &+ 2)
        redtail.chaos.configure(failureRate: options.failureRate, dropRate: 0, timeoutDelay: chaosTimeout, seed: options.seed &+ 3)
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
        // Chaos timeouts answer after 0.3 s (a fleet's after 0.2 s): the gateway gives up sooner, as it would on a
        // hung provider.
        httpConfiguration.requestTimeout = plan == nil ? .milliseconds(200) : .milliseconds(120)
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
        quiet.logLevel = ProcessInfo.processInfo.environment["CALGATE_MONTH_DEBUG"] != nil ? .info : .critical
        // The scheduler runs on the manual clock too: coalescing windows and backoffs are provider time, and the
        // month jumps the clock from one wake-up to the next (a discrete-event simulation).
        var schedule = SyncScheduler.Configuration()
        schedule.tick = .milliseconds(2)
        // A fleet runs more syncs at once (the per-connection cap still keeps each account inside its quota).
        if plan != nil { schedule.maxConcurrentSyncs = 48 }
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

            // Accounts. The classic month: Google with three calendars, Microsoft with two of three, two Redtail
            // advisors; a fleet: the plan's accounts, each calendar seeded with a few events. Connecting is done
            // calmly (a user retries a failed connect); the chaos starts afterwards.
            let chaosSettings = (options.failureRate, options.dropRate)
            for chaos in [google.chaos, graph.chaos, redtail.chaos] { chaos.configure(failureRate: 0, dropRate: 0, seed: options.seed) }
            var layout = Layout()
            if let plan {
                layout = try await Self.connectFleet(
                    plan, options: options, random: &random, clock: clock, simulators: (google, graph, redtail),
                    setups: (googleSetup, graphSetup, redtailSetup), advisors: advisors
                )
            } else {
                let googleConnection = try await googleSetup.connect(userID: "month-user", clientID: "c", clientSecret: "s", refreshToken: "1//month-google")
                _ = try await googleSetup.selectCalendars(connectionID: googleConnection.id, calendarIDs: ["primary", "team", "family"])
                let graphConnection = try await graphSetup.connect(userID: "month-user", clientID: "c", clientSecret: "s", refreshToken: "0.AAAA-month")
                _ = try await graphSetup.selectCalendars(connectionID: graphConnection.id, calendarIDs: [GraphSimulator.defaultCalendarID, "AAMkMonthWork="])
                for calendar in ["primary", "team", "family"] {
                    let key = "\(googleConnection.id)/\(calendar)"
                    layout.tracked.append(
                        Self.eventCalendar(key: key, simulator: google, calendar: calendar, idPrefix: "g", provider: .google) { id, start, title in
                            let times = (iso(start), iso(start.addingTimeInterval(3600)))
                            return ["id": .string(id), "summary": .string("Meeting \(title)"), "start": utc(times.0), "end": utc(times.1)]
                        })
                    layout.googleCalendars[calendar] = googleConnection.id
                }
                for calendar in [GraphSimulator.defaultCalendarID, "AAMkMonthWork="] {
                    let key = "\(graphConnection.id)/\(calendar)"
                    layout.tracked.append(Self.graphCalendar(key: key, simulator: graph, calendar: calendar))
                    layout.graphCalendars[calendar] = graphConnection.id
                }
                for advisor in advisors {
                    let connection = try await redtailSetup.connect(
                        userID: "month-user", accountType: RedtailConnector.financialAdvisor, apiKey: advisor.apiKey,
                        username: advisor.username, password: advisor.password
                    )
                    layout.tracked.append(Self.redtailCalendar(key: "\(connection.id)/\(RedtailConnector.calendarID)", simulator: redtail, username: advisor.username))
                }
                layout.accounts = [.google: 1, .microsoft: 1, .redtail: advisors.count]
            }
            google.chaos.configure(failureRate: chaosSettings.0, dropRate: chaosSettings.1, timeoutDelay: chaosTimeout, seed: options.seed &+ 1)
            graph.chaos.configure(failureRate: chaosSettings.0, dropRate: chaosSettings.1, timeoutDelay: chaosTimeout, seed: options.seed &+ 2)
            redtail.chaos.configure(failureRate: chaosSettings.0, dropRate: 0, timeoutDelay: chaosTimeout, seed: options.seed &+ 3)
            let tracked = layout.tracked

            var report = Report()
            report.fleet = plan != nil
            report.total = tracked.count
            report.accounts = layout.accounts
            report.calendarsByProvider = Dictionary(grouping: tracked, by: \.provider).mapValues(\.count)
            let steps = Int((Double(options.days) * 24 / options.stepHours).rounded())
            let stepsPerDay = Int((24 / options.stepHours).rounded())
            let outageStart = steps / 6, outageEnd = min(steps, outageStart + Int((options.outageDays * 24 / options.stepHours).rounded()))
            report.hadOutage = outageEnd > outageStart
            let invalidations = max(0, options.syncTokenInvalidations)
            let invalidationSteps = Set(invalidations == 0 ? [] : (1...invalidations).map { steps * $0 / (invalidations + 1) })
            // Revoked accounts: revoked a tenth into the month, reconnected one by one from half to two thirds of it.
            let revokeStep = steps / 10
            var reconnectStep: [String: Int] = [:]
            for (offset, account) in layout.revocable.enumerated() {
                reconnectStep[account.connectionID] = steps / 2 + offset * max(1, steps / 6) / max(1, layout.revocable.count)
            }
            let changesPerStep = plan == nil ? 4 : max(4, tracked.count / 6)
            var lapsedNow: Set<String> = []
            var outageEndedAt: Date?
            var recovered = false
            var revokedConnections: Set<String> = []
            var reachableAgain: [String: Date] = [:]

            // A calendar without a live channel or subscription is a lapse, unless its provider is down (or was until
            // it recovered) or its user's refresh token is revoked (or was until the reconnect's step ended). Checked
            // before every renewal pass (lapses are repaired only there) and at every step's end; each episode counts
            // once.
            func checkLapses() {
                let now = clock.now()
                var live: Set<String> = []
                for channel in google.channels where !channel.stopped && channel.expiresAt > now { live.insert(channel.calendar) }
                for subscription in graph.subscriptions { live.insert(subscription.calendar) }
                let graphDown = graph.chaos.isOutage || (outageEndedAt != nil && !recovered && now.timeIntervalSince(outageEndedAt ?? now) < 86_400)
                for (calendar, connection) in layout.googleCalendars.merging(layout.graphCalendars, uniquingKeysWith: { first, _ in first }) {
                    guard !live.contains(calendar) else {
                        lapsedNow.remove(calendar)
                        continue
                    }
                    guard lapsedNow.insert(calendar).inserted else { continue }
                    let unreachable =
                        (layout.graphCalendars[calendar] != nil && graphDown) || revokedConnections.contains(connection)
                        || (reachableAgain[connection].map { now <= $0 } ?? false)
                    if unreachable {
                        report.expiredWhileUnreachable += 1
                    } else {
                        report.lapsedWhileReachable += 1
                        report.differences.append("\(calendar): no live channel or subscription at \(iso(now))")
                    }
                }
            }

            // Graph has recovered once every Graph calendar has a live subscription and equals Graph's truth.
            func checkRecovery() async {
                guard let ended = outageEndedAt, !recovered, !graph.chaos.isOutage else { return }
                let subscribed = Set(graph.subscriptions.map(\.calendar))
                guard layout.graphCalendars.keys.allSatisfy({ subscribed.contains($0) }) else { return }
                for calendar in tracked where calendar.provider == .microsoft {
                    guard (try? await stored(store, calendar.key)) == calendar.truth() else { return }
                }
                recovered = true
                report.recoveryMinutes = clock.now().timeIntervalSince(ended) / 60
            }

            for index in 0..<steps {
                let stepEnd = clock.now().addingTimeInterval(step)
                if index == outageStart, outageEnd > outageStart { graph.chaos.setOutage(true) }
                if index == outageEnd, outageEnd > outageStart {
                    graph.chaos.setOutage(false)
                    outageEndedAt = clock.now()
                }
                if index == steps / 3, let subscription = graph.subscriptions.first {
                    graph.sendLifecycle(subscriptionID: subscription.id, event: "subscriptionRemoved")
                }
                if invalidationSteps.contains(index) { google.invalidateSyncTokens() }
                if index == revokeStep {
                    for account in layout.revocable {
                        google.revoke(refreshToken: account.refreshToken)
                        revokedConnections.insert(account.connectionID)
                    }
                }
                for account in layout.revocable where reconnectStep[account.connectionID] == index {
                    // The user signs in again (a new refresh token) and retries until the reconnect goes through.
                    let fresh = account.refreshToken + "-again"
                    google.addRefreshToken(fresh)
                    var reconnected = false
                    for _ in 0..<30 where !reconnected {
                        reconnected =
                            (try? await googleSetup.reconnect(connectionID: account.connectionID, clientID: "c", clientSecret: "s", refreshToken: fresh)) != nil
                    }
                    revokedConnections.remove(account.connectionID)
                    reachableAgain[account.connectionID] = stepEnd
                }
                let changes = random.range(0...changesPerStep)
                for _ in 0..<changes {
                    guard let target = random.pick(Array(tracked.indices)) else { break }
                    tracked[target].mutate(&random, clock.now())
                }
                report.changes += changes
                checkLapses()
                await renewal.runOnce()
                await sweep.runOnce()
                await poller.runOnce()
                await runUntil(
                    stepEnd, clock: clock, scheduler: scheduler, timed: [sweep, poller], google: google, graph: graph,
                    minimumJump: plan == nil ? 0 : 300, wallBudget: plan == nil ? .seconds(30) : .seconds(180),
                    every: plan == nil ? nil : 1800,
                    periodic: {
                        checkLapses()
                        await renewal.runOnce()
                    },
                    onWake: {
                        report.peakBacklog = max(report.peakBacklog, scheduler.backlog)
                        if outageEndedAt != nil, !recovered { await checkRecovery() }
                    })
                checkLapses()
                await checkRecovery()
                for calendar in tracked where calendar.redtail {
                    if try await stored(store, calendar.key) != calendar.truth() { report.redtailLateSteps += 1 }
                }
                if index % stepsPerDay == 0 {
                    progress(
                        "day \(index * Int(options.stepHours) / 24): \(report.changes) changes so far, chaos \(google.chaos.counts.failures + graph.chaos.counts.failures + redtail.chaos.counts.failures) failed calls, backlog peak \(report.peakBacklog), \(Int((ContinuousClock.now - started).components.seconds)) s"
                    )
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
                scheduler.requestSync(calendarKey: calendar.key, provider: calendar.provider)
            }
            await runUntil(
                clock.now().addingTimeInterval(step), clock: clock, scheduler: scheduler, timed: [sweep, poller], google: google, graph: graph,
                wallBudget: plan == nil ? .seconds(30) : .seconds(180))
            for calendar in tracked {
                let have = try await stored(store, calendar.key)
                let want = calendar.truth()
                let extra = Set(have.keys).subtracting(want.keys).count
                report.ghostEvents += extra
                if have == want {
                    report.converged += 1
                } else {
                    let missing = Set(want.keys).subtracting(have.keys).count
                    let stale = want.filter { have[$0.key] != nil && have[$0.key] != $0.value }.count
                    report.differences.append("\(calendar.key): \(missing) missing, \(extra) extra, \(stale) stale")
                }
            }
            let now = clock.now()
            var liveChannels: [String: Int] = [:]
            for channel in google.channels where !channel.stopped && channel.expiresAt > now { liveChannels[channel.calendar, default: 0] += 1 }
            let perCalendar = Dictionary(grouping: graph.subscriptions, by: \.calendar)
            report.duplicateChannels += layout.googleCalendars.keys.filter { liveChannels[$0, default: 0] > 1 }.count
            report.duplicateChannels += perCalendar.values.filter { $0.count > 1 }.count
            // A selected calendar without a live subscription would have lapsed silently: count it too.
            report.lapsed += layout.googleCalendars.keys.filter { liveChannels[$0, default: 0] == 0 }.count
            report.lapsed += layout.graphCalendars.keys.filter { perCalendar[$0] == nil }.count
            let totals = renewal.totalsByProvider
            report.gatewayLapses = totals.values.map(\.lapsed).reduce(0, +)
            if plan == nil {
                // The classic month has no unavoidable lapses: every one the gateway counted is one.
                report.lapsed += report.gatewayLapses
            } else {
                report.lapsed += report.lapsedWhileReachable
            }
            report.renewals = totals.values.map(\.renewed).reduce(0, +)
            report.missedByPush = scheduler.missedByPush
            let ledgers: [(Provider, ThrottleLedger, Int, Int)] = [
                (.google, google.throttles, google.callsByUser.values.reduce(0, +), google.chaos.counts.failures),
                (.microsoft, graph.throttles, graph.callsByMailbox.values.reduce(0, +), graph.chaos.counts.failures),
                (.redtail, redtail.throttles, redtail.calls, redtail.chaos.counts.failures),
            ]
            for (provider, ledger, calls, failures) in ledgers {
                var figures = ProviderFigures()
                figures.calls = calls
                figures.failures = failures
                figures.quotaThrottles = ledger.total(.quota)
                figures.chaosThrottles = ledger.total(.chaos)
                figures.peakQuotaThrottlesPerMinute = ledger.peakPerMinute(.quota)
                figures.peakThrottlesPerMinute = ledger.peakPerMinute()
                if let outageEndedAt { figures.peakThrottlesPerMinuteAfterOutage = ledger.peakPerMinute(since: outageEndedAt) }
                figures.renewals = totals[provider]?.renewed ?? 0
                figures.missedByPush = report.missedByPush[provider] ?? 0
                report.providers[provider] = figures
            }
            report.peakMemoryMiB = Self.peakResidentMiB()
            report.seconds = Double((ContinuousClock.now - started).components.seconds)
            await shutdown()
            return report
        } catch {
            await shutdown()
            throw error
        }
    }

    /// Lets the gateway work through provider time up to `end`: whenever nothing runs and nothing is in flight, the
    /// clock jumps to the next wake-up (the scheduler's coalescing windows and backoffs, the sweep's and poller's due
    /// calendars, the `periodic` action every `every` seconds) if it comes before `end`, but at least `minimumJump`
    /// ahead (a fleet batches what falls within it instead of waking for each); then the clock is set to `end`.
    /// `onWake` runs after every jump. Bounded in wall-clock time by `wallBudget`.
    static func runUntil(
        _ end: Date, clock: ManualGatewayClock, scheduler: SyncScheduler, timed: [ReconciliationSweep], google: GoogleSimulator, graph: GraphSimulator,
        minimumJump: TimeInterval = 0, wallBudget: Duration = .seconds(30), every: TimeInterval? = nil, periodic: () async -> Void = {},
        onWake: () async -> Void = {}
    ) async {
        let deadline = ContinuousClock.now + wallBudget
        var nextPeriodic = every.map { clock.now().addingTimeInterval($0) }
        while ContinuousClock.now < deadline {
            var calmChecks = 0
            while calmChecks < 2, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(2))
                let calm = scheduler.runningCount == 0 && google.pushesInFlight == 0 && graph.deliveriesInFlight == 0
                calmChecks = calm ? calmChecks + 1 : 0
            }
            let now = clock.now()
            let candidates = [scheduler.nextWake, nextPeriodic] + timed.map(\.nextDue)
            guard var next = candidates.compactMap({ $0 }).min(), next <= end else { break }
            if next > now { next = min(max(next, now.addingTimeInterval(minimumJump)), end) }
            clock.set(next)
            if let every, let due = nextPeriodic, due <= next {
                await periodic()
                nextPeriodic = next.addingTimeInterval(every)
            }
            for service in timed { await service.runOnce() }
            await onWake()
            // Give the scheduler a tick to start what is now due before looking again.
            try? await Task.sleep(for: .milliseconds(4))
        }
        clock.set(end)
    }

    /// The process's peak resident memory in MiB (Linux `VmHWM`; 0 where unavailable).
    static func peakResidentMiB() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kilobytes = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
            return kilobytes / 1024
        }
        return 0
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
        key: String, simulator: some EventCalendarSimulator, calendar: String, idPrefix: String, provider: Provider,
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
            }, provider: provider)
    }

    /// A Graph calendar of single events.
    static func graphCalendar(key: String, simulator: GraphSimulator, calendar: String) -> Tracked {
        eventCalendar(key: key, simulator: simulator, calendar: calendar, idPrefix: "AAMk", provider: .microsoft) { id, start, title in
            ["id": .string(id), "subject": .string("Outlook \(title)"), "start": utc(wall(start)), "end": utc(wall(start.addingTimeInterval(1800)))]
        }
    }

    /// A Redtail advisor's activities: a quarter of the changes delete one, the rest write one (replacing an existing
    /// one 35 % of the time).
    static func redtailCalendar(key: String, simulator redtail: RedtailSimulator, username: String) -> Tracked {
        Tracked(
            key: key, truth: { redtail.liveActivities(username: username) },
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
            }, provider: .redtail)
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
