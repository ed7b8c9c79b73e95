import CurlHTTP
import Foundation
import Testing

/// The client against a loopback NIO server: methods, bodies, concurrency, limits, timeouts, cancellation, reuse.
///
/// Serialized: several tests measure elapsed time, which parallel neighbours on two cores would blur.
@Suite("CurlHTTPClient", .serialized, .timeLimit(.minutes(1)))
struct CurlHTTPClientTests {
    /// A server and a client for one test, both stopped by `done()`.
    struct Fixture {
        let server: LoopbackHTTPServer
        let client: CurlHTTPClient

        init(configure: (inout CurlHTTPClient.Configuration) -> Void = { _ in }) async throws {
            server = try await LoopbackHTTPServer.start()
            var configuration = CurlHTTPClient.Configuration()
            configure(&configuration)
            client = try CurlHTTPClient(configuration: configuration)
        }

        func url(_ path: String) -> String { server.baseURL + path }

        func echo(_ method: String, headers: [CurlHTTPHeader] = [], body: [UInt8]? = nil) async throws -> (CurlHTTPResponse, EchoReply) {
            let response = try await client.execute(CurlHTTPRequest(method: method, url: url("/echo?q=1"), headers: headers, body: body))
            return (response, try JSONDecoder().decode(EchoReply.self, from: Data(response.body)))
        }

        func done() async {
            await client.shutdown()
            await server.close()
        }
    }

    @Test func sendsEveryMethodWithHeadersAndABinaryBody() async throws {
        let fixture = try await Fixture()
        let binary: [UInt8] = [0, 1, 2, 0xFF, 0x0D, 0x0A, 0, 0x80] + (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "REPORT"] {
            let (response, echo) = try await fixture.echo(
                method,
                headers: [
                    CurlHTTPHeader("X-Token", "abc 123"), CurlHTTPHeader("X-Empty", ""), CurlHTTPHeader("Content-Type", "application/octet-stream"),
                ], body: binary)
            #expect(response.status == 200)
            #expect(response.httpVersion == "HTTP/1.1")
            #expect(response.header("CONTENT-TYPE") == "application/json")
            #expect(echo.method == method)
            #expect(echo.uri == "/echo?q=1")
            #expect(echo.body == binary, "\(method) body round-trips byte for byte")
            #expect(echo.values("x-token") == ["abc 123"])
            #expect(echo.values("x-empty") == [""], "an empty value is sent, not dropped")
            #expect(echo.values("content-type") == ["application/octet-stream"])
            #expect(echo.values("content-length") == [String(binary.count)])
            #expect(echo.values("expect").isEmpty)
            #expect(echo.values("user-agent") == ["calgate"])
        }
        await fixture.done()
    }

    @Test func bodylessMethodsAndDefaults() async throws {
        let fixture = try await Fixture { $0.userAgent = "calgate-test/1" }
        let (_, get) = try await fixture.echo("GET")
        #expect(get.method == "GET")
        #expect(get.body.isEmpty)
        #expect(get.values("content-length").isEmpty)
        #expect(get.values("user-agent") == ["calgate-test/1"])
        // POST, PUT and PATCH without a body send Content-Length: 0 and no form Content-Type.
        for method in ["POST", "PUT", "PATCH"] {
            let (_, echo) = try await fixture.echo(method)
            #expect(echo.method == method)
            #expect(echo.values("content-length") == ["0"])
            #expect(echo.values("content-type").isEmpty)
        }
        // curl frames the body; a caller's Content-Length cannot contradict it.
        let (_, framed) = try await fixture.echo("POST", headers: [CurlHTTPHeader("Content-Length", "999")], body: [1, 2, 3])
        #expect(framed.values("content-length") == ["3"])
        #expect(framed.body == [1, 2, 3])
        let (_, delete) = try await fixture.echo("DELETE")
        #expect(delete.method == "DELETE")
        #expect(delete.values("content-length").isEmpty)
        // A request's own User-Agent wins over the configured one.
        let (_, custom) = try await fixture.echo("GET", headers: [CurlHTTPHeader("User-Agent", "mine")])
        #expect(custom.values("user-agent") == ["mine"])
        let head = try await fixture.client.execute(CurlHTTPRequest(method: "HEAD", url: fixture.url("/bytes?n=100")))
        #expect(head.status == 200)
        #expect(head.header("content-length") == "100")
        #expect(head.body.isEmpty)
        await fixture.done()
    }

    @Test func largeBodiesGoWithoutExpectContinue() async throws {
        let fixture = try await Fixture()
        // curl would add `Expect: 100-continue` above 1 MiB and wait for the server; we switch that off.
        let body = (0..<(2 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let start = ContinuousClock.now
        let (response, echo) = try await fixture.echo("POST", body: body)
        #expect(response.status == 200)
        #expect(echo.values("expect").isEmpty)
        #expect(echo.body == body)
        #expect(ContinuousClock.now - start < .seconds(5))
        await fixture.done()
    }

    @Test func responseHeadersAreThoseOfTheFinalResponse() async throws {
        let fixture = try await Fixture()
        let continued = try await fixture.client.execute(CurlHTTPRequest(url: fixture.url("/continue")))
        #expect(continued.status == 200)
        #expect(continued.header("x-final") == "yes")
        #expect(continued.header("x-interim") == nil, "headers of the 100 response are dropped")
        #expect(String(decoding: continued.body, as: UTF8.self) == "final")

        let duplicates = try await fixture.client.execute(CurlHTTPRequest(url: fixture.url("/duplicates")))
        #expect(duplicates.headers(named: "set-cookie") == ["a=1", "b=2"])
        #expect(duplicates.header("X-EMPTY") == "")
        #expect(duplicates.header("missing") == nil)
        await fixture.done()
    }

    @Test func statusCodesAreResponsesAndRedirectsAreNotFollowed() async throws {
        let fixture = try await Fixture()
        for code in [201, 204, 400, 404, 410, 429, 500, 503] {
            let response = try await fixture.client.execute(CurlHTTPRequest(url: fixture.url("/status/\(code)")))
            #expect(response.status == code)
        }
        let redirect = try await fixture.client.execute(CurlHTTPRequest(method: "POST", url: fixture.url("/redirect"), body: [1, 2, 3]))
        #expect(redirect.status == 302)
        #expect(redirect.header("location") == "/echo")
        #expect(String(decoding: redirect.body, as: UTF8.self) == "moved")
        #expect(fixture.server.stats.requests == 9, "the redirect target was never requested")
        await fixture.done()
    }

    @Test func fiftyConcurrentRequestsComplete() async throws {
        let fixture = try await Fixture()
        let bodies = try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
            for index in 0..<50 {
                group.addTask {
                    let (response, echo) = try await fixture.echo("POST", body: Array("request \(index)".utf8))
                    #expect(response.status == 200)
                    return (index, echo.body)
                }
            }
            return try await group.reduce(into: [Int: [UInt8]]()) { $0[$1.0] = $1.1 }
        }
        #expect(bodies.count == 50)
        #expect((0..<50).allSatisfy { bodies[$0] == Array("request \($0)".utf8) }, "each caller gets its own response")
        await fixture.done()
    }

    @Test func slowRequestsRunConcurrently() async throws {
        let fixture = try await Fixture()
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Int.self) { group in
            // A second each, so they overlap even when a loaded machine starts the tasks slowly.
            for _ in 0..<20 {
                group.addTask { try await fixture.client.execute(CurlHTTPRequest(url: fixture.url("/delay?ms=1000"))).status }
            }
            for try await status in group { #expect(status == 200) }
        }
        let elapsed = ContinuousClock.now - start
        // One after another would take 20 s.
        #expect(elapsed < .seconds(8), "20 × 1 s took \(elapsed)")
        #expect(fixture.server.stats.maxInFlight >= 15)
        await fixture.done()
    }

    @Test func requestsBeyondTheLimitWaitInAQueue() async throws {
        let fixture = try await Fixture { $0.maxConcurrentRequests = 2 }
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<6 {
                group.addTask { try await fixture.client.execute(CurlHTTPRequest(url: fixture.url("/delay?ms=150"))).status }
            }
            for try await status in group { #expect(status == 200) }
        }
        let elapsed = ContinuousClock.now - start
        #expect(fixture.server.stats.maxInFlight == 2)
        #expect(elapsed >= .milliseconds(440), "three waves of two: \(elapsed)")
        await fixture.done()
    }

    @Test func aQueuedRequestTimesOutOnItsOwnBudget() async throws {
        let fixture = try await Fixture { $0.maxConcurrentRequests = 1 }
        let blocker = Task { try await fixture.client.execute(CurlHTTPRequest(url: fixture.url("/delay?ms=1000"))) }
        try await Task.sleep(for: .milliseconds(100))
        let start = ContinuousClock.now
        let error = await failure { try await fixture.client.execute(CurlHTTPRequest(url: fixture.url("/echo"), timeout: .milliseconds(200))) }
        #expect(error?.kind == .timeout)
        #expect(error?.message.contains("slot") == true)
        let elapsed = ContinuousClock.now - start
        #expect(elapsed >= .milliseconds(180) && elapsed < .milliseconds(700), "queued timeout fired after \(elapsed)")
        #expect(try await blocker.value.status == 200)
        await fixture.done()
    }

    @Test func perRequestTimeoutHasMillisecondPrecision() async throws {
        let fixture = try await Fixture()
        let start = ContinuousClock.now
        let error = await failure { try await fixture.client.execute(CurlHTTPRequest(url: fixture.url("/delay?ms=5000"), timeout: .milliseconds(300))) }
        #expect(error?.kind == .timeout)
        #expect(error?.message.contains("GET \(fixture.url("/delay")):") == true, "\(String(describing: error))")
        let elapsed = ContinuousClock.now - start
        #expect(elapsed >= .milliseconds(280) && elapsed < .milliseconds(900), "a 300 ms timeout fired after \(elapsed)")
        // The client default applies when the request has none.
        let short = try CurlHTTPClient(
            configuration: {
                var c = CurlHTTPClient.Configuration(); c.requestTimeout = .milliseconds(250); return c
            }())
        #expect(await failure { try await short.execute(CurlHTTPRequest(url: fixture.url("/delay?ms=5000"))) }?.kind == .timeout)
        await short.shutdown()
        await fixture.done()
    }

    @Test func refusedConnectionsFailAsConnectFailedWithoutSecretsInTheMessage() async throws {
        let client = try CurlHTTPClient()
        let port = try await LoopbackHTTPServer.refusedPort()
        let error = await failure {
            try await client.execute(
                CurlHTTPRequest(
                    url: "http://user:hunter2@127.0.0.1:\(port)/calendars/primary?access_token=s3cret#frag",
                    headers: [CurlHTTPHeader("Authorization", "Bearer t0ken")]
                ))
        }
        #expect(error?.kind == .connectFailed)
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains("GET http://127.0.0.1:\(port)/calendars/primary:"), "\(text)")
        for secret in ["s3cret", "hunter2", "t0ken", "frag", "user"] {
            #expect(!text.contains(secret), "\(text)")
        }
        await client.shutdown()
    }

    @Test func oversizedResponsesFailWhetherAnnouncedOrStreamed() async throws {
        let fixture = try await Fixture { $0.maxResponseBodyBytes = 10_000 }
        let exact = try await fixture.client.execute(CurlHTTPRequest(url: fixture.url("/bytes?n=10000")))
        #expect(exact.body.count == 10_000)
        let exactChunked = try await fixture.client.execute(CurlHTTPRequest(url: fixture.url("/bytes?n=10000&chunked=1")))
        #expect(exactChunked.body == (0..<10_000).map { UInt8(truncatingIfNeeded: $0) })
        // Content-Length over the limit, and a chunked body that crosses it mid-stream (the write callback aborts).
        for path in ["/bytes?n=10001", "/bytes?n=200000&chunked=1"] {
            let error = await failure { try await fixture.client.execute(CurlHTTPRequest(url: fixture.url(path))) }
            #expect(error?.kind == .responseTooLarge, "\(path)")
            #expect(error?.message.contains("10000") == true)
        }
        // HEAD announces a size but carries no body, so the limit does not apply.
        let head = try await fixture.client.execute(CurlHTTPRequest(method: "HEAD", url: fixture.url("/bytes?n=20000")))
        #expect(head.status == 200)
        #expect(head.header("content-length") == "20000")
        // The pooled handle is clean afterwards.
        let after = try await fixture.client.execute(CurlHTTPRequest(url: fixture.url("/bytes?n=5")))
        #expect(after.body == [0, 1, 2, 3, 4])
        await fixture.done()
    }

    @Test func sequentialRequestsReuseOneConnection() async throws {
        let fixture = try await Fixture()
        for index in 0..<20 {
            switch index % 4 {
            case 0: #expect(try await fixture.echo("GET").0.status == 200)
            case 1: #expect(try await fixture.echo("POST", body: Array(repeating: 7, count: index * 100)).1.body.count == index * 100)
            case 2: #expect(try await fixture.client.execute(CurlHTTPRequest(url: fixture.url("/status/404"))).status == 404)
            default: #expect(try await fixture.client.execute(CurlHTTPRequest(method: "PATCH", url: fixture.url("/echo"), body: [1])).status == 200)
            }
        }
        #expect(fixture.server.stats.connections == 1, "20 sequential requests should share one connection")
        #expect(fixture.server.stats.requests == 20)
        await fixture.done()
    }

    @Test func cancellationStopsASlowRequestPromptly() async throws {
        let fixture = try await Fixture()
        let task = Task { try await fixture.client.execute(CurlHTTPRequest(url: fixture.url("/delay?ms=10000"))) }
        try await Task.sleep(for: .milliseconds(200))
        let start = ContinuousClock.now
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(ContinuousClock.now - start < .milliseconds(500))
        // The client carries on.
        #expect(try await fixture.echo("GET").0.status == 200)
        await fixture.done()
    }

    @Test func cancellationBeforeStartAndWhileQueued() async throws {
        let fixture = try await Fixture { $0.maxConcurrentRequests = 1 }
        // Already cancelled when execute runs: never reaches the server.
        let early = Task {
            while !Task.isCancelled { await Task.yield() }
            return try await fixture.client.execute(CurlHTTPRequest(url: fixture.url("/echo")))
        }
        early.cancel()
        await #expect(throws: CancellationError.self) { try await early.value }
        #expect(fixture.server.stats.requests == 0)

        // Waiting behind the only slot.
        let blocker = Task { try await fixture.client.execute(CurlHTTPRequest(url: fixture.url("/delay?ms=600"))) }
        try await Task.sleep(for: .milliseconds(100))
        let queued = Task { try await fixture.client.execute(CurlHTTPRequest(url: fixture.url("/echo"))) }
        try await Task.sleep(for: .milliseconds(100))
        let start = ContinuousClock.now
        queued.cancel()
        await #expect(throws: CancellationError.self) { try await queued.value }
        #expect(ContinuousClock.now - start < .milliseconds(300))
        #expect(try await blocker.value.status == 200)
        #expect(fixture.server.stats.requests == 1, "the cancelled queued request was never sent")
        await fixture.done()
    }

    @Test func shutdownFailsInFlightAndLaterRequests() async throws {
        let fixture = try await Fixture()
        let inFlight = Task { try await fixture.client.execute(CurlHTTPRequest(url: fixture.url("/delay?ms=10000"))) }
        try await Task.sleep(for: .milliseconds(200))
        let start = ContinuousClock.now
        await fixture.client.shutdown()
        #expect(ContinuousClock.now - start < .milliseconds(500))
        #expect(await failure { try await inFlight.value }?.kind == .shutDown)
        #expect(await failure { try await fixture.echo("GET") }?.kind == .shutDown)
        await fixture.client.shutdown()  // a second call returns at once
        await fixture.server.close()
    }

    @Test func invalidURLsAndRequestsAreRejected() async throws {
        let fixture = try await Fixture()
        for url in ["ftp://127.0.0.1/file", "file:///etc/passwd", "not a url", "/relative", "http://exa mple.com/", "http://127.0.0.1:99999/", "http://[::1/"] {
            let error = await failure { try await fixture.client.execute(CurlHTTPRequest(url: url)) }
            #expect(error?.kind == .invalidURL, "\(url): \(String(describing: error))")
        }
        #expect(await failure { try await fixture.client.execute(CurlHTTPRequest(url: "http://127.0.0.1/\u{0}x")) }?.kind == .invalidURL)
        // Header injection and malformed names or methods never reach the wire; the value is not echoed back.
        for request in [
            CurlHTTPRequest(url: fixture.url("/echo"), headers: [CurlHTTPHeader("X-A", "v\r\nX-Injected: secret")]),
            CurlHTTPRequest(url: fixture.url("/echo"), headers: [CurlHTTPHeader("Bad Name", "v")]),
            CurlHTTPRequest(url: fixture.url("/echo"), headers: [CurlHTTPHeader("", "v")]),
            CurlHTTPRequest(method: "GET /x", url: fixture.url("/echo")),
            CurlHTTPRequest(method: "", url: fixture.url("/echo")),
        ] {
            let error = await failure { try await fixture.client.execute(request) }
            #expect(error?.kind == .invalidRequest)
            #expect(error?.message.contains("secret") == false)
        }
        #expect(fixture.server.stats.requests == 0)
        await fixture.done()
    }

    @Test func aServerThatClosesWithoutAnsweringIsAnError() async throws {
        let fixture = try await Fixture()
        let error = await failure { try await fixture.client.execute(CurlHTTPRequest(url: fixture.url("/close"))) }
        #expect(error?.kind == .other)
        #expect(error?.message.contains("GET \(fixture.url("/close")):") == true, "\(String(describing: error))")
        #expect(try await fixture.echo("GET").0.status == 200)
        await fixture.done()
    }

    /// Runs `body` expecting a `CurlHTTPError`, and returns it for closer checks.
    func failure<T>(sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> T) async -> CurlHTTPError? {
        await #expect(throws: CurlHTTPError.self, sourceLocation: sourceLocation) { _ = try await body() }
    }

    @Test func reportsTheLibcurlInUse() {
        #expect(CurlHTTPClient.libcurlVersion.hasPrefix("libcurl/"))
        _ = CurlHTTPClient.supportsHTTP2
    }
}
