/// One HTTP header field.
public struct CurlHTTPHeader: Sendable, Hashable {
    /// Field name as sent or received.
    public var name: String
    /// Field value.
    public var value: String

    /// Creates a header.
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}
