import GatewayCore

extension OAuthSignIn {
    /// Microsoft sign-in (Entra ID v2) from the gateway's settings, or nil when no client is configured:
    /// `Calendars.ReadWrite offline_access` (a refresh token comes only with `offline_access`), the code returned in
    /// the query. Graph reports granted scopes with its resource prefix, which the check removes.
    public static func microsoft(_ configuration: GatewayConfiguration) -> OAuthSignIn? {
        let settings = configuration.microsoft
        guard let clientID = settings.clientID, let clientSecret = settings.clientSecret else { return nil }
        return OAuthSignIn(
            provider: .microsoft, clientID: clientID, clientSecret: clientSecret, authorizeURL: settings.authorizeURL, tokenURL: settings.tokenURL,
            redirectURI: redirectURI(publicURL: configuration.effectivePublicURL, provider: .microsoft), scopes: settings.scopes,
            extraParameters: ["response_mode": "query"], requiredScopes: [["Calendars.ReadWrite"]],
            grantedScopePrefix: "https://graph.microsoft.com/"
        )
    }
}
