import Foundation
import GatewayCore
import Testing

/// Sign-ins (`SignInStore`): round trip, single-use claim of `state` under a race, finishing once.
@Suite("Store contract: sign-ins")
struct SignInContractTests {
    static func authorization(_ id: String, state: String, created: Double = 1_800_000_000.25) -> SignInAuthorization {
        SignInAuthorization(
            id: id, provider: .microsoft, userID: "u1", accountID: "acct-1", visibility: .everyone, reconnectConnectionID: "mc_9", state: state,
            sealedVerifier: [0, 1, 2, 255] + Array(repeating: 9, count: 60), now: date(created)
        )
    }

    @Test(arguments: Backend.available)
    func signInsRoundTrip(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let full = Self.authorization("au_full", state: "state-full")
            try await store.createSignInAuthorization(full)
            var plain = SignInAuthorization(id: "au_plain", provider: .google, userID: "u2", state: "state-plain", sealedVerifier: [7], now: date(1_800_000_001))
            try await store.createSignInAuthorization(plain)
            #expect(try await store.signInAuthorization(id: "au_full") == full)
            #expect(try await store.signInAuthorization(id: "au_plain") == plain, "nil account, reconnect and defaults round-trip")
            #expect(try await store.signInAuthorization(id: "au_none") == nil)
            await #expect(throws: (any Error).self, "a state is unique") {
                try await store.createSignInAuthorization(Self.authorization("au_other", state: "state-full"))
            }
            plain.fail(SignInFailure(.accessDenied, "the user declined"), now: date(1_800_000_002))
            #expect(try await store.finishSignInAuthorization(plain))
            #expect(try await store.signInAuthorization(id: "au_plain") == plain)
            var again = plain
            again.status = .pending
            again.connected(connectionID: "gc_1", now: date(1_800_000_003))
            #expect(try await store.finishSignInAuthorization(again) == false, "a finished sign-in stays as it ended")
            #expect(try await store.signInAuthorization(id: "au_plain") == plain)
            #expect(try await store.deleteSignInAuthorizations(createdBefore: date(1_800_000_000.25)) == 0, "the cutoff is exclusive")
            #expect(try await store.deleteSignInAuthorizations(createdBefore: date(1_800_000_000.5)) == 1)
            #expect(try await store.signInAuthorization(id: "au_full") == nil)
            #expect(try await store.signInAuthorization(id: "au_plain") != nil)
        }
    }

    @Test(arguments: Backend.available)
    func aStateIsClaimedOnceEvenUnderARace(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.createSignInAuthorization(Self.authorization("au_race", state: "state-race"))
            #expect(try await store.claimSignInState("state-unknown", at: date(1_800_000_010)) == .unknown)
            let claims = try await withThrowingTaskGroup(of: SignInStateClaim.self) { group in
                for _ in 0..<8 { group.addTask { try await store.claimSignInState("state-race", at: date(1_800_000_010)) } }
                var all: [SignInStateClaim] = []
                for try await claim in group { all.append(claim) }
                return all
            }
            let won = claims.compactMap { claim -> SignInAuthorization? in
                if case .claimed(let row) = claim { return row }
                return nil
            }
            #expect(won.count == 1, "exactly one of eight concurrent claims wins: \(claims)")
            #expect(won.first?.claimedAt == date(1_800_000_010) && won.first?.status == .pending)
            #expect(claims.filter { if case .alreadyClaimed = $0 { true } else { false } }.count == 7)
            guard case .alreadyClaimed(let row) = try await store.claimSignInState("state-race", at: date(1_800_000_020)) else {
                Issue.record("a later claim must find it claimed")
                return
            }
            #expect(row.claimedAt == date(1_800_000_010), "a refused claim changes nothing")
        }
    }
}
