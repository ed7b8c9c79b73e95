extension CurlHTTPRequest {
    /// A POST of an `application/x-www-form-urlencoded` body that asks for JSON back: what OAuth token endpoints take.
    public static func formPost(_ url: String, body: String, timeout: Duration? = nil) -> CurlHTTPRequest {
        CurlHTTPRequest(
            method: "POST", url: url,
            headers: [CurlHTTPHeader("Content-Type", "application/x-www-form-urlencoded"), CurlHTTPHeader("Accept", "application/json")],
            body: Array(body.utf8), timeout: timeout
        )
    }
}
