import CurlHTTP
import Foundation
import GatewayCore
import GoogleCalendar
import MicrosoftGraph
import Redtail

/// The three providers this build ships, configured from the gateway's settings: the one place that names their
/// modules' types, for `serve`, `demo`, the simulated month, the benchmarks and the tests.
public struct BuiltInProviders: Sendable {
    /// Google Calendar.
    public let google: GoogleConnectionSyncer
    /// Microsoft 365 through Graph.
    public let microsoft: GraphConnectionSyncer
    /// Redtail CRM.
    public let redtail: RedtailConnector

    /// Builds each provider's client and syncer over `store` from `configuration`.
    public init(
        configuration: GatewayConfiguration, http: CurlHTTPClient, store: any GatewayStore, sealer: any SecretSealer,
        clock: any GatewayClock = SystemGatewayClock(), progress: SyncProgressBoard?
    ) {
        redtailPollInterval = TimeInterval(configuration.redtail.pollIntervalSeconds)
        googleSignIn = .google(configuration)
        microsoftSignIn = .microsoft(configuration)
        let renewal = RenewalPolicy(minimumLead: TimeInterval(configuration.maintenance.renewalMinimumLeadSeconds))
        google = GoogleConnectionSyncer(
            client: GoogleCalendarClient(
                http: http, endpoints: GoogleEndpoints(tokenURL: configuration.google.tokenURL, apiBaseURL: configuration.google.apiBaseURL)
            ),
            store: store, sealer: sealer, clock: clock, webhookAddress: configuration.effectivePublicURL + "/webhooks/google",
            renewal: renewal, progress: progress
        )
        microsoft = GraphConnectionSyncer(
            client: GraphClient(
                http: http, endpoints: GraphEndpoints(tokenURL: configuration.microsoft.tokenURL, apiBaseURL: configuration.microsoft.apiBaseURL)
            ),
            store: store, sealer: sealer, clock: clock, publicURL: configuration.effectivePublicURL, renewal: renewal, progress: progress
        )
        redtail = RedtailConnector(
            client: RedtailClient(
                http: http,
                endpoints: RedtailEndpoints(
                    baseURL: configuration.redtail.baseURL, authScheme: RedtailAuthScheme(rawValue: configuration.redtail.authScheme) ?? .userKeyAuth
                )),
            store: store, sealer: sealer, clock: clock
        )
    }

    /// How often Redtail is polled.
    public let redtailPollInterval: TimeInterval
    /// Google sign-in, when its client is configured.
    public let googleSignIn: OAuthSignIn?
    /// Microsoft sign-in, when its client is configured.
    public let microsoftSignIn: OAuthSignIn?

    /// Their plugins, in the order the console lists them.
    public var plugins: [ProviderPlugin] {
        [
            .google(google, signIn: googleSignIn), .microsoft(microsoft, signIn: microsoftSignIn),
            .redtail(redtail, pollInterval: redtailPollInterval),
        ]
    }

    /// The plugins without connectors: what route files are validated against where nothing is configured
    /// (`calgate routes check`).
    public static var definitions: [ProviderPlugin] { [.google(nil), .microsoft(nil), .redtail(nil)] }
}
