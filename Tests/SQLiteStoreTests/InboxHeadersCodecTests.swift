import Foundation
import Testing
@testable import SQLiteStore

/// The inbox `headers` column codec: round trips, reads what `JSONSerialization` wrote before, refuses garbage.
@Suite("Inbox headers codec")
struct InboxHeadersCodecTests {
    let awkward: [String: String] = [
        "x-goog-resource-uri": "https://www.googleapis.com/calendar/v3/calendars/primary/events?alt=json",
        "quote\"and\\back": "line\nbreak\ttab\r\u{01}control",
        "unicode": "Zürich – 東京 🗓",
        "empty": "",
    ]

    @Test func roundTripsAnyStrings() {
        #expect(InboxHeadersCodec.decode(InboxHeadersCodec.encode(awkward)) == awkward)
        #expect(InboxHeadersCodec.encode([:]) == "{}")
        #expect(InboxHeadersCodec.decode("{}") == [:])
        #expect(InboxHeadersCodec.encode(["b": "2", "a": "1"]) == #"{"a":"1","b":"2"}"#, "keys in byte order")
        #expect(InboxHeadersCodec.encode(["ab": "1", "a": "2", "B": "3", "é": "4", "": "5"]) == #"{"":"5","B":"3","a":"2","ab":"1","é":"4"}"#)
    }

    @Test func escapesAtEitherEndOfARun() {
        #expect(InboxHeadersCodec.encode(["k": "\"x\""]) == #"{"k":"\"x\""}"#)
        #expect(InboxHeadersCodec.encode(["k": "\u{1F}\\"]) == #"{"k":"\u001f\\"}"#)
        #expect(InboxHeadersCodec.encode(["k": "a\nb"]) == #"{"k":"a\nb"}"#)
    }

    @Test func encodesValidJSONThatFoundationReadsTheSame() throws {
        let text = InboxHeadersCodec.encode(awkward)
        let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String]
        #expect(parsed == awkward)
    }

    @Test func readsRowsWrittenByJSONSerialization() throws {
        let data = try JSONSerialization.data(withJSONObject: awkward, options: [.sortedKeys])
        #expect(InboxHeadersCodec.decode(String(decoding: data, as: UTF8.self)) == awkward)
        #expect(InboxHeadersCodec.decode(#"{ "a" : "x\/y", "s": "\ud83d\uddd3" }"#) == ["a": "x/y", "s": "🗓"])
    }

    @Test func garbageDecodesToNothing() {
        for text in ["", "[]", "{", #"{"a":1}"#, #"{"a":"unterminated}"#, #"{"a":"\ud83d"}"#, #"{"a":"b"} trailing"#, "null"] {
            #expect(InboxHeadersCodec.decode(text) == [:], "\(text)")
        }
    }
}
