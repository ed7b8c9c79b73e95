import CalgateMacros
import Foundation

/// How a user signs in to an OAuth 2.0 provider to connect a calendar: the authorization-code flow with PKCE and
/// `state` (RFC 6749 §4.1, RFC 7636), as a pure description the provider's module builds from its settings.
///
/// `GatewayHTTP` drives the flow from this value alone (consent URL, token request, checking the token response,
/// today's connect fields), so it needs no provider import.
@MemberwiseInit
public struct OAuthSignIn: Sendable, Hashable {
    /// The provider.
    public var provider: Provider
    /// The OAuth client id (also stored with each connection, as the refresh-token form does).
    public var clientID: String
    /// The OAuth client secret.
    public var clientSecret: String
    /// The authorization endpoint the user's browser is sent to.
    public var authorizeURL: String
    /// The token endpoint the code is exchanged at.
    public var tokenURL: String
    /// The redirect URI registered with the provider: `<public_url>/oauth/<provider>/callback`.
    public var redirectURI: String
    /// The scopes asked for.
    public var scopes: [String]
    /// Provider-specific authorization parameters (Google's `access_type=offline`, `prompt=consent`).
    public var extraParameters: [String: String] = [:]
    /// What sync and push-out need: each entry is satisfied by any one of its scopes being granted.
    public var requiredScopes: [[String]]
    /// Prefix a provider may put on granted scopes (Graph answers `https://graph.microsoft.com/Calendars.ReadWrite`
    /// for `Calendars.ReadWrite`); removed before comparing, which ignores case.
    public var grantedScopePrefix: String? = nil

    /// The redirect URI for `provider` under `publicURL`.
    public static func redirectURI(publicURL: String, provider: Provider) -> String { publicURL + "/oauth/\(provider.rawValue)/callback" }

    /// The consent URL: `response_type=code`, client, redirect URI, scopes, `state`, the S256 challenge and the
    /// provider's extra parameters, in a stable order.
    public func consentURL(state: String, codeChallenge: String) -> String {
        var parameters: [(String, String)] = [
            ("response_type", "code"), ("client_id", clientID), ("redirect_uri", redirectURI), ("scope", scopes.joined(separator: " ")),
            ("state", state), ("code_challenge", codeChallenge), ("code_challenge_method", PKCE.method),
        ]
        parameters += extraParameters.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let separator = authorizeURL.contains("?") ? "&" : "?"
        return authorizeURL + separator + Self.form(parameters)
    }

    /// The token request's form body: `grant_type=authorization_code` with the code, redirect URI, client and verifier.
    public func tokenRequestBody(code: String, codeVerifier: String) -> String {
        Self.form([
            ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirectURI), ("client_id", clientID),
            ("client_secret", clientSecret), ("code_verifier", codeVerifier),
        ])
    }

    /// Reads the token endpoint's answer: today's connect fields (`client_id`, `client_secret`, `refresh_token`) when
    /// it granted a refresh token and every scope sync needs, else why not.
    public func connectFields(tokenStatus status: Int, body: [UInt8]) -> Result<[String: String], SignInFailure> {
        let object: [String: JSONValue]
        if case .object(let parsed)? = try? JSONValue.parse(Data(body)) { object = parsed } else { object = [:] }
        func text(_ key: String) -> String? {
            if case .string(let value)? = object[key], !value.isEmpty { return value }
            return nil
        }
        guard (200..<300).contains(status) else {
            // Only the provider's short error code: its description is provider text, kept out of answers and logs.
            let error = text("error").flatMap(SignInFailure.errorCode) ?? "HTTP \(status)"
            return .failure(
                SignInFailure(
                    .tokenRefused,
                    "\(provider.displayName) refused the authorization code (\(error)); the code may be used, expired or meant for another sign-in: start a new sign-in"
                ))
        }
        guard text("access_token") != nil else {
            return .failure(SignInFailure(.tokenRefused, "\(provider.displayName)'s token endpoint answered without an access token; start a new sign-in"))
        }
        let granted = text("scope").map { $0.split(separator: " ").map(String.init) } ?? scopes
        let missing = missingScopes(granted: granted)
        guard missing.isEmpty else {
            return .failure(
                SignInFailure(
                    .missingScope,
                    "the account granted too little: calgate needs \(missing.joined(separator: ", ")) to sync; sign in again and allow calendar access"
                ))
        }
        guard let refreshToken = text("refresh_token") else {
            return .failure(
                SignInFailure(
                    .noRefreshToken,
                    "\(provider.displayName) returned no refresh token, so calgate could not keep the calendar in sync; remove calgate's access in the account's security settings and sign in again"
                ))
        }
        return .success(["client_id": clientID, "client_secret": clientSecret, "refresh_token": refreshToken])
    }

    /// The required scope groups none of whose scopes is in `granted` (each named by its first scope).
    public func missingScopes(granted: [String]) -> [String] {
        let have = Set(granted.map(normalized))
        return requiredScopes.filter { group in !group.contains { have.contains(normalized($0)) } }.compactMap(\.first)
    }

    private func normalized(_ scope: String) -> String {
        var value = scope
        if let prefix = grantedScopePrefix, value.lowercased().hasPrefix(prefix.lowercased()) { value = String(value.dropFirst(prefix.count)) }
        return value.lowercased()
    }

    /// `application/x-www-form-urlencoded` pairs, everything but unreserved characters percent-encoded.
    public static func form(_ pairs: [(String, String)]) -> String {
        pairs.map { percentEncoded($0.0) + "=" + percentEncoded($0.1) }.joined(separator: "&")
    }

    /// Percent-encodes every byte that is not unreserved.
    public static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if Base64URL.isUnreserved(byte) {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }
}

/// Why a sign-in did not produce a connection: a stable `code` for LeadCenter and a message for people.
public struct SignInFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kinds of failure.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// The user declined consent (`error=access_denied`).
        case accessDenied = "access_denied"
        /// The provider answered the callback with another error.
        case providerError = "provider_error"
        /// The callback carried no code.
        case missingCode = "missing_code"
        /// The 10 minutes ran out before the callback.
        case expired
        /// The token endpoint refused the code (used, expired, wrong verifier or redirect).
        case tokenRefused = "token_refused"
        /// The token endpoint could not be reached.
        case tokenUnreachable = "token_unreachable"
        /// The user granted fewer scopes than sync needs.
        case missingScope = "missing_scope"
        /// The provider returned no refresh token.
        case noRefreshToken = "no_refresh_token"
        /// The connect path (cap, calendars, subscriptions, full sync) failed.
        case connectFailed = "connect_failed"
    }

    /// What kind.
    public let code: Code
    /// What happened and what to do.
    public let message: String

    /// Creates a failure.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `code: message`.
    public var description: String { "\(code.rawValue): \(message)" }

    /// A provider's OAuth error code (`invalid_grant`, `access_denied`) when it looks like one: 1 to 64 of
    /// `A-Z a-z 0-9 _ . -`; anything else is not repeated to anyone.
    public static func errorCode(_ text: String) -> String? {
        guard (1...64).contains(text.utf8.count), text.utf8.allSatisfy({ Base64URL.isUnreserved($0) && $0 != UInt8(ascii: "~") }) else { return nil }
        return text
    }
}

/// Exchanges an authorization code at a provider's token endpoint (libcurl in the gateway, off the event loop).
public protocol OAuthCodeExchanging: Sendable {
    /// POSTs `body` (form-encoded) to `tokenURL` and returns the status and body; throws when the endpoint cannot be
    /// reached.
    func postTokenRequest(tokenURL: String, body: String) async throws -> (status: Int, body: [UInt8])
}
