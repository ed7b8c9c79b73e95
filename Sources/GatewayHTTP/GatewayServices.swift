import CalgateMacros
import GatewayCore
import Logging
import OpenSSLTLS
import ServiceLifecycle
import UnixSignals

/// Keeps the store open while the gateway runs, and closes it (flushing queued inbox appends) at shutdown.
///
/// Placed first in the service group so it shuts down last, after the HTTP server finished its requests.
@MemberwiseInit
public struct StoreLifecycleService: Service {
    let store: any GatewayStore
    let logger: Logger

    /// Waits for shutdown, then closes the store.
    public func run() async throws {
        try? await gracefulShutdown()
        await store.close()
        logger.info("store closed")
    }
}

/// Reloads the TLS certificate on SIGHUP; open connections keep theirs, new handshakes get the new one.
@MemberwiseInit
public struct CertificateReloadService: Service {
    let tlsContext: TLSServerContext
    let metrics: GatewayMetrics
    let logger: Logger

    /// Waits for SIGHUP until shutdown.
    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            reload()
        }
    }

    /// Reloads once; a bad file keeps the old certificate and is logged with the file's name.
    public func reload() {
        do {
            try tlsContext.reload()
            metrics.certificateReloaded(success: true)
            let info = tlsContext.certificateInfo
            logger.notice(
                "certificate reloaded",
                metadata: [
                    "tls.subject": "\(info.subject)", "tls.not_after": "\(info.notAfter)", "tls.sha256": "\(info.sha256Fingerprint)",
                ])
        } catch {
            metrics.certificateReloaded(success: false)
            logger.error("certificate reload failed; still serving the previous certificate", metadata: ["error": "\(error)"])
        }
    }
}
