import Foundation
import GatewayCore
import Synchronization

/// Opened verification secrets (channel tokens, clientStates: `WebhookCredential`) by verifier and id, so a
/// webhook is verified on the event loop without a store read or an AES-GCM open per request.
///
/// Exact, not time-based: every entry belongs to one `GatewayStore.webhookCredentialsVersion`, and the whole cache is
/// forgotten when the store reports a newer version (a channel saved or stopped, a subscription saved, renewed or
/// removed). A lookup that raced such a write is not kept, because it is inserted only under the version read before
/// it started. Unknown ids are remembered too (as nil), so a flood of forged ids does not reach the store.
public final class WebhookCredentialCache: Sendable {
    /// What the store said about one id: the credential, or nil for no such row.
    public typealias Credential = WebhookCredential?

    /// A cache miss: look the id up, then `insert` under this version.
    public struct Miss: Sendable {
        /// The store version read before the lookup started.
        public let version: UInt64
    }

    /// What `lookup` found.
    public enum Lookup: Sendable {
        /// The cached credential.
        case hit(Credential)
        /// Not cached: read the store, then `insert` with this.
        case miss(Miss)
    }

    private struct State {
        var version: UInt64 = 0
        var entries: [String: Credential] = [:]
    }

    private let state = Mutex(State())
    private let currentVersion: @Sendable () -> UInt64
    private let capacity: Int

    /// Creates a cache that follows `version` (normally the store's `webhookCredentialsVersion`); at most `capacity` ids.
    public init(capacity: Int = 100_000, version: @escaping @Sendable () -> UInt64) {
        self.capacity = capacity
        self.currentVersion = version
    }

    /// The cached credential for `key`, or the version to insert a lookup under.
    public func lookup(_ key: String) -> Lookup {
        let version = currentVersion()
        return state.withLock { state in
            if state.version != version {
                state.entries.removeAll(keepingCapacity: true)
                state.version = version
            }
            if let hit = state.entries[key] { return .hit(hit) }
            return .miss(Miss(version: version))
        }
    }

    /// Remembers a lookup made after `miss`, unless the store changed since (then the next request looks again).
    public func insert(_ credential: Credential, for key: String, after miss: Miss) {
        let version = currentVersion()
        guard version == miss.version else { return }
        state.withLock { state in
            if state.version != version {
                state.entries.removeAll(keepingCapacity: true)
                state.version = version
            }
            // Bounded: when full, start again rather than track recency (ids are a few per connected calendar).
            if state.entries.count >= capacity { state.entries.removeAll(keepingCapacity: true) }
            state.entries[key] = credential
        }
    }

    /// Number of ids held (for tests and metrics).
    public var count: Int { state.withLock { $0.entries.count } }

    /// Cache key of a channel or subscription id under its verifier.
    static func key(verifier: String, id: String) -> String { verifier + ":" + id }
}
