import Foundation
import Testing
@testable import GatewayCore

@Suite("Health evaluation and constant-time comparison")
struct HealthAndSecretsTests {
    let evaluator = HealthEvaluator(
        thresholds: {
            var t = GatewayConfiguration.HealthThresholds()
            t.certificateWarningDays = 14
            t.inboxBacklogDegraded = 10
            t.inboxBacklogFailing = 100
            return t
        }())
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func certificateStatusFollowsDaysToExpiry() {
        #expect(evaluator.certificate(notAfter: now.addingTimeInterval(30 * 86_400), now: now).status == .ok)
        #expect(evaluator.certificate(notAfter: now.addingTimeInterval(3 * 86_400), now: now).status == .degraded)
        #expect(evaluator.certificate(notAfter: now.addingTimeInterval(-1), now: now).status == .failing)
        #expect(evaluator.certificate(notAfter: now.addingTimeInterval(30 * 86_400), now: now).details["days_to_expiry"] == .integer(30))
    }

    @Test func inboxStatusFollowsBacklog() {
        #expect(evaluator.inbox(backlog: InboxBacklog(count: 0, oldestReceivedAt: nil), error: nil, now: now).status == .ok)
        #expect(evaluator.inbox(backlog: InboxBacklog(count: 11, oldestReceivedAt: now), error: nil, now: now).status == .degraded)
        #expect(evaluator.inbox(backlog: InboxBacklog(count: 101, oldestReceivedAt: now), error: nil, now: now).status == .failing)
        #expect(evaluator.inbox(backlog: nil, error: "db gone", now: now).status == .failing)
        let aged = evaluator.inbox(backlog: InboxBacklog(count: 1, oldestReceivedAt: now.addingTimeInterval(-42)), error: nil, now: now)
        #expect(aged.details["oldest_age_s"] == .integer(42))
    }

    @Test func reportTakesTheWorstCheck() {
        let ok = HealthCheck(name: "a", status: .ok)
        let degraded = HealthCheck(name: "b", status: .degraded)
        let failing = HealthCheck(name: "c", status: .failing)
        #expect(HealthReport(checks: []).status == .ok)
        #expect(HealthReport(checks: [ok, degraded]).status == .degraded)
        #expect(HealthReport(checks: [degraded, failing, ok]).status == .failing)
        #expect(evaluator.database(writeProbeError: "disk I/O error", schemaVersion: nil).status == .failing)
        #expect(evaluator.database(writeProbeError: nil, schemaVersion: 2).status == .ok)
    }

    @Test func constantTimeEquality() {
        #expect(ConstantTime.equals("secret-token", "secret-token"))
        #expect(!ConstantTime.equals("secret-token", "secret-tokeN"))
        #expect(!ConstantTime.equals("secret-token", "secret-token-longer"))
        #expect(!ConstantTime.equals("", "x"))
        #expect(ConstantTime.equals("", ""))
    }

    @Test func jsonValueKeepsKindsAndSerializesSorted() throws {
        let value = try JSONValue.parse(Data(#"{"b": true, "a": 1, "c": 1.5, "d": null, "e": ["x"]}"#.utf8))
        #expect(value == .object(["a": .integer(1), "b": .bool(true), "c": .number(1.5), "d": .null, "e": .array([.string("x")])]))
        #expect(String(decoding: value.serialized(), as: UTF8.self) == #"{"a":1,"b":true,"c":1.5,"d":null,"e":["x"]}"#)
    }
}
