import Foundation

/// Text shown to operators: provider messages can quote request details, so anything shaped like a credential is
/// cut before it is rendered (the templates then escape what is left).
enum ConsoleText {
    /// Replaces bearer tokens and the values of credential-like parameters with `[redacted]`.
    static func redacted(_ text: String) -> String {
        guard !text.isEmpty else { return text }
        var result = text
        let patterns = [
            #"(?i)(bearer\s+)[A-Za-z0-9\-._~+/=]+"#,
            #"(?i)((?:access_token|refresh_token|client_secret|clientstate|client_state|password|api_key|apikey|userkey|token)["']?\s*[:=]\s*["']?)[^\s"'&,;}]+"#,
        ]
        for pattern in patterns {
            guard let regex = try? NSRegularExpression(pattern: pattern) else { continue }
            let range = NSRange(result.startIndex..., in: result)
            result = regex.stringByReplacingMatches(in: result, range: range, withTemplate: "$1[redacted]")
        }
        return result
    }
}
