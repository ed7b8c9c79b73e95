import ArgumentParser
import Foundation
import GatewayCore
import ProviderSimulators
import Synchronization

/// `coalesce-one`: 1,000 changes to one Google calendar, each announced by a real HTTPS push to the running gateway
/// as fast as the pushes can be sent (a burst well inside one second in release builds); counts the delta fetches
/// the scheduler makes for them (simulator `events.list` calls after the connect flow's full sync).
struct CoalesceOne: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coalesce-one", abstract: "Delta fetches caused by a burst of notifications for one calendar."
    )

    @OptionGroup var options: BenchOptions

    @Option(help: "Notifications (each after one event change).")
    var notifications = 1000

    func run() async throws {
        let simulator = GoogleSimulator(refreshTokens: ["1//bench"])
        let start = Date().addingTimeInterval(86_400)
        for index in 0..<20 { simulator.upsertEvent(calendar: "primary", benchEvent(id: "e\(index)", title: "Seed \(index)", start: start)) }
        let gateway = try await BenchGateway(simulator: simulator, routesDirectory: options.routesDirectory, logger: options.logger)
        do {
            let connection = try await gateway.connectGoogle(user: "bench", refreshToken: "1//bench")
            guard let channel = simulator.liveChannels(calendar: "primary").first else { throw BenchError("the connect flow opened no channel") }
            let listsBefore = simulator.listCalls
            let fetchesBefore = gateway.scheduler.fetchesStarted
            let count = notifications
            let began = ContinuousClock.now
            let acknowledged = await BenchGateway.run(count: count, width: options.concurrency) { index in
                // A change at the provider, then its push (Google pushes after the change is visible to events.list).
                simulator.upsertEvent(calendar: "primary", benchEvent(id: "e\(index % 50)", title: "Edit \(index)", start: start))
                return await gateway.push(channel, messageNumber: UInt64(1000 + index))
            }
            let burst = ContinuousClock.now - began
            let settled = await gateway.settle(within: 30)
            let total = ContinuousClock.now - began
            let converged = try await gateway.converged([("\(connection)/primary", "primary")]) == 1
            emit([
                "figure": .string("delta_fetches_1000_notifications_one_calendar"),
                "delta_fetches": .integer(Int64(simulator.listCalls - listsBefore)),
                "scheduler_fetches": .integer(Int64(gateway.scheduler.fetchesStarted - fetchesBefore)),
                "notifications": .integer(Int64(count)), "acknowledged": .integer(Int64(acknowledged)),
                "burst_seconds": .number(seconds(burst)), "until_settled_seconds": .number(seconds(total)),
                "settled": .bool(settled), "converged": .bool(converged),
                "window_seconds": .number(1), "path": .string("HTTPS pushes to /webhooks/google -> inbox -> SyncScheduler -> events.list"),
            ])
        } catch {
            await gateway.shutdown()
            throw error
        }
        await gateway.shutdown()
    }
}

/// `coalesce-many`: 1,000 Google calendars (100 accounts × 10 calendars, connected through the API) each receive
/// 10 changes, each announced by a real HTTPS push; counts the delta fetches and the wall time until every
/// notification is processed and every calendar equals the simulator.
struct CoalesceMany: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coalesce-many", abstract: "Delta fetches caused by 10 notifications for each of 1,000 calendars."
    )

    @OptionGroup var options: BenchOptions

    @Option(help: "Accounts connected through the API.")
    var accounts = 100

    @Option(name: .customLong("calendars-per-account"), help: "Calendars each account syncs.")
    var calendarsPerAccount = 10

    @Option(name: .customLong("notifications-per-calendar"), help: "Changes, each with its push, per calendar.")
    var notificationsPerCalendar = 10

    @Option(
        help: """
            windowed: calendars in blocks of --block-calendars, round after round within a block (each calendar's pushes \
            interleaved with the block's others, spread over about one second); interleaved: round after round over every \
            calendar (each calendar's pushes spread over the whole burst); grouped: each calendar's pushes back to back.
            """)
    var order = "windowed"

    @Option(name: .customLong("block-calendars"), help: "Calendars per block in the windowed order.")
    var blockCalendars = 100

    func run() async throws {
        guard ["windowed", "interleaved", "grouped"].contains(order) else { throw ValidationError("--order must be windowed, interleaved or grouped") }
        guard blockCalendars > 0, (accounts * calendarsPerAccount) % blockCalendars == 0 else {
            throw ValidationError("--block-calendars must divide the number of calendars")
        }
        let simulator = GoogleSimulator(refreshTokens: ["1//bench"])
        let calendarCount = accounts * calendarsPerAccount
        let names = (0..<calendarCount).map { String(format: "cal%05d", $0) }
        for name in names { simulator.addCalendar(id: name, name: name) }
        let start = Date().addingTimeInterval(86_400)
        let gateway = try await BenchGateway(simulator: simulator, routesDirectory: options.routesDirectory, logger: options.logger)
        do {
            // Accounts connect through the API, a few at a time, then choose their calendars (full sync + watch each).
            let connectStarted = ContinuousClock.now
            let perAccount = calendarsPerAccount
            let connections = Mutex<[Int: String]>([:])
            let connected = await BenchGateway.run(count: accounts, width: 4) { account in
                do {
                    let id = try await gateway.connectGoogle(user: "bench-\(account)", refreshToken: "1//bench")
                    try await gateway.select(connection: id, calendars: Array(names[(account * perAccount)..<((account + 1) * perAccount)]))
                    connections.withLock { $0[account] = id }
                    return 200
                } catch {
                    FileHandle.standardError.write(Data("connect \(account): \(error)\n".utf8))
                    return 0
                }
            }
            guard connected == accounts else { throw BenchError("only \(connected) of \(accounts) accounts connected") }
            let connectSeconds = seconds(ContinuousClock.now - connectStarted)
            let ids = connections.withLock { $0 }
            var found: [GoogleSimulator.WatchedChannel] = []
            for name in names {
                guard let channel = simulator.liveChannels(calendar: name).first else { throw BenchError("\(name) has no live channel") }
                found.append(channel)
            }
            let channels = found
            let keys = names.indices.map { (key: "\(ids[$0 / perAccount] ?? "")/\(names[$0])", simulatorCalendar: names[$0]) }

            let listsBefore = simulator.listCalls
            let fetchesBefore = gateway.scheduler.fetchesStarted
            let rounds = notificationsPerCalendar
            let total = calendarCount * rounds
            let order = self.order
            let block = order == "windowed" ? blockCalendars : calendarCount
            // Per calendar: when its first and its last push was acknowledged.
            let acks = Mutex([(first: Duration?, last: Duration?)](repeating: (nil, nil), count: calendarCount))
            let began = ContinuousClock.now
            let acknowledged = await BenchGateway.run(count: total, width: options.concurrency) { index in
                let calendar: Int, round: Int
                if order == "grouped" {
                    (calendar, round) = (index / rounds, index % rounds)
                } else {
                    let (blockIndex, within) = index.quotientAndRemainder(dividingBy: block * rounds)
                    (calendar, round) = (blockIndex * block + within % block, within / block)
                }
                simulator.upsertEvent(calendar: names[calendar], benchEvent(id: "e\(round % 5)", title: "Edit \(round)", start: start))
                let status = await gateway.push(channels[calendar], messageNumber: UInt64(1000 + round))
                let at = ContinuousClock.now - began
                acks.withLock { acks in
                    acks[calendar].first = min(acks[calendar].first ?? at, at)
                    acks[calendar].last = max(acks[calendar].last ?? at, at)
                }
                return status
            }
            let burst = ContinuousClock.now - began
            let spans = acks.withLock { $0 }.map { ($0.last ?? .zero) - ($0.first ?? .zero) }.sorted()
            let settled = await gateway.settle(within: 55)
            let wall = ContinuousClock.now - began
            let converged = try await gateway.converged(keys)
            emit([
                "figure": .string("delta_fetches_1000_calendars_x10"),
                "delta_fetches": .integer(Int64(simulator.listCalls - listsBefore)),
                "scheduler_fetches": .integer(Int64(gateway.scheduler.fetchesStarted - fetchesBefore)),
                "calendars": .integer(Int64(calendarCount)), "accounts": .integer(Int64(accounts)),
                "notifications": .integer(Int64(total)), "acknowledged": .integer(Int64(acknowledged)),
                "order": .string(order), "block_calendars": .integer(Int64(block)),
                "per_calendar_push_span_seconds_median": .number(seconds(spans[spans.count / 2])),
                "per_calendar_push_span_seconds_max": .number(seconds(spans.last ?? .zero)),
                "burst_seconds": .number(seconds(burst)), "wall_seconds": .number(seconds(wall)),
                "settled": .bool(settled), "calendars_converged": .integer(Int64(converged)),
                "connect_seconds": .number(connectSeconds), "setup": .string("accounts connected and calendars selected through the API"),
                "window_seconds": .number(1),
            ])
        } catch {
            await gateway.shutdown()
            throw error
        }
        await gateway.shutdown()
    }
}
