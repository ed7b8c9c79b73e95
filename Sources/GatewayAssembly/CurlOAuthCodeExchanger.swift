import CalgateMacros
import CurlHTTP
import GatewayCore

/// Exchanges sign-in codes at the providers' token endpoints over libcurl (its own thread, so never on an event
/// loop), bounded in time like every outbound call.
@MemberwiseInit
public struct CurlOAuthCodeExchanger: OAuthCodeExchanging {
    let http: CurlHTTPClient

    /// POSTs the form and returns the status and body, whatever the status.
    public func postTokenRequest(tokenURL: String, body: String) async throws -> (status: Int, body: [UInt8]) {
        let response = try await http.execute(.formPost(tokenURL, body: body, timeout: .seconds(20)))
        return (response.status, response.body)
    }
}
