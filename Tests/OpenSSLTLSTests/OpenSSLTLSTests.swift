import Testing

/// Every OpenSSLTLS suite nests in here so they run one at a time: each test starts a server and drives blocking
/// clients, and the machine has two cores shared with other builds.
@Suite(.serialized)
struct OpenSSLTLSTests {}
