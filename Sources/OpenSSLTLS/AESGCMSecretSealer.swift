import COpenSSL
import Foundation
import GatewayCore

/// `SecretSealer` on OpenSSL's AES-256-GCM: `0x01 | nonce(12) | ciphertext | tag(16)`, the context as AAD.
public struct AESGCMSecretSealer: SecretSealer {
    private let key: [UInt8]

    /// Uses a 32-byte key.
    public init(key: [UInt8]) throws {
        guard key.count == 32 else { throw SecretSealingError("the secret key must be 32 bytes, got \(key.count)") }
        self.key = key
    }

    /// Reads `<dataDirectory>/secret.key` (64 hex characters), creating it (mode 0600) on first start.
    public static func loadOrCreateKeyFile(dataDirectory: String) throws -> (sealer: AESGCMSecretSealer, path: String, created: Bool) {
        let path = (dataDirectory as NSString).appendingPathComponent("secret.key")
        if FileManager.default.fileExists(atPath: path) {
            guard let data = FileManager.default.contents(atPath: path),
                  let key = hexBytes(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)),
                  key.count == 32
            else {
                throw SecretSealingError("\(path): is not 64 hex characters; restore it from backup (secrets sealed with it cannot be opened without it)")
            }
            return (try AESGCMSecretSealer(key: key), path, false)
        }
        var key = [UInt8](repeating: 0, count: 32)
        guard RAND_bytes(&key, 32) == 1 else { throw SecretSealingError("the system random generator failed") }
        let text = key.map { String(format: "%02x", $0) }.joined() + "\n"
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw SecretSealingError("\(path): cannot be created (\(String(cString: strerror(errno))))") }
        let written = text.utf8CString.withUnsafeBufferPointer { Glibc.write(fd, $0.baseAddress, $0.count - 1) }
        fsync(fd)
        close(fd)
        guard written == text.utf8.count else { throw SecretSealingError("\(path): could not be written completely") }
        return (try AESGCMSecretSealer(key: key), path, true)
    }

    /// Seals with a fresh random nonce.
    public func seal(_ plaintext: [UInt8], context: String) throws -> [UInt8] {
        var nonce = [UInt8](repeating: 0, count: 12)
        guard RAND_bytes(&nonce, 12) == 1 else { throw SecretSealingError("the system random generator failed") }
        guard let ctx = EVP_CIPHER_CTX_new() else { throw SecretSealingError("cipher context allocation failed") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        var out = [UInt8](repeating: 0, count: plaintext.count + 16)
        var length: Int32 = 0
        var total = 0
        let aad = Array(context.utf8)
        guard EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key, nonce) == 1,
              aad.isEmpty || EVP_EncryptUpdate(ctx, nil, &length, aad, Int32(aad.count)) == 1
        else { throw SecretSealingError("encryption setup failed") }
        if !plaintext.isEmpty {
            guard EVP_EncryptUpdate(ctx, &out, &length, plaintext, Int32(plaintext.count)) == 1 else { throw SecretSealingError("encryption failed") }
            total = Int(length)
        }
        let finalOK = out.withUnsafeMutableBufferPointer { EVP_EncryptFinal_ex(ctx, $0.baseAddress! + total, &length) }
        guard finalOK == 1 else { throw SecretSealingError("encryption failed") }
        total += Int(length)
        var tag = [UInt8](repeating: 0, count: 16)
        guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, &tag) == 1 else { throw SecretSealingError("tag failed") }
        return [1] + nonce + out.prefix(total) + tag
    }

    /// Opens and authenticates.
    public func open(_ sealed: [UInt8], context: String) throws -> [UInt8] {
        guard sealed.count >= 1 + 12 + 16, sealed[0] == 1 else { throw SecretSealingError("sealed value is malformed") }
        let nonce = Array(sealed[1..<13])
        let ciphertext = Array(sealed[13..<(sealed.count - 16)])
        var tag = Array(sealed[(sealed.count - 16)...])
        guard let ctx = EVP_CIPHER_CTX_new() else { throw SecretSealingError("cipher context allocation failed") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        var out = [UInt8](repeating: 0, count: ciphertext.count + 16)
        var length: Int32 = 0
        var total = 0
        let aad = Array(context.utf8)
        guard EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key, nonce) == 1,
              aad.isEmpty || EVP_DecryptUpdate(ctx, nil, &length, aad, Int32(aad.count)) == 1
        else { throw SecretSealingError("decryption setup failed") }
        if !ciphertext.isEmpty {
            guard EVP_DecryptUpdate(ctx, &out, &length, ciphertext, Int32(ciphertext.count)) == 1 else { throw SecretSealingError("decryption failed") }
            total = Int(length)
        }
        guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, &tag) == 1 else { throw SecretSealingError("tag failed") }
        let finalOK = out.withUnsafeMutableBufferPointer { EVP_DecryptFinal_ex(ctx, $0.baseAddress! + total, &length) }
        ERR_clear_error()
        guard finalOK == 1 else {
            throw SecretSealingError("sealed value does not open: wrong key, wrong context, or tampered")
        }
        total += Int(length)
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
