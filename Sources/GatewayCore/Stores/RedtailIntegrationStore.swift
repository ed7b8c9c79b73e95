import Foundation

/// Where main Redtail integrations are kept.
public protocol RedtailIntegrationStore: Sendable {
    /// Inserts or replaces an account's integration.
    func saveRedtailIntegration(_ integration: RedtailIntegration) async throws
    /// An account's integration.
    func redtailIntegration(accountID: String) async throws -> RedtailIntegration?
    /// Removes it; false when there was none.
    func deleteRedtailIntegration(accountID: String) async throws -> Bool
}
