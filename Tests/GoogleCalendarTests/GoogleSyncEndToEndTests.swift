import CurlHTTP
import Foundation
import GatewayCore
import GoogleCalendar
import Hummingbird
import Logging
import ProviderSimulators
import SQLiteStore
import ServiceLifecycle
import TestSupport
import Testing

/// The Google simulator on loopback, the libcurl client, and a real SQLite store: sync end to end.
final class GoogleSyncFixture: Sendable {
    let simulator = GoogleSimulator(refreshTokens: ["1//refresh-ok"])
    let directory = makeTemporaryDirectory("calgate-google")
    let store: SQLiteStore
    let http: CurlHTTPClient
    let client: GoogleCalendarClient
    let server: SimulatorServer

    init() async throws {
        store = try SQLiteStore(path: directory + "/db.sqlite")
        http = try CurlHTTPClient()
        server = try await SimulatorServer(router: simulator.makeRouter())
        let bound = server.port
        client = GoogleCalendarClient(
            http: http,
            endpoints: GoogleEndpoints(
                tokenURL: "http://127.0.0.1:\(bound)/token", apiBaseURL: "http://127.0.0.1:\(bound)/calendar/v3"
            ))
    }

    func accessToken() async throws -> String {
        try await client.refreshAccessToken(clientID: "client", clientSecret: "secret", refreshToken: "1//refresh-ok").value
    }

    func stop() async {
        await http.shutdown()
        await store.close()
        await server.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

func timed(_ summary: String, _ start: String, _ end: String, zone: String = "Europe/Berlin", extra: [String: JSONValue] = [:]) -> [String: JSONValue] {
    var fields: [String: JSONValue] = [
        "summary": .string(summary),
        "start": .object(["dateTime": .string(start), "timeZone": .string(zone)]),
        "end": .object(["dateTime": .string(end), "timeZone": .string(zone)]),
    ]
    for (k, v) in extra { fields[k] = v }
    return fields
}

@Suite("Google sync against the simulator", .serialized)
struct GoogleSyncEndToEndTests {
    @Test func fullThenIncrementalSyncAcrossPagesKeepsTheStoreRight() async throws {
        let f = try await GoogleSyncFixture()
        let token = try await f.accessToken()
        let sim = f.simulator
        sim.upsertEvent(calendar: "primary", timed("Review", "2026-12-01T10:00:00+01:00", "2026-12-01T11:00:00+01:00", extra: ["id": .string("single1")]))
        sim.upsertEvent(
            calendar: "primary",
            [
                "id": .string("allday1"), "summary": .string("Offsite"),
                "start": .object(["date": .string("2026-12-03")]), "end": .object(["date": .string("2026-12-05")]),
            ])
        sim.upsertEvent(
            calendar: "primary",
            timed(
                "Standup", "2026-12-01T09:00:00+01:00", "2026-12-01T09:15:00+01:00",
                extra: ["id": .string("series1"), "recurrence": .array([.string("RRULE:FREQ=DAILY;COUNT=10")])]))

        let syncer = GoogleCalendarSyncer(client: f.client, store: f.store, pageSize: 2)
        let full = try await syncer.sync(calendarKey: "conn-1/primary", calendarID: "primary", accessToken: token)
        #expect(full.fullSync)
        #expect(full.pages == 2)
        var rows = try await f.store.appointments(calendarKey: "conn-1/primary")
        #expect(rows.map(\.externalID) == ["allday1", "series1", "single1"])
        #expect(rows[0].time == .allDay(startDate: "2026-12-03", endDate: "2026-12-05"))
        #expect(rows[2].time == .timed(start: Date(timeIntervalSince1970: 1_796_115_600), end: Date(timeIntervalSince1970: 1_796_119_200), timeZone: "Europe/Berlin"))
        #expect(rows[1].recurrence == ["RRULE:FREQ=DAILY;COUNT=10"])

        // Six changes, so the incremental sync spans three pages of two.
        sim.upsertEvent(calendar: "primary", timed("Review (moved)", "2026-12-02T10:00:00+01:00", "2026-12-02T11:00:00+01:00", extra: ["id": .string("single1")]))
        sim.upsertEvent(
            calendar: "primary",
            timed(
                "Standup (late)", "2026-12-03T09:30:00+01:00", "2026-12-03T09:45:00+01:00",
                extra: [
                    "id": .string("series1_20261203T080000Z"), "recurringEventId": .string("series1"),
                    "originalStartTime": .object(["dateTime": .string("2026-12-03T09:00:00+01:00"), "timeZone": .string("Europe/Berlin")]),
                ]))
        sim.upsertEvent(
            calendar: "primary",
            [
                "id": .string("series1_20261205T080000Z"), "status": .string("cancelled"),
                "recurringEventId": .string("series1"), "originalStartTime": .object(["dateTime": .string("2026-12-05T09:00:00+01:00")]),
            ])
        sim.deleteEvent(calendar: "primary", id: "allday1")
        sim.upsertEvent(calendar: "primary", timed("New", "2026-12-10T12:00:00Z", "2026-12-10T13:00:00Z", zone: "UTC", extra: ["id": .string("new1")]))
        sim.upsertEvent(calendar: "primary", timed("New 2", "2026-12-11T12:00:00Z", "2026-12-11T13:00:00Z", zone: "UTC", extra: ["id": .string("new2")]))
        let cursorBefore = try await f.store.syncCursor(calendarKey: "conn-1/primary")

        let incremental = try await syncer.sync(calendarKey: "conn-1/primary", calendarID: "primary", accessToken: token)
        #expect(!incremental.fullSync)
        #expect(incremental.pages == 3)
        #expect(incremental.changes == 6)
        #expect(try await f.store.syncCursor(calendarKey: "conn-1/primary") != cursorBefore)
        rows = try await f.store.appointments(calendarKey: "conn-1/primary")
        #expect(rows.map(\.externalID) == ["new1", "new2", "series1", "series1_20261203T080000Z", "series1_20261205T080000Z", "single1"])
        #expect(rows.first { $0.externalID == "single1" }?.title == "Review (moved)")
        let exception = try #require(rows.first { $0.externalID == "series1_20261203T080000Z" })
        #expect(exception.seriesID == "series1")
        #expect(exception.originalStart == "2026-12-03T09:00:00+01:00")
        #expect(rows.first { $0.externalID == "series1_20261205T080000Z" }?.status == "cancelled")

        // Nothing changed: one page, no changes, same state.
        let idle = try await syncer.sync(calendarKey: "conn-1/primary", calendarID: "primary", accessToken: token)
        #expect(idle.pages == 1 && idle.changes == 0)

        // Deleting the series takes its exceptions.
        sim.deleteEvent(calendar: "primary", id: "series1")
        _ = try await syncer.sync(calendarKey: "conn-1/primary", calendarID: "primary", accessToken: token)
        rows = try await f.store.appointments(calendarKey: "conn-1/primary")
        #expect(rows.map(\.externalID) == ["new1", "new2", "single1"])
        await f.stop()
    }

    @Test func an410LeadsToOneFullResyncWithTheRightFinalState() async throws {
        let f = try await GoogleSyncFixture()
        let token = try await f.accessToken()
        f.simulator.upsertEvent(calendar: "work", timed("A", "2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z", extra: ["id": .string("a")]))
        f.simulator.upsertEvent(calendar: "work", timed("B", "2026-12-01T12:00:00Z", "2026-12-01T13:00:00Z", extra: ["id": .string("b")]))
        let syncer = GoogleCalendarSyncer(client: f.client, store: f.store)
        _ = try await syncer.sync(calendarKey: "k", calendarID: "work", accessToken: token)
        f.simulator.deleteEvent(calendar: "work", id: "a")
        f.simulator.invalidateSyncTokens()
        let calls = f.simulator.listCalls
        let outcome = try await syncer.sync(calendarKey: "k", calendarID: "work", accessToken: token)
        #expect(outcome.fullSync)
        #expect(f.simulator.listCalls - calls == 2, "one refused incremental call, one full listing")
        #expect(try await f.store.appointments(calendarKey: "k").filter { $0.status != "cancelled" }.map(\.externalID) == ["b"])
        await f.stop()
    }

    @Test func faultsAreClassifiedSoTheSchedulerCanBackOff() async throws {
        let f = try await GoogleSyncFixture()
        let token = try await f.accessToken()
        let syncer = GoogleCalendarSyncer(client: f.client, store: f.store)
        f.simulator.inject(.rateLimit)
        f.simulator.inject(.forbiddenRateLimit)
        f.simulator.inject(.serverError)
        for expected in [GoogleAPIErrorKind.rateLimited(retryAfter: 1), .rateLimited(retryAfter: nil), .server] {
            await #expect { try await syncer.sync(calendarKey: "k", calendarID: "primary", accessToken: token) } throws: {
                ($0 as? GoogleAPIError)?.kind == expected && ($0 as? GoogleAPIError)?.isRetryable == true
            }
        }
        #expect(try await f.store.syncCursor(calendarKey: "k") == nil, "a failed sync stores nothing")
        #expect(try await syncer.sync(calendarKey: "k", calendarID: "primary", accessToken: token).pages == 1)
        await #expect { try await syncer.sync(calendarKey: "k", calendarID: "primary", accessToken: "ya29.forged") } throws: {
            ($0 as? GoogleAPIError)?.kind == .unauthorized
        }
        f.simulator.revoke(refreshToken: "1//refresh-ok")
        await #expect { try await f.accessToken() } throws: { ($0 as? GoogleAPIError)?.kind == .invalidGrant }
        await f.stop()
    }

    @Test func malformedEventsAndPagesAreReportedNotDropped() throws {
        let noTimes = GoogleEvent(id: "x", status: "confirmed", summary: "s", start: nil, end: nil, recurrence: nil, recurringEventId: nil, originalStartTime: nil, updated: nil)
        #expect(throws: GoogleAPIError.self) { try GoogleEventMapper.change(for: noTimes, calendarKey: "k") }
        let badTime = GoogleEvent(
            id: "y", status: nil, summary: nil,
            start: GoogleEventDateTime(date: nil, dateTime: "yesterday", timeZone: nil),
            end: GoogleEventDateTime(date: nil, dateTime: "today", timeZone: nil),
            recurrence: nil, recurringEventId: nil, originalStartTime: nil, updated: nil
        )
        #expect(throws: GoogleAPIError.self) { try GoogleEventMapper.change(for: badTime, calendarKey: "k") }
        let deleted = GoogleEvent(id: "z", status: "cancelled", summary: nil, start: nil, end: nil, recurrence: nil, recurringEventId: nil, originalStartTime: nil, updated: nil)
        #expect(try GoogleEventMapper.change(for: deleted, calendarKey: "k") == .delete(externalID: "z"))
    }
}
