import ArgumentParser
import Foundation
import GatewayCore
import ProviderSimulators

/// `apply`: a simulator calendar with 100,000 events is synced through the real `GoogleConnectionSyncer.sync` (the
/// call the scheduler makes), in `events.list` pages of 250 over loopback HTTP, into the SQLite file: first a full
/// sync (Google invalidated the sync token: 410, then the full listing replaces the calendar), then an incremental
/// round after a tenth of the events changed. Appointments applied per second = changes applied / wall time of the
/// sync (fetching, decoding, mapping and the one transaction that applies them with the new cursor).
struct Apply: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "apply", abstract: "Appointments applied per second from pages of 250 events.")

    @OptionGroup var options: BenchOptions

    @Option(help: "Events in the calendar.")
    var events = 100_000

    @Option(name: .customLong("changed-share"), help: "Share of events changed (a tenth of them deleted) before the incremental round.")
    var changedShare = 0.1

    func run() async throws {
        let simulator = GoogleSimulator(refreshTokens: ["1//bench"])
        let gateway = try await BenchGateway(simulator: simulator, routesDirectory: options.routesDirectory, logger: options.logger)
        do {
            let connection = try await gateway.connectGoogle(user: "bench", refreshToken: "1//bench")
            let key = "\(connection)/primary"
            // The calendar: a working year of meetings with attendees, some recurring, some all-day.
            let populated = ContinuousClock.now
            let base = Date(timeIntervalSince1970: 1_790_000_000)
            for index in 0..<events { simulator.upsertEvent(calendar: "primary", Self.event(index, base: base, edit: 0)) }
            let populateSeconds = seconds(ContinuousClock.now - populated)
            simulator.invalidateSyncTokens()

            let listsBefore = simulator.listCalls
            let fullStarted = ContinuousClock.now
            let full = try await gateway.google.sync(calendarKey: key)
            let fullSeconds = seconds(ContinuousClock.now - fullStarted)
            let fullPages = simulator.listCalls - listsBefore
            let storedAfterFull = try await gateway.store.appointments(calendarKey: key).count

            let changed = max(1, Int(Double(events) * changedShare))
            var deleted = 0
            for step in 0..<changed {
                let index = (step * 7919) % events
                if step % 10 == 9 {
                    simulator.deleteEvent(calendar: "primary", id: "ev\(index)")
                    deleted += 1
                } else {
                    simulator.upsertEvent(calendar: "primary", Self.event(index, base: base, edit: 1))
                }
            }
            let listsBeforeDelta = simulator.listCalls
            let deltaStarted = ContinuousClock.now
            let delta = try await gateway.google.sync(calendarKey: key)
            let deltaSeconds = seconds(ContinuousClock.now - deltaStarted)
            let deltaPages = simulator.listCalls - listsBeforeDelta
            let converged = try await gateway.converged([(key, "primary")]) == 1
            emit([
                "figure": .string("appointments_applied_per_s"),
                "appointments_applied_per_s": .number((Double(full.changes) / fullSeconds).rounded()),
                "full_sync_changes": .integer(Int64(full.changes)), "full_sync_seconds": .number(fullSeconds),
                "full_sync_pages": .integer(Int64(fullPages)), "full_sync_was_full": .bool(full.fullSync),
                "stored_after_full_sync": .integer(Int64(storedAfterFull)),
                "incremental_applied_per_s": .number((Double(delta.changes) / deltaSeconds).rounded()),
                "incremental_changes": .integer(Int64(delta.changes)), "incremental_deletions": .integer(Int64(deleted)),
                "incremental_seconds": .number(deltaSeconds), "incremental_pages": .integer(Int64(deltaPages)),
                "converged": .bool(converged), "events": .integer(Int64(events)), "page_size": .integer(250),
                "populate_seconds": .number(populateSeconds),
            ])
        } catch {
            await gateway.shutdown()
            throw error
        }
        await gateway.shutdown()
    }

    /// Event `index`: a one-hour meeting with two attendees on a working day; every 20th is a weekly series and
    /// every 25th an all-day event.
    static func event(_ index: Int, base: Date, edit: Int) -> [String: JSONValue] {
        let day = index / 8
        let start = base.addingTimeInterval(Double(day) * 86_400 + Double(8 + index % 8) * 3600)
        var fields = benchEvent(id: "ev\(index)", title: "Client review \(index)" + (edit > 0 ? " (moved)" : ""), start: start.addingTimeInterval(Double(edit) * 1800))
        if index % 25 == 0 {
            let date = String(start.formatted(.iso8601).prefix(10))
            fields["start"] = .object(["date": .string(date)])
            fields["end"] = .object(["date": .string(date)])
        }
        if index % 20 == 0 { fields["recurrence"] = .array([.string("RRULE:FREQ=WEEKLY;COUNT=10")]) }
        fields["description"] = .string("Quarterly portfolio review; agenda attached.")
        fields["location"] = .string("Office \(index % 40), Main Street 1")
        fields["attendees"] = .array([
            .object(["email": .string("advisor\(index % 50)@example.com"), "responseStatus": .string("accepted"), "organizer": .bool(true)]),
            .object(["email": .string("client\(index)@example.org"), "responseStatus": .string("needsAction")]),
        ])
        fields["organizer"] = .object(["email": .string("advisor\(index % 50)@example.com"), "self": .bool(true)])
        fields["creator"] = .object(["email": .string("advisor\(index % 50)@example.com")])
        fields["etag"] = .string("\"33\(index)000\(edit)\"")
        fields["htmlLink"] = .string("https://www.google.com/calendar/event?eid=ZXY\(index)")
        fields["kind"] = .string("calendar#event")
        fields["created"] = .string("2026-01-05T09:00:00.000Z")
        fields["reminders"] = .object(["useDefault": .bool(true)])
        fields["eventType"] = .string("default")
        return fields
    }
}
