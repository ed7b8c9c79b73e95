import COpenSSL
import Foundation

/// Where the key that seals stored secrets comes from, and how it is rotated.
///
/// The key is 32 random bytes written as 64 hex characters, either in `CALGATE_SECRET_KEY` or in a key file
/// (default `<data_dir>/secret.key`, created 0600 on first start, never inside the database).
/// `CALGATE_SECRET_KEY_PREVIOUS` (comma-separated) adds keys that only open. A rotation in progress leaves the new
/// key in `<key file>.next`, which is loaded as an opening key too, so every state an interrupted rotation can
/// leave behind still opens.
public enum SecretKeyStore {
    /// A loaded key ring.
    public struct Loaded: Sendable {
        /// Seals with the current key, opens with any.
        public let sealer: AESGCMSecretSealer
        /// Where the current key came from (a path or the variable's name; never the key).
        public let source: String
        /// True when the key file was generated just now.
        public let created: Bool
        /// Things the operator should fix (a key file others can read).
        public let warnings: [String]
    }

    /// The environment variable holding the current key.
    public static let environmentVariable = "CALGATE_SECRET_KEY"
    /// The environment variable holding previous keys (comma-separated), used only to open.
    public static let previousEnvironmentVariable = "CALGATE_SECRET_KEY_PREVIOUS"

    /// Where an in-progress rotation keeps the new key.
    public static func nextPath(_ keyFile: String) -> String { keyFile + ".next" }

    /// The key ring from the environment or the key file; the file is created only when `createIfMissing`.
    public static func load(keyFile: String, createIfMissing: Bool, environment: [String: String]) throws -> Loaded {
        var previous: [[UInt8]] = []
        if let list = environment[previousEnvironmentVariable], !list.isEmpty {
            for (index, text) in list.split(separator: ",").enumerated() {
                guard let key = hexKey(String(text)) else {
                    throw SecretSealingError("\(previousEnvironmentVariable): entry \(index + 1) is not 64 hex characters")
                }
                previous.append(key)
            }
        }
        if let text = environment[environmentVariable] {
            guard let key = hexKey(text) else {
                throw SecretSealingError("\(environmentVariable) must be 64 hex characters (generate one with `openssl rand -hex 32`)")
            }
            return Loaded(sealer: try AESGCMSecretSealer(current: key, previous: previous), source: environmentVariable, created: false, warnings: [])
        }
        var warnings: [String] = []
        var created = false
        let key: [UInt8]
        if FileManager.default.fileExists(atPath: keyFile) {
            key = try read(keyFile)
            if let mode = try? FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as? Int, mode & 0o077 != 0 {
                warnings.append("\(keyFile) can be read by other users (mode \(String(mode, radix: 8))); run chmod 600 on it")
            }
        } else if createIfMissing {
            key = try generateKey()
            try write(key, to: keyFile)
            created = true
        } else {
            throw SecretSealingError("\(keyFile): the secret key file does not exist; restore it from backup or point secret_key_file at it")
        }
        let next = nextPath(keyFile)
        if FileManager.default.fileExists(atPath: next) {
            previous.append(try read(next))
            warnings.append("\(next) exists: a key rotation did not finish; run `calgate secrets rotate` again")
        }
        return Loaded(sealer: try AESGCMSecretSealer(current: key, previous: previous), source: keyFile, created: created, warnings: warnings)
    }

    /// Step one of a rotation: the new key, from `<keyFile>.next` when an earlier run left one, otherwise generated
    /// and written there (0600) before anything is re-sealed.
    public static func prepareRotation(keyFile: String) throws -> (key: [UInt8], resumed: Bool) {
        let next = nextPath(keyFile)
        if FileManager.default.fileExists(atPath: next) { return (try read(next), true) }
        let key = try generateKey()
        try write(key, to: next)
        return (key, false)
    }

    /// Last step of a rotation, after every secret was re-sealed and committed: the old key file is kept as
    /// `<keyFile>.<UTC timestamp>.bak` (0600) and the new key takes its place by an atomic rename.
    public static func finishRotation(keyFile: String, now: Date = Date()) throws -> String? {
        let next = nextPath(keyFile)
        var backup: String?
        if FileManager.default.fileExists(atPath: keyFile) {
            let old = try read(keyFile)
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "UTC")
            formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
            var path = "\(keyFile).\(formatter.string(from: now)).bak"
            var suffix = 1
            while FileManager.default.fileExists(atPath: path) {
                suffix += 1
                path = "\(keyFile).\(formatter.string(from: now))-\(suffix).bak"
            }
            try write(old, to: path)
            backup = path
        }
        guard rename(next, keyFile) == 0 else {
            throw SecretSealingError("\(next): cannot be renamed to \(keyFile) (\(String(cString: strerror(errno)))); rename it by hand")
        }
        syncDirectory(of: keyFile)
        return backup
    }

    /// 32 bytes from OpenSSL's generator.
    public static func generateKey() throws -> [UInt8] {
        var key = [UInt8](repeating: 0, count: 32)
        guard RAND_bytes(&key, 32) == 1 else { throw SecretSealingError("the system random generator failed") }
        return key
    }

    /// Reads a key file (64 hex characters).
    public static func readKey(_ path: String) throws -> [UInt8] { try read(path) }

    static func read(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path),
            let key = hexKey(String(decoding: data, as: UTF8.self))
        else {
            throw SecretSealingError("\(path): is not 64 hex characters; restore it from backup (secrets sealed with it cannot be opened without it)")
        }
        return key
    }

    /// Writes a new file (never overwrites), mode 0600, synced to disk with its directory entry.
    static func write(_ key: [UInt8], to path: String) throws {
        let text = key.map { String(format: "%02x", $0) }.joined() + "\n"
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw SecretSealingError("\(path): cannot be created (\(String(cString: strerror(errno))))") }
        let written = text.utf8CString.withUnsafeBufferPointer { Glibc.write(fd, $0.baseAddress, $0.count - 1) }
        let synced = fsync(fd)
        close(fd)
        guard written == text.utf8.count, synced == 0 else {
            unlink(path)
            throw SecretSealingError("\(path): could not be written completely")
        }
        syncDirectory(of: path)
    }

    static func syncDirectory(of path: String) {
        let directory = (path as NSString).deletingLastPathComponent
        let fd = Glibc.open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }

    /// 64 hex characters as 32 bytes; nil otherwise.
    public static func hexKey(_ text: String) -> [UInt8]? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.utf8.count == 64 else { return nil }
        return AESGCMSecretSealer.hexBytes(trimmed)
    }
}
