import Foundation
import Testing
@testable import GatewayCore

@Suite("Bearer credentials: missing, wrong and expired tokens")
struct BearerCredentialTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let token = "0123456789abcdef0123456789abcdef"

    @Test func missingMalformedAndWrongTokensAreRefused() {
        let credential = BearerCredential(token: token)
        #expect(credential.check(authorization: nil, now: now) == .missing)
        #expect(credential.check(authorization: "", now: now) == .missing)
        #expect(credential.check(authorization: "Bearer", now: now) == .missing)
        #expect(credential.check(authorization: "Bearer ", now: now) == .missing)
        #expect(credential.check(authorization: "Basic \(token)", now: now) == .missing)
        #expect(credential.check(authorization: "Bearer \(token)x", now: now) == .wrong)
        #expect(credential.check(authorization: "Bearer \(token.dropLast())", now: now) == .wrong)
        #expect(credential.check(authorization: "Bearer \(token) ", now: now) == .wrong)
        #expect(credential.check(authorization: "Bearer \(token)", now: now) == .accepted)
        #expect(credential.check(authorization: "bearer \(token)", now: now) == .accepted)
    }

    @Test func aTokenIsRefusedFromItsExpiryOn() {
        let credential = BearerCredential(token: token, expiresAt: now.addingTimeInterval(60))
        #expect(credential.check(authorization: "Bearer \(token)", now: now) == .accepted)
        #expect(credential.check(authorization: "Bearer \(token)", now: now.addingTimeInterval(60)) == .expired)
        #expect(credential.check(authorization: "Bearer \(token)", now: now.addingTimeInterval(3600)) == .expired)
        // A wrong token after expiry is still just wrong: expiry is only told to the holder of the token.
        #expect(credential.check(authorization: "Bearer nope-nope-nope", now: now.addingTimeInterval(3600)) == .wrong)
    }

    @Test func anEmptyConfiguredTokenAcceptsNothing() {
        let credential = BearerCredential(token: "")
        #expect(credential.check(authorization: "Bearer x", now: now) == .wrong)
    }
}
