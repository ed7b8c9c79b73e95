import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// The consent half of a simulated OAuth 2.0 provider (RFC 6749 §4.1 with RFC 7636 PKCE): the authorize endpoint
/// renders a small page with Allow and Deny buttons; a decision redirects the browser to the client's redirect URI
/// with a code (or `error=access_denied`) and its `state`; the token endpoint redeems a code once, for the client
/// and redirect URI it was issued to, only with the verifier whose S256 challenge the authorize request carried.
///
/// Written from RFC 6749/7636 and the providers' documentation; it shares no code with the gateway's sign-in.
public final class SimulatorConsent: Sendable {
    /// A consent request waiting for the user's decision.
    struct Pending {
        var clientID: String
        var redirectURI: String
        var state: String?
        var challenge: String
        var scopes: [String]
        var parameters: [String: String]
    }

    /// An issued code.
    struct Code {
        var clientID: String
        var redirectURI: String
        var challenge: String
        var scopes: [String]
        var parameters: [String: String]
        var issuedAt: Date
        var redeemed: Bool
    }

    struct State {
        var pending: [String: Pending] = [:]
        var codes: [String: Code] = [:]
        var grantedScopes: [String]?
        var withholdRefreshToken = false
        var decisions: [String] = []
    }

    /// A redeemed code: what the token endpoint should grant.
    public struct Redemption: Sendable, Hashable {
        /// Scopes granted (the requested ones unless a test narrowed them).
        public var scopes: [String]
        /// The authorize request's other parameters (`access_type`, `prompt`, …).
        public var parameters: [String: String]
        /// Whether a test asked for no refresh token.
        public var withholdRefreshToken: Bool
    }

    /// Why a code was refused (the token endpoint words it the provider's way).
    public enum Refusal: Error, Sendable, Hashable {
        /// Unknown, expired or already redeemed.
        case invalidCode
        /// Issued to another client or redirect URI.
        case mismatch
        /// No verifier, or one whose S256 challenge differs.
        case badVerifier
    }

    private let state = Mutex(State())
    /// Path the consent form posts the decision to.
    let decisionPath: String
    /// Name shown on the page.
    let providerName: String
    private let clock: @Sendable () -> Date

    /// A consent flow whose page posts to `decisionPath`.
    init(providerName: String, decisionPath: String, clock: @escaping @Sendable () -> Date) {
        self.providerName = providerName
        self.decisionPath = decisionPath
        self.clock = clock
    }

    /// From now on grant only `scopes` whatever was asked (nil: grant what was asked), as a user unticking boxes would.
    public func grantScopes(_ scopes: [String]?) {
        state.withLock { $0.grantedScopes = scopes }
    }

    /// From now on issue no refresh token (as Google does for an account that consented before without
    /// `prompt=consent`).
    public func withholdRefreshToken(_ withhold: Bool) {
        state.withLock { $0.withholdRefreshToken = withhold }
    }

    /// The decisions made on the page so far (`approve` / `deny`), in order.
    public var decisions: [String] { state.withLock { $0.decisions } }

    /// Codes issued and not redeemed.
    public var outstandingCodes: Int { state.withLock { $0.codes.values.filter { !$0.redeemed }.count } }

    /// `GET` authorize: checks the request and renders the consent page (400 page for a request the provider refuses).
    func authorizePage(_ request: Request) -> Response {
        let query = request.uri.queryParameters
        func value(_ name: String) -> String? { query.get(name).map { String($0) } }
        guard let clientID = value("client_id"), !clientID.isEmpty else { return Self.page(.badRequest, "Error 400: invalid_request", "Missing required parameter: client_id") }
        guard let redirect = value("redirect_uri"), let url = URL(string: redirect), url.scheme == "https" || url.scheme == "http" else {
            return Self.page(.badRequest, "Error 400: redirect_uri_mismatch", "Missing or invalid redirect_uri")
        }
        guard value("response_type") == "code" else { return Self.page(.badRequest, "Error 400: unsupported_response_type", "response_type must be code") }
        guard let challenge = value("code_challenge"), challenge.utf8.count == 43, value("code_challenge_method") == "S256" else {
            return Self.page(.badRequest, "Error 400: invalid_request", "PKCE is required: code_challenge with code_challenge_method=S256")
        }
        let scopes = (value("scope") ?? "").split(separator: " ").map(String.init)
        guard !scopes.isEmpty else { return Self.page(.badRequest, "Error 400: invalid_scope", "Missing required parameter: scope") }
        var parameters: [String: String] = [:]
        for (key, item) in query where !["client_id", "redirect_uri", "response_type", "code_challenge", "code_challenge_method", "scope", "state"].contains(String(key)) {
            parameters[String(key)] = String(item)
        }
        let id = UUID().uuidString.lowercased()
        state.withLock {
            $0.pending[id] = Pending(clientID: clientID, redirectURI: redirect, state: value("state"), challenge: challenge, scopes: scopes, parameters: parameters)
        }
        let list = scopes.map { "<li>\(Self.escape($0))</li>" }.joined()
        let html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Sign in - \(Self.escape(providerName)) (simulator)</title></head>
            <body style="font-family: sans-serif; max-width: 32rem; margin: 3rem auto">
            <h1>\(Self.escape(providerName)) (simulator)</h1>
            <p>The application <b id="client">\(Self.escape(clientID))</b> wants to access your calendar:</p>
            <ul id="scopes">\(list)</ul>
            <form method="post" action="\(decisionPath)">
            <input type="hidden" name="request" value="\(id)">
            <button type="submit" name="decision" value="approve" id="approve">Allow</button>
            <button type="submit" name="decision" value="deny" id="deny">Deny</button>
            </form>
            </body></html>
            """
        return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// `POST` decision: redirects to the client with a code or `error=access_denied`, and the request's `state`.
    func decide(_ request: Request) async throws -> Response {
        var request = request
        let form = Self.form(String(buffer: try await request.collectBody(upTo: 16_384)))
        guard let id = form["request"], let decision = form["decision"], decision == "approve" || decision == "deny",
            let pending = state.withLock({ $0.pending.removeValue(forKey: id) })
        else {
            return Self.page(.badRequest, "Error 400: invalid_request", "This consent request is unknown or was already answered")
        }
        state.withLock { $0.decisions.append(decision) }
        var pairs: [(String, String)]
        if decision == "deny" {
            pairs = [("error", "access_denied"), ("error_description", "The user denied the request")]
        } else {
            let code = "sim-code-" + UUID().uuidString.lowercased()
            state.withLock {
                $0.codes[code] = Code(
                    clientID: pending.clientID, redirectURI: pending.redirectURI, challenge: pending.challenge,
                    scopes: $0.grantedScopes ?? pending.scopes, parameters: pending.parameters, issuedAt: clock(), redeemed: false)
            }
            pairs = [("code", code)]
        }
        if let given = pending.state { pairs.append(("state", given)) }
        let query = pairs.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")
        let location = pending.redirectURI + (pending.redirectURI.contains("?") ? "&" : "?") + query
        return Response(status: .seeOther, headers: [.location: location])
    }

    /// Redeems `code` once for `clientID` and `redirectURI` with `verifier`.
    public func redeem(code: String?, clientID: String?, redirectURI: String?, verifier: String?) -> Result<Redemption, Refusal> {
        let now = clock()
        return state.withLock { state in
            guard let code, var issued = state.codes[code], !issued.redeemed, now.timeIntervalSince(issued.issuedAt) < 600 else {
                return .failure(.invalidCode)
            }
            // A code is spent by any redemption attempt that names it, as providers do after a suspected replay.
            issued.redeemed = true
            state.codes[code] = issued
            guard issued.clientID == clientID, issued.redirectURI == redirectURI else { return .failure(.mismatch) }
            guard let verifier, (43...128).contains(verifier.utf8.count), PKCE.challenge(for: verifier) == issued.challenge else {
                return .failure(.badVerifier)
            }
            return .success(Redemption(scopes: issued.scopes, parameters: issued.parameters, withholdRefreshToken: state.withholdRefreshToken))
        }
    }

    static func form(_ body: String) -> [String: String] {
        var form: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ") }
            if parts.count == 2 { form[parts[0].removingPercentEncoding ?? parts[0]] = parts[1].removingPercentEncoding ?? parts[1] }
        }
        return form
    }

    static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")) ?? text
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func page(_ status: HTTPResponse.Status, _ title: String, _ message: String) -> Response {
        let html = "<!doctype html><html><head><title>\(escape(title))</title></head><body><h1>\(escape(title))</h1><p>\(escape(message))</p></body></html>"
        return Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
    }
}
