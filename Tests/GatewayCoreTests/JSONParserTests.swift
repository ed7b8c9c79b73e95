import Foundation
@testable import GatewayCore
import Testing

/// `JSONValue.parse`: the same values Foundation reads, strictness on every kind of bad input, bounded depth.
@Suite("JSON parser")
struct JSONParserTests {
    func parse(_ text: String) throws(JSONDocumentError) -> JSONValue { try JSONValue.parse(Data(text.utf8)) }

    @Test func readsEveryKindOfValue() throws {
        let value = try parse(#" {"a": [1, -2, 3.5, 1e3, -0.25E-2, 9223372036854775807, 9223372036854775808], "b": true, "c": false, "d": null, "e": {}, "f": [], "g": "x"} "#)
        #expect(
            value
                == .object([
                    "a": .array([.integer(1), .integer(-2), .number(3.5), .number(1000), .number(-0.0025), .integer(Int64.max), .number(9223372036854775808)]),
                    "b": .bool(true), "c": .bool(false), "d": .null, "e": .object([:]), "f": .array([]), "g": .string("x"),
                ]))
        #expect(try parse("0") == .integer(0))
        #expect(try parse(#""only""#) == .string("only"))
    }

    @Test func decodesEscapesAndUnicode() throws {
        #expect(try parse(#""q\" b\\ s\/ \b\f\n\r\t \u00e9 \ud83d\uddd3 Zürich""#) == .string("q\" b\\ s/ \u{08}\u{0C}\n\r\t é 🗓 Zürich"))
    }

    @Test func agreesWithFoundationOnAProviderPage() throws {
        let page = #"{"kind":"calendar#events","items":[{"id":"e1","summary":"Lunch \u2014 \"team\"","start":{"dateTime":"2026-11-25T12:00:00+01:00"},"sequence":3,"attendees":[{"email":"a@example.com","responseStatus":"accepted"}]}],"nextSyncToken":"CPD1"}"#
        let ours = try parse(page)
        let foundation = try JSONDecoder().decode(JSONValue.self, from: Data(page.utf8))
        #expect(ours == foundation)
    }

    @Test func refusesEveryKindOfBadInput() {
        let bad = [
            "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{'a':1}", "{\"a\" 1}", "[1 2]", "01", "-", "1.", ".5", "1e", "+1",
            "tru", "nul", "\"unterminated", "\"raw \u{01} control\"", "\"bad \\x escape\"", "\"\\ud83d\"", "\"\\udc00\"",
            "\"\\u12\"", "[1] 2", "NaN", "1e400", "{\"a\":1}}",
        ]
        for text in bad {
            #expect(throws: JSONDocumentError.self, "\(text.debugDescription)") { try parse(text) }
        }
        #expect(throws: JSONDocumentError.self) { try JSONValue.parse(Data([0x22, 0xFF, 0xFE, 0x22])) }
    }

    @Test func nestingIsBounded() throws {
        let ok = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        #expect(throws: Never.self) { try parse(ok) }
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        do {
            _ = try parse(deep)
            Issue.record("accepted 100,000 levels")
        } catch {
            #expect(error.message.contains("nesting deeper than 512"))
        }
    }
}
