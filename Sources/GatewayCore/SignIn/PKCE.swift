/// Proof Key for Code Exchange (RFC 7636) with the S256 method: a random verifier kept (sealed) by the gateway and
/// its SHA-256 challenge sent in the consent URL, so a stolen authorization code is useless without the verifier.
public struct PKCE: Sendable, Hashable {
    /// The only method calgate sends (`plain` offers no protection against a code seen in transit).
    public static let method = "S256"
    /// The code verifier: 43 to 128 unreserved characters.
    public let verifier: String

    /// A fresh verifier of 32 random bytes (43 base64url characters, RFC 7636 §4.1's recommendation).
    public init<Generator: RandomNumberGenerator>(using generator: inout Generator) {
        verifier = Base64URL.encode(SignInRandom.bytes(32, using: &generator))
    }

    /// A fresh verifier from the system's secure generator.
    public init() {
        var generator = SystemRandomNumberGenerator()
        self.init(using: &generator)
    }

    /// A verifier given as text, or nil when it is not 43 to 128 of `A-Z a-z 0-9 - . _ ~` (RFC 7636 §4.1).
    public init?(verifier: String) {
        guard (43...128).contains(verifier.utf8.count), verifier.utf8.allSatisfy(Base64URL.isUnreserved) else { return nil }
        self.verifier = verifier
    }

    /// `BASE64URL(SHA256(ASCII(verifier)))`, what the consent URL carries as `code_challenge`.
    public var challenge: String { Self.challenge(for: verifier) }

    /// The S256 challenge of any verifier (the simulators check a presented verifier with it).
    public static func challenge(for verifier: String) -> String { Base64URL.encode(SHA256.hash(Array(verifier.utf8))) }
}

/// Base64url without padding (RFC 4648 §5), as PKCE and `state` use it.
public enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Encodes `bytes` without `=` padding.
    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index + 3 <= bytes.count {
            let n = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], alphabet[Int(n & 63)]]
            index += 3
        }
        let rest = bytes.count - index
        if rest == 1 {
            let n = UInt32(bytes[index]) << 16
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)]]
        } else if rest == 2 {
            let n = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)]]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether `byte` is one of RFC 3986's unreserved characters.
    public static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"): true
        default: false
        }
    }
}

/// Random values for sign-in: the `state` parameter, verifiers and authorization ids.
public enum SignInRandom {
    /// `count` bytes from `generator` (the system's is a CSPRNG: getrandom on Linux).
    public static func bytes<Generator: RandomNumberGenerator>(_ count: Int, using generator: inout Generator) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// A `state` value: 32 random bytes, base64url (43 characters).
    public static func state<Generator: RandomNumberGenerator>(using generator: inout Generator) -> String {
        Base64URL.encode(bytes(32, using: &generator))
    }

    /// An authorization id: `au_` and 32 hex digits.
    public static func authorizationID<Generator: RandomNumberGenerator>(using generator: inout Generator) -> String {
        "au_" + bytes(16, using: &generator).map { byte in String(byte, radix: 16).count == 1 ? "0" + String(byte, radix: 16) : String(byte, radix: 16) }.joined()
    }
}
