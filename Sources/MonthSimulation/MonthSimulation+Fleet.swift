import Foundation
import GatewayCore
import GoogleCalendar
import MicrosoftGraph
import ProviderSimulators
import Redtail

extension MonthSimulation {
    /// Connects a fleet's accounts (calmly: no chaos yet, a few retries as a user would) after seeding each calendar
    /// with a few events; picks the Google accounts whose refresh tokens the month revokes.
    static func connectFleet(
        _ plan: FleetPlan, options: Options, random: inout SplitRandom, clock: ManualGatewayClock,
        simulators: (google: GoogleSimulator, graph: GraphSimulator, redtail: RedtailSimulator),
        setups: (google: GoogleConnectionSyncer, graph: GraphConnectionSyncer, redtail: RedtailConnector), advisors: [RedtailSimulator.User]
    ) async throws -> Layout {
        var layout = Layout()
        layout.accounts = [.google: plan.google.count, .microsoft: plan.graph.count, .redtail: plan.redtail.count]
        func retrying<T>(_ body: () async throws -> T) async throws -> T {
            var attempt = 0
            while true {
                do { return try await body() } catch {
                    attempt += 1
                    if attempt >= 5 { throw error }
                }
            }
        }
        for account in plan.google {
            for calendar in account.calendars {
                let tracked = googleCalendar(key: "", simulator: simulators.google, calendar: calendar, recurring: options.recurringSeries)
                for _ in 0..<3 { tracked.mutate(&random, clock.now()) }
            }
            // Users connect one after another, not all in the same instant: a few provider seconds apart (the
            // gateway's per-address failure budget refills on this clock too).
            clock.advance(by: 5)
            let connection = try await retrying {
                try await setups.google.connect(
                    userID: "fleet-google-\(account.index)", clientID: "c", clientSecret: "s", refreshToken: account.refreshToken
                )
            }
            _ = try await retrying { try await setups.google.selectCalendars(connectionID: connection.id, calendarIDs: Set(account.calendars)) }
            for calendar in account.calendars {
                layout.tracked.append(
                    googleCalendar(key: "\(connection.id)/\(calendar)", simulator: simulators.google, calendar: calendar, recurring: options.recurringSeries)
                )
                layout.googleCalendars[calendar] = connection.id
            }
            layout.revocable.append((connection.id, account.refreshToken))
        }
        // Which Google accounts lose their refresh token: a seeded choice.
        var candidates = layout.revocable
        var chosen: [(connectionID: String, refreshToken: String)] = []
        while chosen.count < min(options.revokedAccounts, candidates.count) {
            chosen.append(candidates.remove(at: random.range(0...(candidates.count - 1))))
        }
        layout.revocable = chosen
        for account in plan.graph {
            for calendar in account.calendars {
                let tracked = graphCalendar(key: "", simulator: simulators.graph, calendar: calendar)
                for _ in 0..<3 { tracked.mutate(&random, clock.now()) }
            }
            clock.advance(by: 5)
            let connection = try await retrying {
                try await setups.graph.connect(userID: "fleet-graph-\(account.index)", clientID: "c", clientSecret: "s", refreshToken: account.refreshToken)
            }
            _ = try await retrying { try await setups.graph.selectCalendars(connectionID: connection.id, calendarIDs: Set(account.calendars)) }
            for calendar in account.calendars {
                layout.tracked.append(graphCalendar(key: "\(connection.id)/\(calendar)", simulator: simulators.graph, calendar: calendar))
                layout.graphCalendars[calendar] = connection.id
            }
        }
        for advisor in advisors {
            let tracked = redtailCalendar(key: "", simulator: simulators.redtail, username: advisor.username)
            for _ in 0..<3 { tracked.mutate(&random, clock.now()) }
            let connection = try await retrying {
                try await setups.redtail.connect(
                    userID: "fleet-redtail-\(advisor.id)", accountType: RedtailConnector.financialAdvisor, apiKey: advisor.apiKey,
                    username: advisor.username, password: advisor.password
                )
            }
            layout.tracked.append(
                redtailCalendar(key: "\(connection.id)/\(RedtailConnector.calendarID)", simulator: simulators.redtail, username: advisor.username)
            )
        }
        return layout
    }

    /// A Google calendar of single events and, with `recurring`, weekly series whose exceptions are edited: 12 % of
    /// changes start a series (`sr…`, six weekly occurrences), 18 % move and retitle one occurrence of a series (an
    /// exception `<series>_<original start>` with `recurringEventId` and `originalStartTime`, written again when
    /// edited again), the rest delete (a quarter of the time) or write single events. Series and exceptions are never
    /// deleted (Google would cancel the exceptions with the series; the simulator does not model that).
    static func googleCalendar(key: String, simulator: GoogleSimulator, calendar: String, recurring: Bool) -> Tracked {
        Tracked(
            key: key, truth: { simulator.liveEvents(calendar: calendar) },
            mutate: { random, now in
                let live = simulator.liveEvents(calendar: calendar).keys.sorted()
                let singles = live.filter { $0.hasPrefix("g") }
                let series = live.filter { $0.hasPrefix("sr") && !$0.contains("_") }
                let roll = random.unit()
                let start = now.addingTimeInterval(Double(random.range(2...50)) * 86_400 + Double(random.range(8...17)) * 3600)
                if recurring, roll < 0.12 {
                    // The series' first start is part of its id, so its occurrences can be named without a read.
                    let first = start.timeIntervalSince1970.rounded()
                    let id = random.identifier("sr") + "t\(Int(first))"
                    simulator.upsertEvent(
                        calendar: calendar,
                        [
                            "id": .string(id), "summary": .string("Weekly \(random.identifier(""))"), "start": utc(iso(Date(timeIntervalSince1970: first))),
                            "end": utc(iso(Date(timeIntervalSince1970: first + 1800))), "recurrence": .array([.string("RRULE:FREQ=WEEKLY;COUNT=6")]),
                        ])
                    return
                }
                if recurring, roll < 0.30, let master = random.pick(series), let first = master.split(separator: "t").last.flatMap({ Double($0) }) {
                    let original = Date(timeIntervalSince1970: first + Double(random.range(0...5)) * 7 * 86_400)
                    let moved = original.addingTimeInterval(Double(random.range(1...6)) * 3600)
                    let id = "\(master)_\(Int(original.timeIntervalSince1970))"
                    simulator.upsertEvent(
                        calendar: calendar,
                        [
                            "id": .string(id), "summary": .string("Moved \(random.identifier(""))"), "recurringEventId": .string(master),
                            "originalStartTime": utc(iso(original)), "start": utc(iso(moved)), "end": utc(iso(moved.addingTimeInterval(1800))),
                        ])
                    return
                }
                if roll < 0.45, let victim = random.pick(singles) {
                    simulator.deleteEvent(calendar: calendar, id: victim)
                    return
                }
                let id = roll < 0.65 ? (random.pick(singles) ?? random.identifier("g")) : random.identifier("g")
                let times = (iso(start), iso(start.addingTimeInterval(3600)))
                simulator.upsertEvent(
                    calendar: calendar, ["id": .string(id), "summary": .string("Meeting \(random.identifier(""))"), "start": utc(times.0), "end": utc(times.1)]
                )
            }, provider: .google)
    }
}

extension MonthSimulation.Report {
    /// The run as a Markdown report (`Benchmarks/results/fleet-month.md`).
    public func markdown(options: MonthSimulation.Options, command: String) -> String {
        let providers: [(Provider, String)] = [(.google, "Google"), (.microsoft, "Microsoft Graph"), (.redtail, "Redtail")]
        var lines = [
            "# The simulated month at fleet size", "",
            "Written by `\(command)`; do not edit by hand.", "",
            "```", summary, "```", "",
            "| | |", "|---|---|",
            "| calendars | \(total) (Google \(calendarsByProvider[.google] ?? 0), Microsoft \(calendarsByProvider[.microsoft] ?? 0), Redtail \(calendarsByProvider[.redtail] ?? 0)) |",
            "| accounts | Google \(accounts[.google] ?? 0), Microsoft \(accounts[.microsoft] ?? 0), Redtail \(accounts[.redtail] ?? 0) |",
            "| provider time | \(options.days) days in \(options.stepHours)-hour steps, seed \(options.seed) |",
            "| trouble | \(Int((options.failureRate * 100).rounded())) % of provider calls fail, \(Int((options.dropRate * 100).rounded())) % of notifications dropped, Graph down \(options.outageDays) days, Google sync tokens invalidated \(options.syncTokenInvalidations)×, \(options.revokedAccounts) refresh tokens revoked and reconnected, recurring series with exceptions \(options.recurringSeries ? "edited" : "off") |",
            "| changes made at the providers | \(changes) |",
            "| converged | \(converged) of \(total) |",
            "| lapsed (provider up, credentials valid) | \(lapsed) |",
            "| expired while unreachable (outage, revoked token; recreated) | \(expiredWhileUnreachable) |",
            "| lapses the gateway counted (all causes) | \(gatewayLapses) |",
            "| duplicate channels | \(duplicateChannels) |",
            "| ghost events | \(ghostEvents) |",
            "| recovery after the Graph outage | \(recoveryMinutes.map { "\(Int($0.rounded(.up))) min of provider time" } ?? "not reached") |",
            "| peak backlog (calendars pending, running or backing off) | \(peakBacklog) |",
            "| Redtail steps behind after a poll | \(redtailLateSteps) |",
            "| wall clock | \(Int(seconds)) s |",
            "| peak memory (VmHWM) | \(Int(peakMemoryMiB.rounded())) MiB |",
            "", "## Per provider", "",
            "| provider | calls admitted | failed by chaos | quota 429/403 | chaos 429 | peak quota 429/403 per min | peak 429/403 per min | peak 429/403 per min after the outage | renewals | missed by push |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for (provider, name) in providers {
            let figures = self.providers[provider] ?? MonthSimulation.ProviderFigures()
            lines.append(
                "| \(name) | \(figures.calls) | \(figures.failures) | \(figures.quotaThrottles) | \(figures.chaosThrottles) | \(figures.peakQuotaThrottlesPerMinute) | \(figures.peakThrottlesPerMinute) | \(figures.peakThrottlesPerMinuteAfterOutage) | \(figures.renewals) | \(figures.missedByPush) |"
            )
        }
        lines += [
            "",
            "Quota 429/403 are answers the simulators gave because a published limit was exceeded (Google 600 requests/min per user and 10,000/min per project; Graph 4 concurrent requests and 10,000 requests/10 min per mailbox; Redtail, which publishes none, an assumed 2 concurrent and 120/min per credential). Chaos 429s are the injected failures. Minutes are provider (simulated) minutes; the month batches work that falls within 5 provider minutes, so per-minute peaks are upper bounds.",
        ]
        if !differences.isEmpty {
            lines += ["", "## Differences", ""] + differences.prefix(50).map { "- \($0)" }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
