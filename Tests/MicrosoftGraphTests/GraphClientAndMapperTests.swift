import CurlHTTP
import Foundation
import GatewayCore
import Hummingbird
import ProviderSimulators
import Testing
@testable import MicrosoftGraph

/// Event mapping, error classification, link checking and the mailbox limiter, each with the bad inputs they refuse.
@Suite("Graph client and mapper")
struct GraphClientAndMapperTests {
    func item(_ json: String) throws -> GraphDeltaItem {
        try JSONDecoder().decode(GraphDeltaItem.self, from: Data(json.utf8))
    }

    @Test func itemsMapToTheChangesTheyStandFor() throws {
        let key = "mc_1/cal"
        #expect(try GraphEventMapper.changes(for: item(#"{"id":"A","@removed":{"reason":"deleted"}}"#), calendarKey: key) == [.delete(externalID: "A")])
        #expect(try GraphEventMapper.changes(for: item(#"{"id":"O","type":"occurrence","seriesMasterId":"M","start":{"dateTime":"2026-12-01T10:00:00.0000000","timeZone":"UTC"},"end":{"dateTime":"2026-12-01T11:00:00.0000000","timeZone":"UTC"}}"#), calendarKey: key).isEmpty)
        #expect(
            try GraphEventMapper.changes(for: item(#"{"id":"X","type":"exception","isCancelled":true,"seriesMasterId":"M","originalStart":"2026-12-08T10:00:00Z"}"#), calendarKey: key)
                == [.cancelInstance(source: .microsoft, externalID: "X", seriesID: "M", originalStart: "2026-12-08T10:00:00Z")])
        #expect(try GraphEventMapper.changes(for: item(#"{"id":"C","type":"singleInstance","isCancelled":true}"#), calendarKey: key) == [.delete(externalID: "C")])

        let allDay = try GraphEventMapper.changes(for: item(#"{"id":"D","subject":"Offsite","isAllDay":true,"start":{"dateTime":"2026-12-10T00:00:00.0000000","timeZone":"Eastern Standard Time"},"end":{"dateTime":"2026-12-12T00:00:00.0000000","timeZone":"Eastern Standard Time"}}"#), calendarKey: key)
        guard case .upsert(let offsite)? = allDay.first else { Issue.record("no upsert"); return }
        #expect(offsite.time == .allDay(startDate: "2026-12-10", endDate: "2026-12-12"))
        #expect(offsite.source == .microsoft)

        let master = try GraphEventMapper.changes(
            for: item(
                #"""
                {"id":"M","type":"seriesMaster","subject":"Standup","showAs":"tentative","lastModifiedDateTime":"2026-11-01T09:00:00.1234567Z",
                 "start":{"dateTime":"2026-12-01T09:00:00.0000000","timeZone":"India Standard Time"},"end":{"dateTime":"2026-12-01T09:15:00.0000000","timeZone":"India Standard Time"},
                 "recurrence":{"pattern":{"type":"daily","interval":2},"range":{"type":"endDate","startDate":"2026-12-01","endDate":"2026-12-31","recurrenceTimeZone":"India Standard Time"}},
                 "cancelledOccurrences":["OID.M.2026-12-05"]}
                """#), calendarKey: key)
        guard case .upsert(let standup)? = master.first else { Issue.record("no upsert"); return }
        #expect(standup.status == "tentative")
        #expect(standup.recurrence.first?.hasPrefix("RRULE:FREQ=DAILY;INTERVAL=2") == true)
        #expect(standup.recurrence.first?.contains("UNTIL=20261231T") == true)
        #expect(
            standup.time
                == .timed(
                    start: try #require(ISO8601DateFormatter().date(from: "2026-12-01T03:30:00Z")),
                    end: try #require(ISO8601DateFormatter().date(from: "2026-12-01T03:45:00Z")), timeZone: "Asia/Calcutta")
                || standup.time
                    == .timed(
                        start: try #require(ISO8601DateFormatter().date(from: "2026-12-01T03:30:00Z")),
                        end: try #require(ISO8601DateFormatter().date(from: "2026-12-01T03:45:00Z")), timeZone: "Asia/Kolkata")
        )
        #expect(standup.updatedAt != nil)
        #expect(master.dropFirst().first == .cancelInstance(source: .microsoft, externalID: "M#cancelled#2026-12-05", seriesID: "M", originalStart: "2026-12-05"))
    }

    @Test(arguments: [
        (#"{"id":"B1","subject":"x"}"#, "no start or end"),
        (#"{"id":"B2","start":{"dateTime":"2026-12-01T10:00:00","timeZone":"Mars Standard Time"},"end":{"dateTime":"2026-12-01T11:00:00","timeZone":"UTC"}}"#, "Mars"),
        (#"{"id":"B3","start":{"dateTime":"2026-13-01T10:00:00","timeZone":"UTC"},"end":{"dateTime":"2026-12-01T11:00:00","timeZone":"UTC"}}"#, "B3"),
        (#"{"id":"B4","start":{"dateTime":"2026-12-01T11:00:00","timeZone":"UTC"},"end":{"dateTime":"2026-12-01T10:00:00","timeZone":"UTC"}}"#, "ends before it starts"),
        (#"{"id":"B5","type":"seriesMaster","start":{"dateTime":"2026-12-01T10:00:00","timeZone":"UTC"},"end":{"dateTime":"2026-12-01T11:00:00","timeZone":"UTC"}}"#, "no recurrence"),
        (#"{"id":"B6","type":"seriesMaster","start":{"dateTime":"2026-12-01T10:00:00","timeZone":"UTC"},"end":{"dateTime":"2026-12-01T11:00:00","timeZone":"UTC"},"recurrence":{"pattern":{"type":"weekly","interval":1},"range":{"type":"noEnd","startDate":"2026-12-01"}}}"#, "daysOfWeek"),
        (#"{"id":"B7","type":"exception","seriesMasterId":"M","originalStart":"last tuesday","start":{"dateTime":"2026-12-01T10:00:00","timeZone":"UTC"},"end":{"dateTime":"2026-12-01T11:00:00","timeZone":"UTC"}}"#, "originalStart"),
        (#"{"id":"","@removed":{}}"#, "empty"),
    ])
    func malformedItemsAreRefusedNamingTheProblem(json: String, expected: String) throws {
        let decoded = try item(json)
        #expect {
            _ = try GraphEventMapper.changes(for: decoded, calendarKey: "k")
        } throws: { error in
            (error as? GraphEventMappingError)?.description.contains(expected) == true
        }
    }

    @Test func failuresAreClassifiedForTheScheduler() {
        func response(_ status: Int, _ body: String, retryAfter: String? = nil) -> CurlHTTPResponse {
            CurlHTTPResponse(status: status, headers: retryAfter.map { [CurlHTTPHeader("Retry-After", $0)] } ?? [], body: Array(body.utf8))
        }
        #expect(GraphClient.classify(response(410, #"{"error":{"code":"resyncRequired"}}"#), what: "d").kind == .resyncRequired)
        #expect(GraphClient.classify(response(400, #"{"error":{"code":"syncStateNotFound"}}"#), what: "d").kind == .resyncRequired)
        #expect(GraphClient.classify(response(404, #"{"error":{"code":"syncStateNotFound"}}"#), what: "d").kind == .resyncRequired)
        #expect(GraphClient.classify(response(429, "{}", retryAfter: "7"), what: "d").kind == .rateLimited(retryAfter: 7))
        #expect(GraphClient.classify(response(429, "not json", retryAfter: "999999"), what: "d").kind == .rateLimited(retryAfter: 3600), "absurd Retry-After is capped")
        #expect(GraphClient.classify(response(503, "{}", retryAfter: "2"), what: "d").kind == .rateLimited(retryAfter: 2))
        #expect(GraphClient.classify(response(502, "<html>"), what: "d").kind == .server)
        #expect(GraphClient.classify(response(401, "{}"), what: "d").kind == .unauthorized)
        #expect(GraphClient.classify(response(404, #"{"error":{"code":"ResourceNotFound"}}"#), what: "d").kind == .notFound)
        #expect(GraphClient.classify(response(400, #"{"error":{"code":"InvalidRequest","message":"Subscription validation request timed out."}}"#), what: "d").kind == .validationFailed)
        #expect(GraphClient.classify(response(403, #"{"error":{"code":"ExtensionError"}}"#), what: "d").kind == .other(status: 403))
    }

    @Test func linksAreFollowedOnlyBackToGraph() throws {
        let client = GraphClient(http: try CurlHTTPClient(), endpoints: GraphEndpoints(tokenURL: "https://login.test/token", apiBaseURL: "https://graph.test/v1.0/"))
        #expect(try client.checkedLink("https://graph.test/v1.0/me/events/delta?$deltatoken=abc", what: "l") == "https://graph.test/v1.0/me/events/delta?$deltatoken=abc")
        for bad in [
            "https://evil.test/v1.0/me", "https://graph.test.evil.test/v1.0/me", "http://graph.test/v1.0/me", "https://graph.test/v1.0x/me",
            "https://graph.test/v1.0/me\r\nHost: evil", "https://graph.test/v1.0/a b",
        ] {
            #expect(throws: GraphAPIError.self, "\(bad)") { try client.checkedLink(bad, what: "l") }
        }
    }

    @Test func theMailboxLimiterCapsAndHandsOverInOrder() async {
        let limiter = MailboxLimiter(limit: 4)
        actor Counter {
            var now = 0, peak = 0
            func enter() { now += 1; peak = max(peak, now) }
            func leave() { now -= 1 }
        }
        let counter = Counter()
        await withTaskGroup(of: Void.self) { group in
            for n in 0..<40 {
                group.addTask {
                    let mailbox = n % 2 == 0 ? "a" : "b"
                    await limiter.acquire(mailbox)
                    if mailbox == "a" { await counter.enter() }
                    try? await Task.sleep(for: .milliseconds(5))
                    if mailbox == "a" { await counter.leave() }
                    limiter.release(mailbox)
                }
            }
        }
        #expect(await counter.peak <= 4)
        #expect(limiter.highWaterMark <= 4)
        // All slots returned: a fresh acquire does not wait.
        for _ in 0..<4 { await limiter.acquire("a") }
        for _ in 0..<4 { limiter.release("a") }
    }

    /// Bad provider answers, served by a tiny loopback server: each is a clear `badResponse`, never a crash or a
    /// request with the bearer token to somewhere else.
    @Test func malformedGraphAnswersAreRefused() async throws {
        let router = Router(context: BasicRequestContext.self)
        router.get("/v1.0/both") { _, _ in #"{"value":[],"@odata.nextLink":"x","@odata.deltaLink":"y"}"# }
        router.get("/v1.0/neither") { _, _ in #"{"value":[]}"# }
        router.get("/v1.0/foreign") { _, _ in #"{"value":[],"@odata.nextLink":"https://evil.test/v1.0/steal"}"# }
        router.get("/v1.0/notjson") { _, _ in "<html>" }
        router.get("/v1.0/badvalue") { _, _ in #"{"value":{"id":1}}"# }
        router.post("/token") { _, _ in #"{"token_type":"Bearer","expires_in":3599}"# }
        router.post("/token-absurd") { _, _ in #"{"access_token":"a","expires_in":-5}"# }
        router.post("/token-busy") { _, _ in
            Response(status: .badRequest, headers: [.contentType: "application/json"], body: .init(byteBuffer: .init(string: #"{"error":"temporarily_unavailable"}"#)))
        }
        let server = try await SimulatorServer(router: router)
        let http = try CurlHTTPClient()
        let client = GraphClient(http: http, endpoints: GraphEndpoints(tokenURL: server.baseURL + "/token", apiBaseURL: server.baseURL + "/v1.0"))
        let auth = GraphAuthorization(accessToken: "t", mailbox: "m")
        for path in ["both", "neither", "foreign", "notjson", "badvalue"] {
            await #expect(throws: GraphAPIError.self, "\(path)") { _ = try await client.deltaPage(server.baseURL + "/v1.0/" + path, auth, pageSize: 10) }
        }
        await #expect { _ = try await client.refreshAccessToken(clientID: "c", clientSecret: "s", refreshToken: "r") } throws: {
            ($0 as? GraphAPIError)?.kind == .badResponse
        }
        let absurd = GraphClient(http: http, endpoints: GraphEndpoints(tokenURL: server.baseURL + "/token-absurd", apiBaseURL: server.baseURL + "/v1.0"))
        await #expect { _ = try await absurd.refreshAccessToken(clientID: "c", clientSecret: "s", refreshToken: "r") } throws: {
            ($0 as? GraphAPIError)?.kind == .badResponse
        }
        let busy = GraphClient(http: http, endpoints: GraphEndpoints(tokenURL: server.baseURL + "/token-busy", apiBaseURL: server.baseURL + "/v1.0"))
        await #expect { _ = try await busy.refreshAccessToken(clientID: "c", clientSecret: "s", refreshToken: "r") } throws: {
            ($0 as? GraphAPIError)?.kind == .server
        }
        await http.shutdown()
        await server.stop()
    }
}
