import ArgumentParser
import Foundation
import GatewayCore
import OpenSSLTLS
import SecretSealing
import ProviderSimulators
import SQLiteStore

/// `seed`: writes connections with their calendar and its Google channel or Graph subscription into
/// `<data-dir>/calgate.sqlite` through the store's own methods, with every secret sealed by `<data-dir>/secret.key`
/// (created when missing, exactly as `calgate serve` does), so that `calgate serve --data-dir` starts on them.
/// Google connections share refresh token `1//bench`; Microsoft ones get `0.AAAA-seed-<i>` each (Graph rotates refresh
/// tokens). Channels and subscriptions expire days ahead, so start-up renews nothing.
struct Seed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write N connections with calendars and channels/subscriptions into a data directory.")

    @Option(name: .customLong("data-dir"), help: "Data directory (created when missing).")
    var dataDirectory: String

    @Option(help: "Connections to write.")
    var connections = 10_000

    @Option(name: .customLong("google-share"), help: "Share of connections that are Google (the rest Microsoft).")
    var googleShare = 0.5

    @Option(name: .customLong("google-refresh-token"))
    var googleRefreshToken = "1//bench"

    @Option(
        name: .customLong("microsoft-refresh-token-prefix"),
        help: """
            Microsoft connection i (from 0) gets refresh token <prefix><i>: Graph rotates refresh tokens on use, so \
            connections cannot share one. Start the Graph simulator with each (--refresh-token, repeatable).
            """)
    var microsoftRefreshTokenPrefix = "0.AAAA-seed-"

    @Option(
        name: .customLong("scratch-dir"),
        help: """
            Where the database is written before it is moved into the data directory (default /dev/shm when present): \
            40,000 transactions with synchronous=FULL on a shared disk take minutes; on tmpfs seconds.
            """)
    var scratchDirectory: String?

    func run() async throws {
        let started = ContinuousClock.now
        let fileManager = FileManager.default
        try fileManager.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let sealer = try AESGCMSecretSealer.loadOrCreateKeyFile(dataDirectory: dataDirectory).sealer
        var config = GatewayConfiguration()
        config.dataDirectory = dataDirectory
        guard !fileManager.fileExists(atPath: config.effectiveDatabasePath) else {
            throw ValidationError("\(config.effectiveDatabasePath) exists already; seed a fresh data directory")
        }
        let scratchBase = scratchDirectory ?? (fileManager.isWritableFile(atPath: "/dev/shm") ? "/dev/shm" : dataDirectory)
        let scratch = (scratchBase as NSString).appendingPathComponent("calgate-seed-\(UUID().uuidString)")
        try fileManager.createDirectory(atPath: scratch, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? fileManager.removeItem(atPath: scratch) }
        let scratchPath = (scratch as NSString).appendingPathComponent("calgate.sqlite")
        let store = try SQLiteStore(path: scratchPath)
        let googleCount = Int((Double(connections) * googleShare).rounded())
        let now = Date()
        // Written a few at a time: each store call is its own transaction, as in production.
        let width = 8
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<width {
                group.addTask {
                    var index = lane
                    while index < connections {
                        try await Self.write(index: index, google: index < googleCount, store: store, sealer: sealer, now: now, tokens: (googleRefreshToken, microsoftRefreshTokenPrefix + String(index - googleCount)))
                        index += width
                    }
                }
            }
            try await group.waitForAll()
        }
        let written = try await store.connections(userID: nil).count
        // Closing checkpoints the WAL into the file (TRUNCATE), so the one file is the whole database.
        await store.close()
        let data = try Data(contentsOf: URL(fileURLWithPath: scratchPath))
        try data.write(to: URL(fileURLWithPath: config.effectiveDatabasePath))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: config.effectiveDatabasePath))
        try handle.synchronize()
        try handle.close()
        emit([
            "connections": .integer(Int64(written)), "google": .integer(Int64(googleCount)),
            "microsoft": .integer(Int64(connections - googleCount)), "seconds": .number(seconds(ContinuousClock.now - started)),
            "database": .string(config.effectiveDatabasePath), "microsoft_refresh_token_prefix": .string(microsoftRefreshTokenPrefix),
        ])
    }

    static func write(index: Int, google: Bool, store: SQLiteStore, sealer: AESGCMSecretSealer, now: Date, tokens: (google: String, microsoft: String)) async throws {
        let id = (google ? "gc_" : "mc_") + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let connection = Connection(id: id, userID: "seed-user-\(index)", provider: google ? .google : .microsoft, createdAt: now)
        try await store.createConnection(
            connection,
            credentials: SealedCredentials(
                clientID: "bench",
                sealedClientSecret: try sealer.seal(Array("bench".utf8), context: "connection:\(id):client_secret"),
                sealedRefreshToken: try sealer.seal(Array((google ? tokens.google : tokens.microsoft).utf8), context: "connection:\(id):refresh_token")
            ))
        let calendarID = google ? "primary" : GraphSimulator.defaultCalendarID
        let calendar = ConnectionCalendar(connectionID: id, calendarID: calendarID, name: google ? "Primary" : "Calendar", selected: true)
        try await store.saveCalendars(connectionID: id, [calendar])
        let secret = (0..<24).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        if google {
            let channelID = UUID().uuidString.lowercased()
            let token = "c=\(calendar.calendarKey.utf8.count)&s=\(secret)"
            try await store.saveGoogleChannel(
                StoredGoogleChannel(
                    id: channelID, resourceID: "res-primary-\(channelID.prefix(8))",
                    sealedToken: try sealer.seal(Array(token.utf8), context: "google_channel:\(channelID)"),
                    calendarKey: calendar.calendarKey, expiresAt: now.addingTimeInterval(7 * 86_400), createdAt: now
                ))
        } else {
            let subscriptionID = UUID().uuidString.lowercased()
            try await store.saveGraphSubscription(
                StoredGraphSubscription(
                    id: subscriptionID, calendarKey: calendar.calendarKey,
                    sealedClientState: try sealer.seal(Array(secret.utf8), context: "graph_subscription:\(subscriptionID)"),
                    expiresAt: now.addingTimeInterval(4_230 * 60), createdAt: now
                ))
        }
    }
}
