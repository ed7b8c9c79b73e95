import Foundation
import TestSupport
import Testing

/// Sign-in in a real browser: headless Chromium opens the consent URL, clicks Allow or Deny on the simulator's page
/// (a real mouse event, driven over the DevTools protocol by scripts/chromium_click.py), follows the redirect to the
/// gateway's callback over TLS, and the API then shows the result.
@Suite("sign-in in headless Chromium", .serialized)
struct SignInBrowserTests {
    static let driver = CalgateProcess.repositoryRoot.appendingPathComponent("scripts/chromium_click.py").path

    /// Opens `url`, clicks `selector`, waits for a URL containing `until`; the final page's URL and text.
    func click(_ url: String, _ selector: String, until: String) async throws -> (url: String, text: String) {
        let run = try await ChildProcess.run(
            "/usr/bin/python3",
            [Self.driver, "--chromium", try #require(chromiumPath), "--url", url, "--click", selector, "--until", until, "--timeout", "90"],
            timeout: .seconds(120))
        let result = try #require(try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any], "\(run.output)")
        #expect(run.status == 0 && result["status"] as? String == "ok", "\(run.output)")
        return (result["url"] as? String ?? "", result["text"] as? String ?? "")
    }

    func api(_ demo: ConsoleBrowserTests.Demo, _ path: String, _ arguments: [String] = []) async throws -> [String: Any] {
        let response = try await curlRequest(
            demo.base + path, caFile: demo.ca, arguments: ["-H", "Authorization: Bearer \(try demo.token("api-token"))"] + arguments)
        return (try? JSONSerialization.jsonObject(with: Data(response.body.utf8))) as? [String: Any] ?? [:]
    }

    /// Starts a sign-in through the API: its id and consent URL.
    func begin(_ demo: ConsoleBrowserTests.Demo, user: String, provider: String) async throws -> (id: String, url: String) {
        let created = try await api(
            demo, "/api/v1/connections/authorizations",
            ["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", #"{"user_id":"\#(user)","provider":"\#(provider)"}"#])
        return (try #require(created["id"] as? String, "\(created)"), try #require(created["authorization_url"] as? String))
    }

    func connections(_ demo: ConsoleBrowserTests.Demo, user: String) async throws -> [[String: Any]] {
        try await api(demo, "/api/v1/connections?user=\(user)")["connections"] as? [[String: Any]] ?? []
    }

    @Test(.enabled(if: chromiumPath != nil, "chromium is not installed: run scripts/install-deps chromium"), .timeLimit(.minutes(3)))
    func approvingTheDemosSignInURLEndsWithASyncedConnection() async throws {
        let demo = try await ConsoleBrowserTests().startDemo()
        defer {
            demo.process.signal(SIGKILL)
            try? FileManager.default.removeItem(atPath: demo.directory)
        }
        // The URL the demo printed for a person to open.
        let line = try await demo.process.waitForLine(containing: "Google sign-in:")
        let url = try #require(line.split(separator: " ").last.map(String.init))
        #expect(url.contains("/o/oauth2/v2/auth?") && url.contains("code_challenge_method=S256"), "\(line)")
        let page = try await click(url, "#approve", until: "/oauth/google/callback")
        #expect(page.text.contains("connected"), "\(page.text)")
        let made = try await connections(demo, user: "demo-user-2")
        #expect(made.count == 1 && made.first?["provider"] as? String == "google" && made.first?["state"] as? String == "active", "\(made)")
        let appointments = try await api(demo, "/api/v1/appointments?user=demo-user-2")["appointments"] as? [[String: Any]] ?? []
        #expect(!appointments.isEmpty, "the new account's calendar was fully synced")
        demo.process.signal(SIGTERM)
        #expect(await demo.process.waitForExit() == 0)
    }

    @Test(.enabled(if: chromiumPath != nil, "chromium is not installed: run scripts/install-deps chromium"), .timeLimit(.minutes(3)))
    func denyingFailsTheSignInAndAllowingConnectsMicrosoft() async throws {
        let demo = try await ConsoleBrowserTests().startDemo()
        defer {
            demo.process.signal(SIGKILL)
            try? FileManager.default.removeItem(atPath: demo.directory)
        }
        let denied = try await begin(demo, user: "browser-user", provider: "microsoft")
        let refusal = try await click(denied.url, "#deny", until: "/oauth/microsoft/callback")
        #expect(refusal.text.contains("declined"), "\(refusal.text)")
        let failed = try await api(demo, "/api/v1/connections/authorizations/\(denied.id)")
        #expect(failed["status"] as? String == "failed" && failed["reason"] as? String == "access_denied", "\(failed)")
        #expect(try await connections(demo, user: "browser-user").isEmpty, "a denied consent changes nothing")

        let allowed = try await begin(demo, user: "browser-user", provider: "microsoft")
        let page = try await click(allowed.url, "#approve", until: "/oauth/microsoft/callback")
        #expect(page.text.contains("connected"), "\(page.text)")
        let done = try await api(demo, "/api/v1/connections/authorizations/\(allowed.id)")
        let connection = try #require(done["connection"] as? [String: Any], "\(done)")
        #expect(done["status"] as? String == "connected" && connection["provider"] as? String == "microsoft" && connection["state"] as? String == "active")
        demo.process.signal(SIGTERM)
        #expect(await demo.process.waitForExit() == 0)
    }
}
