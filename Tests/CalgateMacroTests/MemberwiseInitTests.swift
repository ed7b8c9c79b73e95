import CalgateMacroPlugin
import SwiftSyntaxMacroExpansion
import SwiftSyntaxMacrosGenericTestSupport
import Testing

@Suite("@MemberwiseInit")
struct MemberwiseInitTests {
    let macros = ["MemberwiseInit": MacroSpec(type: MemberwiseInitMacro.self)]

    func expect(_ source: String, expands expected: String, diagnostics: [DiagnosticSpec] = [], sourceLocation: SourceLocation = #_sourceLocation) {
        assertMacroExpansion(source, expandedSource: expected, diagnostics: diagnostics, macroSpecs: macros) { failure in
            Issue.record(Comment(rawValue: failure.message), sourceLocation: sourceLocation)
        }
    }

    @Test func everyStoredPropertyIsAParameterInOrder() {
        expect(
            """
            @MemberwiseInit
            public struct Record: Sendable {
                /// The id.
                public var id: String
                public let count: Int
                public var note: String?
            }
            """,
            expands: """
                public struct Record: Sendable {
                    /// The id.
                    public var id: String
                    public let count: Int
                    public var note: String?

                    public init(id: String, count: Int, note: String?) {
                        self.id = id
                        self.count = count
                        self.note = note
                    }
                }
                """)
    }

    @Test func initialValuesBecomeDefaultsAndFixedLetsAreLeftOut() {
        expect(
            """
            @MemberwiseInit
            struct Settings {
                var status: String = "confirmed"
                let version = 2
                var tags: [String] = []
            }
            """,
            expands: """
                struct Settings {
                    var status: String = "confirmed"
                    let version = 2
                    var tags: [String] = []

                    public init(status: String = "confirmed", tags: [String] = []) {
                        self.status = status
                        self.tags = tags
                    }
                }
                """)
    }

    @Test func computedStaticAndObservedPropertiesAreHandled() {
        expect(
            """
            @MemberwiseInit
            struct Counter {
                static let zero = 0
                var value: Int { didSet { print(value) } }
                var doubled: Int { value * 2 }
                var bounded: Int {
                    get { value }
                    set { value = newValue }
                }
            }
            """,
            expands: """
                struct Counter {
                    static let zero = 0
                    var value: Int { didSet { print(value) } }
                    var doubled: Int { value * 2 }
                    var bounded: Int {
                        get { value }
                        set { value = newValue }
                    }

                    public init(value: Int) {
                        self.value = value
                    }
                }
                """)
    }

    @Test func closuresEscapeAndGroupedDeclarationsShareTheirType() {
        expect(
            """
            @MemberwiseInit
            struct Hooks {
                var hour, minute: Int
                var run: @Sendable (Int) async throws -> Void
                var optional: (@Sendable () -> Void)?
            }
            """,
            expands: """
                struct Hooks {
                    var hour, minute: Int
                    var run: @Sendable (Int) async throws -> Void
                    var optional: (@Sendable () -> Void)?

                    public init(hour: Int, minute: Int, run: @escaping @Sendable (Int) async throws -> Void, optional: (@Sendable () -> Void)?) {
                        self.hour = hour
                        self.minute = minute
                        self.run = run
                        self.optional = optional
                    }
                }
                """)
    }

    @Test func aClassOrAnUntypedPropertyIsRefusedWithAClearMessage() {
        expect(
            """
            @MemberwiseInit
            final class Box {
                var value: Int
            }
            """,
            expands: """
                final class Box {
                    var value: Int
                }
                """,
            diagnostics: [DiagnosticSpec(message: "@MemberwiseInit applies to structs only", line: 1, column: 1)])
        expect(
            """
            @MemberwiseInit
            struct Guess {
                var value = 3
            }
            """,
            expands: """
                struct Guess {
                    var value = 3
                }
                """,
            diagnostics: [
                DiagnosticSpec(
                    message: "@MemberwiseInit needs the type of 'value' written out (it cannot infer it from the initial value)", line: 3, column: 9)
            ])
    }
}
