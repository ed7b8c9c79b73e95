import GatewayCore

extension GatewayConfiguration.OAuthProviderSettings {
    /// These settings pointed at a simulator's token, API and consent endpoints (paths under `baseURL`), with
    /// `client` as the sign-in client unless one is configured already.
    public mutating func point(at baseURL: String, tokenPath: String, apiPath: String, authorizePath: String, client: (id: String, secret: String)) {
        tokenURL = baseURL + tokenPath
        apiBaseURL = baseURL + apiPath
        authorizeURL = baseURL + authorizePath
        clientID = clientID ?? client.id
        clientSecret = clientSecret ?? client.secret
    }

    /// Pointed at a `GoogleSimulator` served at `baseURL`.
    public mutating func pointAtGoogleSimulator(_ baseURL: String, client: (id: String, secret: String)) {
        point(at: baseURL, tokenPath: "/token", apiPath: "/calendar/v3", authorizePath: "/o/oauth2/v2/auth", client: client)
    }

    /// Pointed at a `GraphSimulator` served at `baseURL` (Entra ID's `common` tenant paths).
    public mutating func pointAtGraphSimulator(_ baseURL: String, client: (id: String, secret: String)) {
        point(
            at: baseURL, tokenPath: "/common/oauth2/v2.0/token", apiPath: "/v1.0", authorizePath: "/common/oauth2/v2.0/authorize", client: client
        )
    }
}
