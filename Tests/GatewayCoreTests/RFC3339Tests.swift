import Foundation
import GatewayCore
import Testing

/// `RFC3339.parse` reads the common shape directly; it must agree with the ISO8601DateFormatter path it replaced.
@Suite("RFC 3339 instants")
struct RFC3339Tests {
    func formatters(_ text: String) -> Date? {
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        if let date = plain.date(from: text) { return date }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return fractional.date(from: text)
    }

    @Test func agreesWithTheFormattersOnRandomInstants() {
        var generator = SystemRandomNumberGenerator()
        let iso = ISO8601DateFormatter()
        for index in 0..<2_000 {
            var text = iso.string(from: Date(timeIntervalSince1970: Double(Int64.random(in: -2_000_000_000...4_000_000_000, using: &generator))))
            let digits = index % 7
            if digits > 0 { text = String(text.dropLast()) + "." + String((0..<digits).map { _ in "0123456789".randomElement(using: &generator)! }) + "Z" }
            if index % 3 == 1 {
                text = String(text.dropLast()) + String(format: "%@%02d:%02d", index % 2 == 0 ? "+" : "-", Int.random(in: 0...14, using: &generator), [0, 30, 45][index % 3])
            }
            let parsed = RFC3339.parse(text)
            let expected = formatters(text)
            #expect(parsed != nil, "\(text)")
            if let parsed, let expected { #expect(abs(parsed.timeIntervalSince(expected)) < 1e-6, "\(text)") }
        }
    }

    @Test func edgeCasesMatchTheFormatters() {
        let cases = [
            "2026-12-01T10:00:00Z", "2026-12-01T10:00:00.5Z", "2024-02-29T10:00:00Z", "2026-02-29T10:00:00Z", "2026-13-01T10:00:00Z",
            "2026-12-01 10:00:00Z", "2026-12-01t10:00:00z", "2026-12-01T10:00:00+0100", "2026-12-01T24:00:00Z", "2026-12-01T10:00:60Z",
            "2026-12-01T10:00Z", "2026-12-01", "2026-12-01T10:00:00.Z", "2026-12-01T10:00:00.1234567891Z", "2026-04-31T10:00:00Z",
            "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z", "2026-12-01T10:00:00.999999Z", "2026-12-01T10:00:00-00:00",
            " 2026-12-01T10:00:00Z", "2026-12-01T10:00:00+14:00", "", "not a date",
        ]
        for text in cases {
            #expect(RFC3339.parse(text)?.timeIntervalSince1970 == formatters(text)?.timeIntervalSince1970, "\(text)")
        }
    }
}
