import Foundation
import GatewayCore
import GoogleCalendar
import Testing

@Suite("Google channel verifier")
struct GoogleChannelVerifierTests {
    let verifier = GoogleChannelVerifier()
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let channel = GoogleChannel(
        id: "4ba78bf0-6a47-11e2-bcfd-0800200c9a66", resourceID: "ret08u3rv24htgh289g", token: "target=cal-1&secret=s3cr3t",
        calendarKey: "conn-1/primary", expiresAt: Date(timeIntervalSince1970: 1_800_600_000)
    )

    func headers(_ changes: [String: String?] = [:]) -> [String: String] {
        var h: [String: String] = [
            "x-goog-channel-id": channel.id,
            "x-goog-channel-token": channel.token,
            "x-goog-resource-id": channel.resourceID,
            "x-goog-resource-uri": "https://www.googleapis.com/calendar/v3/calendars/primary/events?alt=json",
            "x-goog-resource-state": "exists",
            "x-goog-message-number": "10",
            "x-goog-channel-expiration": "Fri, 31 Mar 2023 14:56:37 GMT",
        ]
        for (name, value) in changes { h[name] = value }
        return h
    }

    @Test func acceptsAValidPushAsADeduplicatedInboxEntry() throws {
        let push = try verifier.verify(headers: headers(), bodyLength: 0, channel: channel, receivedAt: now).get()
        #expect(push.state == "exists")
        #expect(push.messageNumber == 10)
        #expect(push.entry.provider == .google)
        #expect(push.entry.dedupeKey == "google:\(channel.id):10")
        #expect(push.entry.kind == "exists")
        #expect(push.entry.receivedAt == now)
        #expect(push.entry.headers["x-goog-channel-token"] == nil, "the secret token is never stored in the inbox")
        #expect(verifier.channelID(in: headers()) == channel.id)
    }

    @Test func acceptsSyncAndNotExists() throws {
        for state in ["sync", "not_exists"] {
            let push = try verifier.verify(headers: headers(["x-goog-resource-state": state, "x-goog-message-number": "1"]), bodyLength: 0, channel: channel, receivedAt: now).get()
            #expect(push.state == state)
        }
    }

    @Test func failsClosedOnEveryBadInput() {
        let cases: [([String: String?], Int, GoogleChannel?, GoogleChannelVerifier.Rejection)] = [
            (["x-goog-channel-id": nil], 0, channel, .missingHeader),
            (["x-goog-resource-state": ""], 0, channel, .missingHeader),
            (["x-goog-resource-id": nil], 0, channel, .missingHeader),
            (["x-goog-message-number": nil], 0, channel, .missingHeader),
            ([:], 0, nil, .unknownChannel),
            (["x-goog-channel-id": "other"], 0, channel, .unknownChannel),
            (["x-goog-channel-token": "target=cal-1&secret=wrong"], 0, channel, .tokenMismatch),
            (["x-goog-channel-token": nil], 0, channel, .tokenMismatch),
            (["x-goog-resource-id": "someone-else"], 0, channel, .resourceMismatch),
            (["x-goog-resource-state": "update"], 0, channel, .unknownState),
            (["x-goog-message-number": "0"], 0, channel, .badMessageNumber),
            (["x-goog-message-number": "-3"], 0, channel, .badMessageNumber),
            (["x-goog-message-number": "ten"], 0, channel, .badMessageNumber),
            (["x-goog-message-number": "99999999999999999999"], 0, channel, .badMessageNumber),
            (["x-goog-channel-id": String(repeating: "a", count: 65)], 0, channel, .oversizedHeader),
            ([:], 12, channel, .unexpectedBody),
        ]
        for (changes, body, lookup, expected) in cases {
            let result = verifier.verify(headers: headers(changes), bodyLength: body, channel: lookup, receivedAt: now)
            #expect(result == .failure(expected), "\(changes) body \(body)")
        }
        #expect(verifier.channelID(in: headers(["x-goog-channel-id": String(repeating: "a", count: 65)])) == nil)
        let emptyTokenChannel = GoogleChannel(id: channel.id, resourceID: channel.resourceID, token: "", calendarKey: "k", expiresAt: now)
        // A channel stored without a token never verifies, whatever the push carries.
        #expect(verifier.verify(headers: headers(["x-goog-channel-token": ""]), bodyLength: 0, channel: emptyTokenChannel, receivedAt: now) == .failure(.tokenMismatch))
    }

    @Test func parsesTheRFC1123Expiration() {
        let date = GoogleChannelVerifier.parseExpiration("Fri, 31 Mar 2023 14:56:37 GMT")
        #expect(date == Date(timeIntervalSince1970: 1_680_274_597))
        #expect(GoogleChannelVerifier.parseExpiration("1680274597000") == nil)
    }
}
