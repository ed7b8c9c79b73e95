import Foundation

extension DateFormatter {
    /// A formatter for one fixed machine-readable format (`dateFormat` pattern), in the POSIX locale and `zone`, so
    /// the user's locale and calendar never change what is written or accepted.
    public static func fixed(_ format: String, zone: String = "UTC") -> DateFormatter {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: zone)
        formatter.dateFormat = format
        return formatter
    }
}
