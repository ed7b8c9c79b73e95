import Foundation

/// RFC 3339 instants as providers and LeadCenter send them: with or without fractional seconds, `Z` or an offset.
public enum RFC3339 {
    /// The instant, or nil when `text` is not an RFC 3339 date-time.
    public static func parse(_ text: String) -> Date? {
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        if let date = plain.date(from: text) { return date }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return fractional.date(from: text)
    }
}
