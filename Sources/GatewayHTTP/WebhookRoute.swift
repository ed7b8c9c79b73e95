import GatewayCore

/// A route-file entry that `WebhookAckHandler` serves on the event loop: a provider webhook with its own verifier.
public struct WebhookRoute: Sendable, Hashable {
    /// Which provider check and decoder apply.
    public enum Kind: Sendable, Hashable {
        /// `webhook.google` with `google_channel`.
        case google
        /// `webhook.microsoft` with `graph_client_state`.
        case graph
        /// `webhook.microsoft.lifecycle` with `graph_client_state`.
        case graphLifecycle
    }

    /// Provider check and decoder.
    public var kind: Kind
    /// Exact request path.
    public var path: String
    /// Handler key (metric label).
    public var handlerKey: String
    /// Verifier key (metric label).
    public var verifierKey: String
    /// Largest body accepted.
    public var bodyLimit: Int

    /// The webhook routes of a validated table, by path. Entries that pair a webhook handler with another verifier,
    /// or use other methods, stay with the router.
    public static func routes(in table: RouteTable, catalog: RouteCatalog) -> [String: WebhookRoute] {
        var routes: [String: WebhookRoute] = [:]
        for entry in table.entries where entry.method == "POST" && !entry.path.contains("{") {
            let kind: Kind
            switch (entry.handler, entry.verifier) {
            case ("webhook.google", WebhookIntake.googleVerifierKey): kind = .google
            case ("webhook.microsoft", WebhookIntake.graphVerifierKey): kind = .graph
            case ("webhook.microsoft.lifecycle", WebhookIntake.graphVerifierKey): kind = .graphLifecycle
            default: continue
            }
            routes[entry.path] = WebhookRoute(
                kind: kind, path: entry.path, handlerKey: entry.handler, verifierKey: entry.verifier,
                bodyLimit: table.bodyLimit(for: entry, catalog: catalog)
            )
        }
        return routes
    }
}
