import ArgumentParser
import Foundation
import GatewayCore
import OpenSSLTLS
import SecretSealing
import SQLiteStore

/// `calgate secrets rotate`: re-seal every stored secret under a new key.
struct Secrets: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the key that seals stored secrets.",
        subcommands: [Rotate.self]
    )

    /// Re-seals every secret under a new key in one transaction.
    ///
    /// Key file: the new key is written to `<key file>.next` first (reused if an earlier run left one), every secret
    /// is opened with any known key and re-sealed under the new one in one transaction, then the old key file is
    /// kept as `<key file>.<UTC time>.bak` (0600) and `.next` is renamed over it. Every step is safe to repeat: a
    /// run interrupted anywhere is finished by running the command again, and `serve` opens secrets in every
    /// state in between. With `CALGATE_SECRET_KEY`, put the new key there and the old one in
    /// `CALGATE_SECRET_KEY_PREVIOUS`, then run the command.
    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-seal every stored secret under a new key (stop the gateway first).",
            discussion: """
                Safe to re-run: an interrupted rotation is finished by running it again. The old key file is kept as \
                <key file>.<UTC time>.bak (mode 0600); delete it once the database backups sealed with it have expired.
                """
        )

        @OptionGroup var options: ServeOptions

        func run() async throws {
            let config = try options.loadConfiguration()
            let environment = ProcessInfo.processInfo.environment
            let keyFile = config.effectiveSecretKeyFile
            let fromEnvironment = environment[SecretKeyStore.environmentVariable] != nil
            if config.postgresURL != nil {
                // Re-sealing runs on the one SQLite writer thread; on a shared PostgreSQL every instance would have to
                // take the new key at once, which this command cannot arrange.
                throw CLIError("secrets rotate works on the SQLite store only; this configuration uses PostgreSQL (see the README's PostgreSQL section)")
            }
            guard FileManager.default.fileExists(atPath: config.effectiveDatabasePath) else {
                throw CLIError("\(config.effectiveDatabasePath): no database to rotate; check --config / --data-dir")
            }
            let sealer: AESGCMSecretSealer
            var resumed = false
            do {
                let loaded = try SecretKeyStore.load(keyFile: keyFile, createIfMissing: false, environment: environment)
                if fromEnvironment {
                    // The environment already names the new key (current) and the old ones (previous).
                    sealer = loaded.sealer
                } else {
                    let next = try SecretKeyStore.prepareRotation(keyFile: keyFile)
                    resumed = next.resumed
                    sealer = try AESGCMSecretSealer(current: next.key, previous: try Self.openingKeys(keyFile: keyFile, environment: environment))
                }
            } catch let error as CLIError {
                throw error
            } catch {
                throw CLIError("\(error)")
            }
            let store: SQLiteStore
            do { store = try SQLiteStore(path: config.effectiveDatabasePath) } catch { throw CLIError("\(error)") }
            let count: Int
            do {
                count = try await store.resealAllSecrets { sealed, context in
                    try sealer.seal(try sealer.open(sealed, context: context), context: context)
                }
                try await store.checkpoint()
            } catch {
                await store.close()
                throw CLIError("nothing was changed: \(error); fix the cause and run `calgate secrets rotate` again")
            }
            await store.close()
            if fromEnvironment {
                print("re-sealed \(count) secrets under the key in \(SecretKeyStore.environmentVariable) (key id \(sealer.keyID)); remove \(SecretKeyStore.previousEnvironmentVariable) once every instance runs with the new key")
                return
            }
            do {
                let backup = try SecretKeyStore.finishRotation(keyFile: keyFile)
                print("re-sealed \(count) secrets under a new key (key id \(sealer.keyID))\(resumed ? ", finishing an interrupted rotation" : "")")
                print("new key: \(keyFile)")
                if let backup { print("old key kept as \(backup) (mode 0600)") }
            } catch {
                throw CLIError("the secrets are re-sealed but the key file was not replaced: \(error)")
            }
        }

        /// Every key that may have sealed a stored value: the key file, the environment's previous keys, `.next`.
        static func openingKeys(keyFile: String, environment: [String: String]) throws -> [[UInt8]] {
            var keys: [[UInt8]] = []
            if FileManager.default.fileExists(atPath: keyFile) { keys.append(try SecretKeyStore.readKey(keyFile)) }
            let next = SecretKeyStore.nextPath(keyFile)
            if FileManager.default.fileExists(atPath: next) { keys.append(try SecretKeyStore.readKey(next)) }
            if let list = environment[SecretKeyStore.previousEnvironmentVariable] {
                for text in list.split(separator: ",") {
                    guard let key = SecretKeyStore.hexKey(String(text)) else { throw CLIError("\(SecretKeyStore.previousEnvironmentVariable) holds a value that is not 64 hex characters") }
                    keys.append(key)
                }
            }
            return keys
        }
    }
}
