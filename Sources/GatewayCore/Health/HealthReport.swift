import CalgateMacros
import Foundation

/// Overall or per-check health, ordered from best to worst.
public enum HealthStatus: String, Sendable, Hashable, Comparable, Codable {
    /// Working as intended.
    case ok
    /// Working, but an operator should look (certificate expiring soon, backlog growing).
    case degraded
    /// Not doing its job (database not writable, certificate expired).
    case failing

    private var rank: Int {
        switch self {
        case .ok: return 0
        case .degraded: return 1
        case .failing: return 2
        }
    }

    /// Worse compares greater.
    public static func < (lhs: HealthStatus, rhs: HealthStatus) -> Bool { lhs.rank < rhs.rank }
}

/// One named check with its status and the figures behind it.
@MemberwiseInit
public struct HealthCheck: Sendable, Hashable {
    /// Check name, a key of the `checks` object.
    public var name: String
    /// Its status.
    public var status: HealthStatus
    /// Figures shown to operators (never secrets).
    public var details: [String: JSONValue] = [:]
}

/// The whole health answer: the worst status of all checks, and the checks.
public struct HealthReport: Sendable, Hashable {
    /// Worst status among checks (`ok` when there are none).
    public var status: HealthStatus { checks.map(\.status).max() ?? .ok }
    /// Individual checks.
    public var checks: [HealthCheck]

    /// Creates a report.
    public init(checks: [HealthCheck]) { self.checks = checks }
}

/// Turns raw observations into health checks; pure, so thresholds are tested without a server.
public struct HealthEvaluator: Sendable {
    /// Thresholds in force.
    public var thresholds: GatewayConfiguration.HealthThresholds

    /// Creates an evaluator.
    public init(thresholds: GatewayConfiguration.HealthThresholds) { self.thresholds = thresholds }

    /// Database check: failing when the write probe failed.
    public func database(writeProbeError: String?, schemaVersion: Int?) -> HealthCheck {
        var details: [String: JSONValue] = ["writable": .bool(writeProbeError == nil)]
        if let schemaVersion { details["schema_version"] = .integer(Int64(schemaVersion)) }
        if let writeProbeError { details["error"] = .string(writeProbeError) }
        return HealthCheck(name: "database", status: writeProbeError == nil ? .ok : .failing, details: details)
    }

    /// Certificate check: failing once expired, degraded within the warning window.
    public func certificate(notAfter: Date, now: Date) -> HealthCheck {
        let seconds = notAfter.timeIntervalSince(now)
        let days = Int((seconds / 86_400).rounded(.down))
        let status: HealthStatus
        if seconds <= 0 {
            status = .failing
        } else if days < thresholds.certificateWarningDays {
            status = .degraded
        } else {
            status = .ok
        }
        return HealthCheck(
            name: "certificate", status: status,
            details: [
                "days_to_expiry": .integer(Int64(days)),
                "not_after": .string(ISO8601DateFormatter().string(from: notAfter)),
            ]
        )
    }

    /// Inbox check: degraded or failing when too many notifications wait.
    public func inbox(backlog: InboxBacklog?, error: String?, now: Date) -> HealthCheck {
        guard let backlog else {
            return HealthCheck(name: "inbox", status: .failing, details: ["error": .string(error ?? "backlog unavailable")])
        }
        let status: HealthStatus
        if backlog.count > thresholds.inboxBacklogFailing {
            status = .failing
        } else if backlog.count > thresholds.inboxBacklogDegraded {
            status = .degraded
        } else {
            status = .ok
        }
        var details: [String: JSONValue] = ["backlog": .integer(Int64(backlog.count))]
        details["oldest_age_s"] = backlog.oldestReceivedAt.map { .integer(Int64(max(0, now.timeIntervalSince($0)))) } ?? .null
        return HealthCheck(name: "inbox", status: status, details: details)
    }
}
