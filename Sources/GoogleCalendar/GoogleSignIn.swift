import GatewayCore

extension OAuthSignIn {
    /// Google sign-in from the gateway's settings, or nil when no client is configured: offline access with a
    /// forced consent (so Google returns a refresh token every time), events read/write (sync, channels, push-out)
    /// and the calendar list.
    public static func google(_ configuration: GatewayConfiguration) -> OAuthSignIn? {
        let settings = configuration.google
        guard let clientID = settings.clientID, let clientSecret = settings.clientSecret else { return nil }
        let auth = "https://www.googleapis.com/auth/"
        return OAuthSignIn(
            provider: .google, clientID: clientID, clientSecret: clientSecret, authorizeURL: settings.authorizeURL, tokenURL: settings.tokenURL,
            redirectURI: redirectURI(publicURL: configuration.effectivePublicURL, provider: .google), scopes: settings.scopes,
            extraParameters: ["access_type": "offline", "prompt": "consent", "include_granted_scopes": "true"],
            requiredScopes: [
                [auth + "calendar.events", auth + "calendar"],
                [auth + "calendar.calendarlist.readonly", auth + "calendar.calendarlist", auth + "calendar.readonly", auth + "calendar"],
            ]
        )
    }
}
