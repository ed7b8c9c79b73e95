import Foundation
import ProviderSimulators

/// The accounts and calendars of a generated fleet: Google, Microsoft and Redtail accounts in the ratio
/// 300 : 200 : 50 of 1,000 calendars, one calendar per Redtail advisor, the other calendars spread round-robin over
/// the Google and Microsoft accounts 3 : 2. Pure and deterministic (the same count gives the same fleet).
struct FleetPlan: Sendable, Hashable {
    /// One Google or Microsoft account: its refresh token and its calendars' ids at the provider.
    struct Account: Sendable, Hashable {
        var index: Int
        var refreshToken: String
        var calendars: [String]
    }

    var google: [Account] = []
    var graph: [Account] = []
    /// Redtail advisors (one calendar each).
    var redtail: [String] = []

    /// The fleet for `calendars` calendars (at least 3: one per provider).
    init(calendars: Int) {
        precondition(calendars >= 3, "a fleet needs a calendar per provider")
        let scale = Double(calendars) / 1_000
        let redtailAccounts = min(max(1, Int((50 * scale).rounded())), calendars - 2)
        let remaining = calendars - redtailAccounts
        let googleCalendars = min(max(1, Int((Double(remaining) * 3 / 5).rounded())), remaining - 1)
        let graphCalendars = remaining - googleCalendars
        let googleAccounts = min(max(1, Int((300 * scale).rounded())), googleCalendars)
        let graphAccounts = min(max(1, Int((200 * scale).rounded())), graphCalendars)
        google = (0..<googleAccounts).map { Account(index: $0, refreshToken: "1//fleet-google-\($0)", calendars: []) }
        for calendar in 0..<googleCalendars {
            let account = calendar % googleAccounts
            google[account].calendars.append("g\(account)-c\(google[account].calendars.count)")
        }
        graph = (0..<graphAccounts).map { Account(index: $0, refreshToken: "0.AAAA-fleet-\($0)", calendars: []) }
        for calendar in 0..<graphCalendars {
            let account = calendar % graphAccounts
            graph[account].calendars.append("AAMkFleet\(account)C\(graph[account].calendars.count)=")
        }
        redtail = (0..<redtailAccounts).map { "advisor-\($0)" }
    }

    /// Calendars in the plan.
    var calendarCount: Int { google.map(\.calendars.count).reduce(0, +) + graph.map(\.calendars.count).reduce(0, +) + redtail.count }

    /// The Redtail user of advisor `username` (the simulator's account and what the gateway connects with).
    static func redtailUser(_ username: String, index: Int) -> RedtailSimulator.User {
        RedtailSimulator.User(
            apiKey: "fleet-partner", username: username, password: "pw-\(index)", userKey: "UK-FLEET-\(index)", id: 20_000 + index
        )
    }
}
