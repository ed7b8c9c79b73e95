import Foundation

/// Which provider a notification, connection or appointment belongs to: an open set of short ids, so a provider
/// plugs in without a change here (`ProviderPlugin.provider`).
///
/// The three built-in providers have named constants; stores keep `rawValue`.
public struct Provider: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
    /// The stored id: 1 to 32 of `a-z`, `0-9`, `_` and `-`, starting with a letter.
    public let rawValue: String

    /// An id, or nil when it is not a valid provider id.
    public init?(rawValue: String) {
        let bytes = rawValue.utf8
        guard let first = bytes.first, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first), bytes.count <= 32,
            bytes.allSatisfy({ (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") })
        else { return nil }
        self.rawValue = rawValue
    }

    private init(known: String) { rawValue = known }

    /// Google Calendar.
    public static let google = Provider(known: "google")
    /// Microsoft 365 (Graph).
    public static let microsoft = Provider(known: "microsoft")
    /// Redtail CRM.
    public static let redtail = Provider(known: "redtail")
    /// The providers this build ships; others arrive as plugins.
    public static let builtIn: [Provider] = [.google, .microsoft, .redtail]

    /// The id.
    public var description: String { rawValue }

    /// The provider's name for people (operator console, API errors): the built-in ones by name, others by id.
    public var displayName: String {
        switch self {
        case .google: "Google"
        case .microsoft: "Microsoft"
        case .redtail: "Redtail"
        default: rawValue.prefix(1).uppercased() + rawValue.dropFirst()
        }
    }

    /// Where an imported appointment lives, as a user knows it (`this appointment is imported from …`).
    public var calendarName: String {
        switch self {
        case .google: "Google Calendar"
        case .microsoft: "Outlook (Microsoft 365)"
        default: displayName
        }
    }

    /// Decodes the id, refusing one that is not valid.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let provider = Provider(rawValue: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "\"\(text)\" is not a provider id"))
        }
        self = provider
    }

    /// Encodes the id.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
