import Foundation
import Testing
@testable import GatewayCore

private let catalog = RouteCatalog(
    handlers: [
        "admin.health": RouteHandlerSpec(kind: .admin, defaultBodyLimit: 0, methods: ["GET", "HEAD"]),
        "webhook.google": RouteHandlerSpec(kind: .webhook, defaultBodyLimit: 4096, methods: ["POST"]),
        "api.item": RouteHandlerSpec(kind: .api, defaultBodyLimit: 65_536, methods: ["GET", "PATCH"]),
    ],
    verifiers: ["admin_token", "google_channel"]
)

private func parse(_ json: String, file: String = "routes/t.json") throws(RouteTableError) -> [RouteEntry] {
    try RouteTableParser.parse(Data(json.utf8), file: file)
}

private func problems(_ json: String) throws -> [String] {
    RouteTableValidator(catalog: catalog).problems(in: RouteTable(entries: try parse(json))).map(\.description)
}

@Suite("Route table")
struct RouteTableTests {
    @Test func parsesAValidTable() throws {
        let entries = try parse(
            """
            {"routes": [
              {"method": "GET", "path": "/admin/health", "handler": "admin.health", "verifier": "none"},
              {"method": "POST", "path": "/webhooks/google", "handler": "webhook.google", "verifier": "google_channel", "body_limit": 1024},
              {"method": "PATCH", "path": "/api/v1/items/{id}", "handler": "api.item", "verifier": "admin_token"}
            ]}
            """)
        #expect(entries.count == 3)
        #expect(entries[1].bodyLimit == 1024)
        #expect(entries[2].position == 3)
        #expect(RouteTableValidator(catalog: catalog).problems(in: RouteTable(entries: entries)).isEmpty)
        let table = RouteTable(entries: entries)
        #expect(table.bodyLimit(for: entries[0], catalog: catalog) == 0)
        #expect(table.bodyLimit(for: entries[1], catalog: catalog) == 1024)
        #expect(table.bodyLimit(for: entries[2], catalog: catalog) == 65_536)
    }

    @Test func rejectsInvalidJSONNamingTheFile() {
        #expect(throws: RouteTableError.self) { try parse("{\"routes\": [", file: "routes/broken.json") }
        do {
            _ = try parse("{\"routes\": [", file: "routes/broken.json")
        } catch {
            #expect(error.description.hasPrefix("routes/broken.json: is not valid JSON"))
        }
    }

    @Test func rejectsUnknownKeysAtTopAndInEntries() throws {
        do {
            _ = try parse(#"{"routes": [], "extra": 1}"#)
            Issue.record("unknown top-level key accepted")
        } catch {
            #expect(error.description.contains("extra: is not a known key"))
        }
        do {
            _ = try parse(#"{"routes": [{"method": "GET", "path": "/a", "handler": "admin.health", "verifier": "none", "bodylimit": 5}]}"#)
            Issue.record("unknown entry key accepted")
        } catch {
            #expect(error.description.contains("route #1.bodylimit: is not a known key"))
        }
    }

    @Test func rejectsMissingFieldsAndWrongTypes() throws {
        let cases: [(String, String)] = [
            (#"{}"#, "has no \"routes\" array"),
            (#"{"routes": {}}"#, "routes: must be an array"),
            (#"{"routes": [5]}"#, "route #1: must be an object"),
            (#"{"routes": [{"path": "/a", "handler": "h", "verifier": "none"}]}"#, "route #1: is missing \"method\""),
            (#"{"routes": [{"method": "GET", "handler": "h", "verifier": "none"}]}"#, "is missing \"path\""),
            (#"{"routes": [{"method": "GET", "path": "/a", "verifier": "none"}]}"#, "is missing \"handler\""),
            (#"{"routes": [{"method": "GET", "path": "/a", "handler": "h"}]}"#, "is missing \"verifier\""),
            (#"{"routes": [{"method": "GET", "path": "/a", "handler": "h", "verifier": "none", "body_limit": "1k"}]}"#, "body_limit: must be an integer"),
            (#"{"routes": [{"method": "GET", "path": "/a", "handler": "h", "verifier": "none", "body_limit": -1}]}"#, "body_limit: must be between"),
            (#"{"routes": [{"method": 1, "path": "/a", "handler": "h", "verifier": "none"}]}"#, "method: must be a string"),
        ]
        for (json, expected) in cases {
            do {
                _ = try parse(json)
                Issue.record("accepted: \(json)")
            } catch {
                #expect(error.description.contains(expected), "\(error.description) should contain \(expected)")
            }
        }
    }

    @Test func rejectsUnknownHandlerAndVerifierKeys() throws {
        let found = try problems(
            #"""
            {"routes": [
              {"method": "GET", "path": "/a", "handler": "admin.helth", "verifier": "none"},
              {"method": "GET", "path": "/b", "handler": "admin.health", "verifier": "admin_tokn"}
            ]}
            """#)
        #expect(found.count == 2)
        #expect(found[0].contains("route #1 (GET /a): unknown handler key \"admin.helth\""))
        #expect(found[1].contains("route #2 (GET /b): unknown verifier key \"admin_tokn\""))
    }

    @Test func rejectsWebhookWithoutVerifier() throws {
        let found = try problems(#"{"routes": [{"method": "POST", "path": "/webhooks/google", "handler": "webhook.google", "verifier": "none"}]}"#)
        #expect(found.count == 1)
        #expect(found[0].contains("needs a verifier"))
    }

    @Test func rejectsDuplicatesIncludingRenamedParameters() throws {
        let first = try parse(#"{"routes": [{"method": "GET", "path": "/api/v1/items/{id}", "handler": "api.item", "verifier": "admin_token"}]}"#, file: "routes/a.json")
        let second = try parse(#"{"routes": [{"method": "GET", "path": "/api/v1/items/{item}", "handler": "api.item", "verifier": "admin_token"}]}"#, file: "routes/b.json")
        let found = RouteTableValidator(catalog: catalog).problems(in: RouteTable(entries: first + second)).map(\.description)
        #expect(found == ["routes/b.json: route #1 (GET /api/v1/items/{item}): duplicates routes/a.json: route #1 (GET /api/v1/items/{id})"])
        // Same path, other method: fine.
        let patch = try parse(#"{"routes": [{"method": "PATCH", "path": "/api/v1/items/{id}", "handler": "api.item", "verifier": "admin_token"}]}"#)
        #expect(RouteTableValidator(catalog: catalog).problems(in: RouteTable(entries: first + patch)).isEmpty)
    }

    @Test func rejectsBadMethodsPathsAndLimits() throws {
        let cases: [(String, String, String)] = [
            ("FETCH", "/a", "method \"FETCH\" is not one of"),
            ("GET", "a", "path must start with"),
            ("GET", "/a//b", "empty segment"),
            ("GET", "/a/", "empty segment"),
            ("GET", "/a/../b", "\"..\""),
            ("GET", "/a?x=1", "query"),
            ("GET", "/a/{}", "whole segment"),
            ("GET", "/a/x{id}", "whole segment"),
            ("GET", "/a/{id}/{id}", "appears twice"),
            ("GET", "/a/{i-d}", "letters, digits"),
            ("GET", "/a b", "characters outside"),
            ("POST", "/a", "does not answer POST"),
        ]
        for (method, path, expected) in cases {
            let found = try problems(#"{"routes": [{"method": "\#(method)", "path": "\#(path)", "handler": "admin.health", "verifier": "none"}]}"#)
            #expect(found.contains { $0.contains(expected) }, "\(method) \(path): \(found)")
        }
        let tooBig = try problems(#"{"routes": [{"method": "GET", "path": "/a", "handler": "admin.health", "verifier": "none", "body_limit": 999999999}]}"#)
        #expect(tooBig.contains { $0.contains("above the maximum") })
    }

    @Test func anEmptyTableIsInvalid() {
        #expect(RouteTableValidator(catalog: catalog).problems(in: RouteTable(entries: [])).map(\.message) == ["declares no routes"])
    }

    @Test func routesShippedInTheRepositoryParse() throws {
        let repoRoutes = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../routes")
        let files = try FileManager.default.contentsOfDirectory(atPath: repoRoutes.path).filter { $0.hasSuffix(".json") }
        #expect(!files.isEmpty)
        for file in files {
            let data = try Data(contentsOf: repoRoutes.appendingPathComponent(file))
            #expect(try !RouteTableParser.parse(data, file: file).isEmpty)
        }
    }
}
