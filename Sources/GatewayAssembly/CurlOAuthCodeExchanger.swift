import CurlHTTP
import GatewayCore

/// Exchanges sign-in codes at the providers' token endpoints over libcurl (its own thread, so never on an event
/// loop), bounded in time like every outbound call.
public struct CurlOAuthCodeExchanger: OAuthCodeExchanging {
    let http: CurlHTTPClient

    /// Uses `http` for the exchanges.
    public init(http: CurlHTTPClient) {
        self.http = http
    }

    /// POSTs the form and returns the status and body, whatever the status.
    public func postTokenRequest(tokenURL: String, body: String) async throws -> (status: Int, body: [UInt8]) {
        let response = try await http.execute(
            CurlHTTPRequest(
                method: "POST", url: tokenURL,
                headers: [CurlHTTPHeader("Content-Type", "application/x-www-form-urlencoded"), CurlHTTPHeader("Accept", "application/json")],
                body: Array(body.utf8), timeout: .seconds(20)
            ))
        return (response.status, response.body)
    }
}
