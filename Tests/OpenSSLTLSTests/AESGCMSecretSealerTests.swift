import Foundation
import OpenSSLTLS
import Testing

@Suite("Secrets at rest")
struct AESGCMSecretSealerTests {
    let sealer = try! AESGCMSecretSealer(key: Array(0..<32))

    @Test func roundTripsAndNeverRepeatsCiphertext() throws {
        let secret = Array("1//0refresh-token".utf8)
        let a = try sealer.seal(secret, context: "google_channel:c1")
        let b = try sealer.seal(secret, context: "google_channel:c1")
        #expect(a != b, "a fresh nonce each time")
        #expect(!a.windowsContain(secret))
        #expect(try sealer.open(a, context: "google_channel:c1") == secret)
        #expect(try sealer.open(try sealer.seal([], context: "x"), context: "x") == [])
    }

    @Test func refusesTamperedMovedOrForeignValues() throws {
        let sealed = try sealer.seal(Array("token".utf8), context: "google_channel:c1")
        #expect(throws: SecretSealingError.self) { try sealer.open(sealed, context: "google_channel:c2") }
        var flipped = sealed
        flipped[15] ^= 0x01
        #expect(throws: SecretSealingError.self) { try sealer.open(flipped, context: "google_channel:c1") }
        #expect(throws: SecretSealingError.self) { try sealer.open(Array(sealed.prefix(20)), context: "google_channel:c1") }
        #expect(throws: SecretSealingError.self) { try sealer.open([2] + sealed.dropFirst(), context: "google_channel:c1") }
        let other = try AESGCMSecretSealer(key: Array(repeating: 9, count: 32))
        #expect(throws: SecretSealingError.self) { try other.open(sealed, context: "google_channel:c1") }
        #expect(throws: SecretSealingError.self) { try AESGCMSecretSealer(key: [1, 2, 3]) }
    }

    @Test func keyFileIsCreatedPrivatelyAndReused() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try AESGCMSecretSealer.loadOrCreateKeyFile(dataDirectory: dir)
        #expect(first.created)
        let mode = try FileManager.default.attributesOfItem(atPath: first.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let sealed = try first.sealer.seal(Array("s".utf8), context: "c")
        let second = try AESGCMSecretSealer.loadOrCreateKeyFile(dataDirectory: dir)
        #expect(!second.created)
        #expect(try second.sealer.open(sealed, context: "c") == Array("s".utf8))
        _ = FileManager.default.createFile(atPath: first.path, contents: Data("not hex".utf8))
        #expect(throws: SecretSealingError.self) { try AESGCMSecretSealer.loadOrCreateKeyFile(dataDirectory: dir) }
    }
}

extension Array where Element == UInt8 {
    func windowsContain(_ needle: [UInt8]) -> Bool {
        guard needle.count <= count else { return false }
        return (0...(count - needle.count)).contains { Array(self[$0..<($0 + needle.count)]) == needle }
    }
}
