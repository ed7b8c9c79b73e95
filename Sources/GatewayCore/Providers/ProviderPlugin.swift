import Foundation

/// Everything the gateway knows about one provider, handed to the HTTP layer, the sync services and the console by
/// one assembly: nothing outside the provider's own module names its types.
///
/// The definition part (`provider`, `webhooks`, `connectShape`, `accountIntegrationFields`, `pollInterval`,
/// `takesPushOut`) is the same in every process, so route files and the OpenAPI document follow it even where the
/// provider is not configured; the configured part (`connector`, `syncer`, `maintainer`, `pusher`) is nil then, and
/// the API answers 503 for it.
public struct ProviderPlugin: Sendable {
    /// The provider.
    public var provider: Provider
    /// Its webhook verifiers (none for a polled provider).
    public var webhooks: [any WebhookVerifying]
    /// What `POST /api/v1/connections` and `…/reconnect` take for it; nil when it cannot be connected through the API.
    public var connectShape: ConnectShape?
    /// The `PUT /api/v1/accounts/{account}/<provider>` fields when its connections build on an account-level
    /// integration (Redtail's main integration); empty when they do not.
    public var accountIntegrationFields: [String]
    /// Connects, reconnects, disconnects accounts and chooses calendars; nil when not configured.
    public var connector: (any ConnectionManaging)?
    /// Turns inbox rows into calendars and runs delta syncs; nil when not configured.
    public var syncer: (any ProviderSyncing)?
    /// Keeps channels or subscriptions alive (create, renew, stop); nil for a polled provider.
    public var maintainer: (any SubscriptionMaintaining)?
    /// Pushes LeadCenter appointments out ("Add to calendar"); nil when the provider takes none.
    public var pusher: (any AppointmentPushing)?
    /// For a provider without push: how often its calendars are polled (seconds); nil for a pushed provider
    /// (whose calendars the reconciliation sweep checks for what push missed).
    public var pollInterval: TimeInterval?
    /// Whether one of its calendars can be the user's "Add to calendar" target.
    public var takesPushOut: Bool
    /// How a user signs in to connect an account (OAuth authorization code with PKCE); nil when the provider has no
    /// sign-in or its client is not configured (`POST /api/v1/connections/authorizations` then answers 503).
    public var signIn: OAuthSignIn?

    /// Creates a plugin.
    public init(
        provider: Provider, webhooks: [any WebhookVerifying] = [], connectShape: ConnectShape? = nil, accountIntegrationFields: [String] = [],
        connector: (any ConnectionManaging)? = nil,
        syncer: (any ProviderSyncing)? = nil, maintainer: (any SubscriptionMaintaining)? = nil, pusher: (any AppointmentPushing)? = nil,
        pollInterval: TimeInterval? = nil, takesPushOut: Bool = false, signIn: OAuthSignIn? = nil
    ) {
        self.signIn = signIn
        self.provider = provider
        self.webhooks = webhooks
        self.connectShape = connectShape
        self.accountIntegrationFields = accountIntegrationFields
        self.connector = connector
        self.syncer = syncer
        self.maintainer = maintainer
        self.pusher = pusher
        self.pollInterval = pollInterval
        self.takesPushOut = takesPushOut
    }
}
