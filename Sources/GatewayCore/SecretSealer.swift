/// Encrypts secrets (OAuth tokens, channel tokens, clientState, Redtail UserKeys) before they reach the store.
///
/// The store only ever sees sealed bytes. `context` binds a sealed value to where it belongs (for example
/// `google_channel:<id>`), so a value copied into another row does not open.
public protocol SecretSealer: Sendable {
    /// Seals `plaintext` for `context`.
    func seal(_ plaintext: [UInt8], context: String) throws -> [UInt8]
    /// Opens a value sealed for `context`; throws when it was tampered with, moved, or sealed with another key.
    func open(_ sealed: [UInt8], context: String) throws -> [UInt8]
}
