import Foundation
import Testing

@testable import GatewayCore

/// The provider boundary's own values: provider ids (and every kind of bad one), connect requests missing a field,
/// the one classified error shape.
@Suite("Provider boundary")
struct ProviderBoundaryTests {
    @Test func providerIdsAreShortLowercaseNames() throws {
        for good in ["google", "microsoft", "redtail", "toy", "a", "acme_crm-2", String(repeating: "x", count: 32)] {
            #expect(Provider(rawValue: good)?.rawValue == good)
        }
        for bad in ["", "Google", "2fa", "-x", "_x", "a b", "toy!", "é", String(repeating: "x", count: 33), "google\n"] {
            #expect(Provider(rawValue: bad) == nil, "\(bad) should not be a provider id")
        }
        #expect(Provider(rawValue: "google") == .google)
        #expect(Provider.builtIn == [.google, .microsoft, .redtail])
    }

    @Test func namesForPeopleFallBackToTheId() throws {
        #expect(Provider.google.displayName == "Google")
        #expect(Provider.microsoft.calendarName == "Outlook (Microsoft 365)")
        #expect(Provider.redtail.calendarName == "Redtail")
        let toy = try #require(Provider(rawValue: "toy"))
        #expect(toy.displayName == "Toy")
        #expect(toy.calendarName == "Toy")
        #expect("\(toy)" == "toy")
    }

    @Test func providersRoundTripAsJSONStringsAndBadOnesAreRefused() throws {
        let data = try JSONEncoder().encode([Provider.google, Provider(rawValue: "toy")!])
        #expect(String(decoding: data, as: UTF8.self) == #"["google","toy"]"#)
        #expect(try JSONDecoder().decode([Provider].self, from: data) == [.google, Provider(rawValue: "toy")!])
        for bad in [#"["Google"]"#, #"[""]"#, #"[1]"#, #"[null]"#] {
            #expect(throws: DecodingError.self) { try JSONDecoder().decode([Provider].self, from: Data(bad.utf8)) }
        }
    }

    @Test func aConnectRequestNamesTheMissingField() throws {
        let request = ConnectRequest(userID: "u1", fields: ["client_id": "c", "client_secret": ""])
        #expect(try request.field("client_id") == "c")
        #expect(throws: ConnectionInputError.self) { try request.field("client_secret") }
        do {
            _ = try request.field("refresh_token")
            Issue.record("a missing field was accepted")
        } catch let error as ConnectionInputError {
            #expect(error.description == "refresh_token is required")
            #expect(!error.connectionNotFound)
        }
        #expect(ConnectShape.refreshToken.connectFields == ["client_id", "client_secret", "refresh_token"])
        #expect(!ConnectShape.refreshToken.requiresAccount)
    }

    @Test func classifiedErrorsShareOneShape() throws {
        let failure = SyncFailure(kind: .retry(retryAfter: 2), message: "rate limited")
        #expect(failure.description == "retry(retryAfter: Optional(2.0)): rate limited")
        let thrown: any Error = failure
        #expect((thrown as? SyncFailure)?.kind == .retry(retryAfter: 2))
        #expect(thrown is SyncFailure)
        #expect(!(thrown is ClassifiedError<WebhookRejection.Status>))
    }

    @Test func webhookRejectionsAreFourHundreds() {
        #expect(WebhookRejection.Status.badRequest.rawValue == 400)
        #expect(WebhookRejection.Status.forbidden.rawValue == 403)
        #expect(WebhookRejection.Status.notFound.rawValue == 404)
        let rejection = WebhookRejection(.forbidden, "no", reason: "client_state_mismatch", itemReasons: ["unknown_subscription"])
        #expect(rejection.itemReasons == ["unknown_subscription"])
    }
}
