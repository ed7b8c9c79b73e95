import Foundation
import OpenSSLTLS
import SecretSealing
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
        #expect(throws: SecretSealingError.self) { try sealer.open([3] + sealed.dropFirst(), context: "google_channel:c1") }
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

@Suite("Secret key ring and rotation")
struct SecretKeyRingTests {
    let oldKey = Array(repeating: UInt8(1), count: 32)
    let newKey = Array(repeating: UInt8(2), count: 32)

    @Test func previousKeysOpenButOnlyTheCurrentOneSeals() throws {
        let old = try AESGCMSecretSealer(key: oldKey)
        let ring = try AESGCMSecretSealer(current: newKey, previous: [oldKey])
        let sealedOld = try old.seal(Array("s".utf8), context: "c")
        #expect(try ring.open(sealedOld, context: "c") == Array("s".utf8))
        let sealedNew = try ring.seal(Array("s".utf8), context: "c")
        #expect(Array(sealedNew[1..<5]) != Array(sealedOld[1..<5]), "each value names its key")
        #expect(throws: SecretSealingError.self) { try old.open(sealedNew, context: "c") }
        #expect(ring.keyID != old.keyID)
        #expect(ring.keyID.count == 8)
    }

    @Test func valuesSealedBeforeKeyIDsStillOpen() throws {
        // The first format: 0x01 | nonce | ciphertext | tag, made here by hand from a v2 value.
        let ring = try AESGCMSecretSealer(current: newKey, previous: [oldKey])
        let v2 = try AESGCMSecretSealer(key: oldKey).seal(Array("legacy".utf8), context: "c")
        let v1 = [1] + Array(v2.dropFirst(5))
        #expect(try ring.open(v1, context: "c") == Array("legacy".utf8))
        #expect(throws: SecretSealingError.self) { try AESGCMSecretSealer(key: newKey).open(v1, context: "c") }
    }

    @Test func theKeyComesFromTheEnvironmentBeforeAnyFile() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let hex = newKey.map { String(format: "%02x", $0) }.joined()
        let oldHex = oldKey.map { String(format: "%02x", $0) }.joined()
        let loaded = try SecretKeyStore.load(
            keyFile: dir + "/secret.key", createIfMissing: true,
            environment: ["CALGATE_SECRET_KEY": hex, "CALGATE_SECRET_KEY_PREVIOUS": oldHex]
        )
        #expect(loaded.source == "CALGATE_SECRET_KEY")
        #expect(!FileManager.default.fileExists(atPath: dir + "/secret.key"))
        let fromOld = try AESGCMSecretSealer(key: oldKey).seal([7], context: "c")
        #expect(try loaded.sealer.open(fromOld, context: "c") == [7])
        #expect(throws: SecretSealingError.self) {
            try SecretKeyStore.load(keyFile: dir + "/secret.key", createIfMissing: true, environment: ["CALGATE_SECRET_KEY": "abc"])
        }
        #expect(throws: SecretSealingError.self) {
            try SecretKeyStore.load(keyFile: dir + "/configured.key", createIfMissing: false, environment: [:])
        }
    }

    @Test func everyStateOfAnInterruptedRotationOpensAndFinishes() throws {
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let keyFile = dir + "/secret.key"
        let first = try SecretKeyStore.load(keyFile: keyFile, createIfMissing: true, environment: [:])
        #expect(first.created)
        let sealed = try first.sealer.seal([42], context: "c")
        // Step 1 written, then the process died: running again reuses the same new key.
        let next = try SecretKeyStore.prepareRotation(keyFile: keyFile)
        #expect(!next.resumed)
        #expect(try SecretKeyStore.prepareRotation(keyFile: keyFile).key == next.key)
        #expect(try SecretKeyStore.prepareRotation(keyFile: keyFile).resumed)
        #expect(try FileManager.default.attributesOfItem(atPath: SecretKeyStore.nextPath(keyFile))[.posixPermissions] as? Int == 0o600)
        // Re-sealed (committed) but not renamed: serve loads `.next` as an opening key and says so.
        let resealed = try AESGCMSecretSealer(current: next.key, previous: []).seal([42], context: "c")
        let during = try SecretKeyStore.load(keyFile: keyFile, createIfMissing: true, environment: [:])
        #expect(try during.sealer.open(resealed, context: "c") == [42])
        #expect(try during.sealer.open(sealed, context: "c") == [42])
        #expect(during.warnings.contains { $0.contains("did not finish") })
        // Finished: the new key is in place, the old one kept 0600.
        let backup = try #require(try SecretKeyStore.finishRotation(keyFile: keyFile, now: Date(timeIntervalSince1970: 1_800_000_000)))
        #expect(backup.hasSuffix("secret.key.20270115T080000Z.bak"))
        #expect(try FileManager.default.attributesOfItem(atPath: backup)[.posixPermissions] as? Int == 0o600)
        #expect(try SecretKeyStore.readKey(backup) != SecretKeyStore.readKey(keyFile))
        #expect(try SecretKeyStore.readKey(keyFile) == next.key)
        let after = try SecretKeyStore.load(keyFile: keyFile, createIfMissing: false, environment: [:])
        #expect(after.warnings.isEmpty)
        #expect(try after.sealer.open(resealed, context: "c") == [42])
        #expect(throws: SecretSealingError.self) { try after.sealer.open(sealed, context: "c") }
    }
}

extension Array where Element == UInt8 {
    func windowsContain(_ needle: [UInt8]) -> Bool {
        guard needle.count <= count else { return false }
        return (0...(count - needle.count)).contains { Array(self[$0..<($0 + needle.count)]) == needle }
    }
}
