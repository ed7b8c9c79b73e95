import Foundation
import GatewayCore

/// Reads a bearer token from `<dataDirectory>/<name>` (`admin-token`, `api-token`), generating it (mode 0600) on
/// first start.
public enum AdminTokenFile {
    /// Where the token lives.
    public static func path(dataDirectory: String, name: String = "admin-token") -> String {
        (dataDirectory as NSString).appendingPathComponent(name)
    }

    /// The token and whether it was just generated.
    public static func loadOrGenerate(dataDirectory: String, name: String = "admin-token") throws(ConfigurationError) -> (token: String, generated: Bool) {
        let file = path(dataDirectory: dataDirectory, name: name)
        if FileManager.default.fileExists(atPath: file) {
            guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
                throw ConfigurationError(setting: file, message: "cannot be read; fix its permissions or delete it to generate a new token")
            }
            let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
            do {
                return (try GatewayConfiguration.validToken(token, path: file), false)
            } catch {
                throw ConfigurationError(setting: file, message: error.message + "; delete the file to generate a new token")
            }
        }
        let token = randomToken()
        let created = FileManager.default.createFile(
            atPath: file, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600]
        )
        guard created else {
            throw ConfigurationError(setting: file, message: "cannot be created; check that the data directory is writable")
        }
        return (token, true)
    }

    /// 32 random bytes as hex, from the system's cryptographic generator.
    public static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }
}
