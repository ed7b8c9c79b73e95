import COpenSSL
import Foundation
import GatewayCore

/// `SecretSealer` on OpenSSL's AES-256-GCM, with the context as AAD.
///
/// Sealed format: `0x02 | key id(4) | nonce(12) | ciphertext | tag(16)`, where the key id is the first four bytes of
/// SHA-256 of the key. Values written before key ids existed (`0x01 | nonce | ciphertext | tag`) still open.
///
/// A sealer holds one current key (used to seal) and any number of previous keys (only used to open), so a key
/// rotation that was interrupted half-way, or a gateway started during one, still opens every stored value.
public struct AESGCMSecretSealer: SecretSealer {
    private struct Key: Sendable {
        let bytes: [UInt8]
        let id: [UInt8]
    }

    private let current: Key
    private let previous: [Key]

    /// Uses a 32-byte key.
    public init(key: [UInt8]) throws {
        try self.init(current: key, previous: [])
    }

    /// Seals with `current`; opens with `current` or any of `previous` (32 bytes each).
    public init(current: [UInt8], previous: [[UInt8]]) throws {
        for key in [current] + previous where key.count != 32 {
            throw SecretSealingError("the secret key must be 32 bytes, got \(key.count)")
        }
        self.current = Key(bytes: current, id: try Self.keyID(current))
        self.previous = try previous.filter { $0 != current }.map { Key(bytes: $0, id: try Self.keyID($0)) }
    }

    /// The current key's id as 8 hex characters (safe to log: it identifies the key, it does not reveal it).
    public var keyID: String { current.id.map { String(format: "%02x", $0) }.joined() }

    /// The first four bytes of SHA-256 of `key`.
    static func keyID(_ key: [UInt8]) throws -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard EVP_Digest(key, key.count, &digest, &length, EVP_sha256(), nil) == 1, length >= 4 else {
            throw SecretSealingError("SHA-256 failed")
        }
        return Array(digest.prefix(4))
    }

    /// Reads `<dataDirectory>/secret.key` (64 hex characters), creating it (mode 0600) on first start.
    public static func loadOrCreateKeyFile(dataDirectory: String) throws -> (sealer: AESGCMSecretSealer, path: String, created: Bool) {
        let path = (dataDirectory as NSString).appendingPathComponent("secret.key")
        let loaded = try SecretKeyStore.load(keyFile: path, createIfMissing: true, environment: [:])
        return (loaded.sealer, path, loaded.created)
    }

    /// Seals with a fresh random nonce.
    public func seal(_ plaintext: [UInt8], context: String) throws -> [UInt8] {
        var nonce = [UInt8](repeating: 0, count: 12)
        guard RAND_bytes(&nonce, 12) == 1 else { throw SecretSealingError("the system random generator failed") }
        var tag = [UInt8](repeating: 0, count: 16)
        let ciphertext = try Self.gcm(encrypting: true, key: current.bytes, nonce: nonce, context: context, input: plaintext, tag: &tag)
        return [2] + current.id + nonce + ciphertext + tag
    }

    /// Opens and authenticates, with the key the value names (or, for the old format, whichever key opens it).
    public func open(_ sealed: [UInt8], context: String) throws -> [UInt8] {
        switch sealed.first {
        case 2?:
            guard sealed.count >= 1 + 4 + 12 + 16 else { throw SecretSealingError("sealed value is malformed") }
            let id = Array(sealed[1..<5])
            guard let key = ([current] + previous).first(where: { $0.id == id }) else {
                throw SecretSealingError("sealed value does not open: it was sealed with a key this gateway does not have (key id \(id.map { String(format: "%02x", $0) }.joined()))")
            }
            return try Self.open(Array(sealed[5...]), key: key.bytes, context: context)
        case 1?:
            guard sealed.count >= 1 + 12 + 16 else { throw SecretSealingError("sealed value is malformed") }
            var lastError: any Error = SecretSealingError("sealed value does not open")
            for key in [current] + previous {
                do { return try Self.open(Array(sealed[1...]), key: key.bytes, context: context) } catch { lastError = error }
            }
            throw lastError
        default:
            throw SecretSealingError("sealed value is malformed")
        }
    }

    /// `nonce(12) | ciphertext | tag(16)` under `key`.
    private static func open(_ body: [UInt8], key: [UInt8], context: String) throws -> [UInt8] {
        let nonce = Array(body[0..<12])
        let ciphertext = Array(body[12..<(body.count - 16)])
        var tag = Array(body[(body.count - 16)...])
        return try gcm(encrypting: false, key: key, nonce: nonce, context: context, input: ciphertext, tag: &tag)
    }

    /// AES-256-GCM over `input` under `key` and `nonce`, with `context` as the additional data. Encrypting, `tag`
    /// receives the tag; decrypting, `tag` is checked, and a value that does not authenticate throws.
    private static func gcm(encrypting: Bool, key: [UInt8], nonce: [UInt8], context: String, input: [UInt8], tag: inout [UInt8]) throws -> [UInt8] {
        let what = encrypting ? "encryption" : "decryption"
        guard let ctx = EVP_CIPHER_CTX_new() else { throw SecretSealingError("cipher context allocation failed") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        var out = [UInt8](repeating: 0, count: input.count + 16)
        var length: Int32 = 0
        var total = 0
        let aad = Array(context.utf8)
        guard EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), nil, key, nonce, encrypting ? 1 : 0) == 1,
            aad.isEmpty || EVP_CipherUpdate(ctx, nil, &length, aad, Int32(aad.count)) == 1
        else { throw SecretSealingError("\(what) setup failed") }
        if !input.isEmpty {
            guard EVP_CipherUpdate(ctx, &out, &length, input, Int32(input.count)) == 1 else { throw SecretSealingError("\(what) failed") }
            total = Int(length)
        }
        if !encrypting {
            guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, &tag) == 1 else { throw SecretSealingError("tag failed") }
        }
        let finalOK = out.withUnsafeMutableBufferPointer { EVP_CipherFinal_ex(ctx, $0.baseAddress! + total, &length) }
        ERR_clear_error()
        guard finalOK == 1 else {
            throw SecretSealingError(encrypting ? "encryption failed" : "sealed value does not open: wrong key, wrong context, or tampered")
        }
        total += Int(length)
        if encrypting {
            guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, &tag) == 1 else { throw SecretSealingError("tag failed") }
        }
        return Array(out.prefix(total))
    }

    static func hexBytes(_ text: String) -> [UInt8]? {
        guard text.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }
}

/// A secret could not be sealed or opened.
public struct SecretSealingError: Error, CustomStringConvertible, Sendable {
    /// What went wrong.
    public let description: String
    init(_ description: String) { self.description = description }
}
