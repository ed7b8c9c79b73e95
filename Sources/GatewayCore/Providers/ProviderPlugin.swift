import CalgateMacros
import Foundation

/// Everything the gateway knows about one provider, handed to the HTTP layer, the sync services and the console by
/// one assembly: nothing outside the provider's own module names its types.
///
/// The definition part (`provider`, `webhooks`, `connectShape`, `accountIntegrationFields`, `pollInterval`,
/// `takesPushOut`) is the same in every process, so route files and the OpenAPI document follow it even where the
/// provider is not configured; the configured part (`connector`, `syncer`, `maintainer`, `pusher`) is nil then, and
/// the API answers 503 for it.
@MemberwiseInit
public struct ProviderPlugin: Sendable {
    /// The provider.
    public var provider: Provider
    /// Its webhook verifiers (none for a polled provider).
    public var webhooks: [any WebhookVerifying] = []
    /// What `POST /api/v1/connections` and `…/reconnect` take for it; nil when it cannot be connected through the API.
    public var connectShape: ConnectShape? = nil
    /// The `PUT /api/v1/accounts/{account}/<provider>` fields when its connections build on an account-level
    /// integration (Redtail's main integration); empty when they do not.
    public var accountIntegrationFields: [String] = []
    /// Connects, reconnects, disconnects accounts and chooses calendars; nil when not configured.
    public var connector: (any ConnectionManaging)? = nil
    /// Turns inbox rows into calendars and runs delta syncs; nil when not configured.
    public var syncer: (any ProviderSyncing)? = nil
    /// Keeps channels or subscriptions alive (create, renew, stop); nil for a polled provider.
    public var maintainer: (any SubscriptionMaintaining)? = nil
    /// Pushes LeadCenter appointments out ("Add to calendar"); nil when the provider takes none.
    public var pusher: (any AppointmentPushing)? = nil
    /// For a provider without push: how often its calendars are polled (seconds); nil for a pushed provider
    /// (whose calendars the reconciliation sweep checks for what push missed).
    public var pollInterval: TimeInterval? = nil
    /// Whether one of its calendars can be the user's "Add to calendar" target.
    public var takesPushOut: Bool = false
    /// How a user signs in to connect an account (OAuth authorization code with PKCE); nil when the provider has no
    /// sign-in or its client is not configured (`POST /api/v1/connections/authorizations` then answers 503).
    public var signIn: OAuthSignIn? = nil
}
