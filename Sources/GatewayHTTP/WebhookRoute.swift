import GatewayCore

/// A route-file entry that `WebhookAckHandler` serves on the event loop: a provider webhook with its own verifier.
public struct WebhookRoute: Sendable {
    /// The provider's check for this route.
    public var verifier: any WebhookVerifying
    /// Exact request path.
    public var path: String
    /// Handler key (metric label).
    public var handlerKey: String
    /// Verifier key (metric label): the route entry names its verifier by this key.
    public var verifierKey: String { verifier.key }
    /// Largest body accepted.
    public var bodyLimit: Int

    /// The webhook routes of a validated table, by path: entries whose handler belongs to the verifier they name.
    /// Entries that pair a webhook handler with another verifier, or use other methods, stay with the router.
    public static func routes(in table: RouteTable, catalog: RouteCatalog, verifiers: [any WebhookVerifying]) -> [String: WebhookRoute] {
        var routes: [String: WebhookRoute] = [:]
        for entry in table.entries where entry.method == "POST" && !entry.path.contains("{") {
            guard let verifier = verifiers.first(where: { $0.key == entry.verifier && $0.handlers.contains { $0.key == entry.handler } }) else {
                continue
            }
            routes[entry.path] = WebhookRoute(
                verifier: verifier, path: entry.path, handlerKey: entry.handler,
                bodyLimit: table.bodyLimit(for: entry, catalog: catalog)
            )
        }
        return routes
    }
}
