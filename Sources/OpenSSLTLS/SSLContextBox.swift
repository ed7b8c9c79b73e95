import COpenSSL

/// Owns one configured `SSL_CTX` and the ALPN list its select callback reads.
///
/// Handlers keep the box alive for as long as their `SSL` object exists, so the callback's `arg` pointer stays valid
/// even after a reload has replaced the box in `TLSServerContext` (each `SSL` also holds its own reference to the
/// `SSL_CTX`, which is freed when the last of them lets go).
final class SSLContextBox: @unchecked Sendable {
    // @unchecked: an SSL_CTX may be shared between threads once configured (OpenSSL locks its session cache and
    // reference counts); this box never changes it after init.
    let ctx: OpaquePointer
    let info: TLSCertificateInfo
    /// Our ALPN protocols in wire format (length-prefixed names), in preference order.
    let alpnWire: UnsafeMutableBufferPointer<UInt8>

    init(ctx: OpaquePointer, info: TLSCertificateInfo, alpnWire: [UInt8]) {
        self.ctx = ctx
        self.info = info
        self.alpnWire = .allocate(capacity: alpnWire.count)
        _ = self.alpnWire.initialize(from: alpnWire)
        if !alpnWire.isEmpty {
            SSL_CTX_set_alpn_select_cb(ctx, SSLContextBox.selectALPN, Unmanaged.passUnretained(self).toOpaque())
        }
    }

    deinit {
        SSL_CTX_free(ctx)
        alpnWire.deallocate()
    }

    /// The ALPN select callback: our first protocol the client also offers (server preference), otherwise no ALPN
    /// at all (`SSL_TLSEXT_ERR_NOACK`), so a client that offers only `h2` still gets HTTP/1.1 without the extension.
    /// A C function pointer: it captures nothing and finds the box through `arg`.
    static let selectALPN:
        @convention(c) (
            OpaquePointer?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, UnsafeMutablePointer<UInt8>?,
            UnsafePointer<UInt8>?, UInt32, UnsafeMutableRawPointer?
        ) -> Int32 = { _, out, outLength, clientList, clientLength, arg in
            guard let out, let outLength, let clientList, clientLength > 0, let arg else { return SSL_TLSEXT_ERR_NOACK }
            let box = Unmanaged<SSLContextBox>.fromOpaque(arg).takeUnretainedValue()
            let ours = box.alpnWire
            let oursCount = ours.count
            // Walk our list in order and look each name up in the client's; both are short (a few names).
            var serverOffset = 0
            while serverOffset < oursCount {
                let length = Int(ours[serverOffset])
                let name = UnsafeBufferPointer(rebasing: ours[(serverOffset + 1)..<(serverOffset + 1 + length)])
                var clientOffset = 0
                while clientOffset < Int(clientLength) {
                    let candidateLength = Int(clientList[clientOffset])
                    guard clientOffset + 1 + candidateLength <= Int(clientLength) else { break }
                    let candidate = UnsafeBufferPointer(start: clientList + clientOffset + 1, count: candidateLength)
                    if candidateLength == length, candidate.elementsEqual(name) {
                        // Points into the client's list, which OpenSSL keeps until it has copied the choice.
                        out.pointee = clientList + clientOffset + 1
                        outLength.pointee = UInt8(candidateLength)
                        return SSL_TLSEXT_ERR_OK
                    }
                    clientOffset += 1 + candidateLength
                }
                serverOffset += 1 + length
            }
            return SSL_TLSEXT_ERR_NOACK
        }

    /// ALPN wire format: each name prefixed by its length; empty and over-long names are dropped.
    static func alpnWireFormat(_ protocols: [String]) -> [UInt8] {
        var wire: [UInt8] = []
        for name in protocols where !name.isEmpty && name.utf8.count < 256 {
            wire.append(UInt8(name.utf8.count))
            wire += Array(name.utf8)
        }
        return wire
    }
}
