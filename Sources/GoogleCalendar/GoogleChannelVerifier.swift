import Foundation
import GatewayCore

/// Verifies a Google Calendar push (`X-Goog-*` headers, empty body) against the stored channel; fails closed.
///
/// Pure: the caller looks the channel up (by `X-Goog-Channel-ID`) and passes it in, so every rule is tested without
/// a server. An accepted push becomes an inbox entry whose dedupe key is the channel and message number, so a
/// retried or duplicated push is stored once.
public struct GoogleChannelVerifier: Sendable {
    /// Why a push was refused; `rawValue` is the metric label.
    public enum Rejection: String, Sendable, Hashable, Error {
        /// A required `X-Goog-*` header is absent or empty.
        case missingHeader = "missing_header"
        /// The channel id is not one calgate created (or it was stopped).
        case unknownChannel = "unknown_channel"
        /// `X-Goog-Channel-Token` does not match.
        case tokenMismatch = "token_mismatch"
        /// `X-Goog-Resource-ID` does not match the channel's resource.
        case resourceMismatch = "resource_mismatch"
        /// `X-Goog-Message-Number` is not a positive integer.
        case badMessageNumber = "bad_message_number"
        /// `X-Goog-Resource-State` is not `sync`, `exists` or `not_exists`.
        case unknownState = "unknown_state"
        /// Google pushes have empty bodies.
        case unexpectedBody = "unexpected_body"
        /// A header is longer than Google ever sends.
        case oversizedHeader = "oversized_header"
    }

    /// A verified push.
    public struct Push: Sendable, Hashable {
        /// The channel it came through.
        public var channel: GoogleChannel
        /// `sync`, `exists` or `not_exists`.
        public var state: String
        /// Google's message number (1 for `sync`; later ones grow with gaps).
        public var messageNumber: UInt64
        /// The inbox entry to append before answering.
        public var entry: InboxEntry
    }

    static let states: Set<String> = ["sync", "exists", "not_exists"]

    /// Creates a verifier.
    public init() {}

    /// The channel id a push names, for the lookup; nil when absent or too long to be ours.
    public func channelID(in headers: [String: String]) -> String? {
        guard let id = headers["x-goog-channel-id"], !id.isEmpty, id.utf8.count <= 64 else { return nil }
        return id
    }

    /// Checks one push. `headers` have lower-case names; `channel` is the lookup result for `channelID(in:)`.
    public func verify(headers: [String: String], bodyLength: Int, channel: GoogleChannel?, receivedAt: Date) -> Result<Push, Rejection> {
        func header(_ name: String, max: Int) -> Result<String, Rejection> {
            guard let value = headers[name], !value.isEmpty else { return .failure(.missingHeader) }
            guard value.utf8.count <= max else { return .failure(.oversizedHeader) }
            return .success(value)
        }
        guard bodyLength == 0 else { return .failure(.unexpectedBody) }
        let channelHeader: String
        let state: String
        let resource: String
        let number: String
        switch (
            header("x-goog-channel-id", max: 64), header("x-goog-resource-state", max: 32),
            header("x-goog-resource-id", max: 512), header("x-goog-message-number", max: 20)
        ) {
        case (.success(let c), .success(let s), .success(let r), .success(let n)):
            (channelHeader, state, resource, number) = (c, s, r, n)
        case (.failure(let e), _, _, _), (_, .failure(let e), _, _), (_, _, .failure(let e), _), (_, _, _, .failure(let e)):
            return .failure(e)
        }
        guard let channel, channel.id == channelHeader else { return .failure(.unknownChannel) }
        // Compare the token before anything that depends on it, in constant time; a missing token never matches.
        guard ConstantTime.equals(headers["x-goog-channel-token"] ?? "", channel.token), !channel.token.isEmpty else {
            return .failure(.tokenMismatch)
        }
        guard ConstantTime.equals(resource, channel.resourceID) else { return .failure(.resourceMismatch) }
        guard Self.states.contains(state) else { return .failure(.unknownState) }
        guard let messageNumber = UInt64(number), messageNumber > 0 else { return .failure(.badMessageNumber) }

        // Room for every kept header and the calendar verification records next: one allocation per push.
        var kept = [String: String](minimumCapacity: 7)
        kept["x-goog-channel-id"] = channelHeader
        kept["x-goog-resource-id"] = resource
        kept["x-goog-resource-state"] = state
        kept["x-goog-message-number"] = number
        if let uri = headers["x-goog-resource-uri"], uri.utf8.count <= 2048 { kept["x-goog-resource-uri"] = uri }
        if let expiration = headers["x-goog-channel-expiration"], expiration.utf8.count <= 64 {
            kept["x-goog-channel-expiration"] = expiration
        }
        let entry = InboxEntry(
            provider: .google, channelID: channel.id, dedupeKey: "google:\(channel.id):\(messageNumber)", kind: state,
            receivedAt: receivedAt, headers: kept, body: []
        )
        return .success(Push(channel: channel, state: state, messageNumber: messageNumber, entry: entry))
    }

    /// Parses `X-Goog-Channel-Expiration` (RFC 1123, e.g. `Fri, 31 Mar 2023 14:56:37 GMT`).
    public static func parseExpiration(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }
}
