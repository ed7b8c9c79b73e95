import CCurl
import Foundation

/// One request running on an easy handle, plus what curl's callbacks have collected so far.
///
/// Confined to the curl thread (not Sendable): the worker creates it there, and curl calls the callbacks from
/// `curl_multi_perform` on that same thread, reaching it through an unretained `Unmanaged` pointer while the
/// worker's `running` table keeps it alive.
final class CurlTransfer {
    let id: Int
    let handle: UnsafeMutableRawPointer
    let method: String
    let redactedURL: String
    /// The URL's query and user-info, kept only to scrub them from curl's error text.
    private let sensitiveURLParts: [String]
    let continuation: CheckedContinuation<CurlHTTPResponse, any Error>
    let limit: Int
    /// Owned here because curl only borrows the list; freed after `curl_easy_reset` drops curl's pointer to it.
    var headerList: UnsafeMutablePointer<curl_slist>?
    var headers: [CurlHTTPHeader] = []
    var body: [UInt8] = []
    var tooLarge = false
    let errorBuffer: UnsafeMutablePointer<CChar>

    init(id: Int, handle: UnsafeMutableRawPointer, request: CurlHTTPRequest, limit: Int, continuation: CheckedContinuation<CurlHTTPResponse, any Error>) {
        self.id = id
        self.handle = handle
        self.method = request.method
        self.redactedURL = CurlHTTPError.redact(request.url)
        self.sensitiveURLParts = CurlHTTPError.sensitiveParts(of: request.url)
        self.limit = limit
        self.continuation = continuation
        let size = Int(calgate_curl_error_size()) + 1
        errorBuffer = .allocate(capacity: size)
        errorBuffer.initialize(repeating: 0, count: size)
    }

    deinit {
        if let headerList { curl_slist_free_all(headerList) }
        errorBuffer.deallocate()
    }

    /// `GET https://host/path`, safe to log.
    var what: String { "\(method) \(redactedURL)" }

    /// curl's error text without the URL's query or credentials, should curl ever quote them.
    func scrub(_ text: String) -> String {
        sensitiveURLParts.reduce(text) { $0.replacingOccurrences(of: $1, with: "…") }
    }

    /// Takes one header line; a status line starts a new response, so headers of 1xx responses are dropped.
    func receiveHeaderLine(_ bytes: UnsafeBufferPointer<UInt8>) {
        // Trim the line end as bytes: decoded, "\r\n" is one Character and would slip past a Character check.
        var end = bytes.count
        while end > 0, bytes[end - 1] == UInt8(ascii: "\r") || bytes[end - 1] == UInt8(ascii: "\n") { end -= 1 }
        let line = String(decoding: UnsafeBufferPointer(rebasing: bytes[..<end]), as: UTF8.self)
        if line.hasPrefix("HTTP/") {
            headers.removeAll(keepingCapacity: true)
        } else if line.isEmpty {
            // End of a header block: size the body buffer once from Content-Length (-1 when unknown).
            var length: curl_off_t = -1
            if calgate_curl_easy_getinfo_off(handle, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) == CURLE_OK, length > 0 {
                body.reserveCapacity(min(Int(length), limit))
            }
        } else if let colon = line.firstIndex(of: ":") {
            let name = line[..<colon]
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            headers.append(CurlHTTPHeader(String(name), value))
        }
        // Obsolete folded continuation lines carry nothing worth keeping.
    }

    /// Takes body bytes; false means over the limit, and the caller tells curl to abort.
    func receiveBody(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard bytes.count <= limit - body.count else {
            tooLarge = true
            return false
        }
        body.append(contentsOf: bytes)
        return true
    }
}

/// CURLOPT_WRITEFUNCTION: returning fewer bytes than given makes curl abort with CURLE_WRITE_ERROR.
func curlReceiveBody(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?) -> Int {
    guard let context else { return 0 }
    let length = size * count
    guard length > 0, let data else { return length }
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
    let accepted = data.withMemoryRebound(to: UInt8.self, capacity: length) {
        transfer.receiveBody(UnsafeBufferPointer(start: $0, count: length))
    }
    return accepted ? length : 0
}

/// CURLOPT_HEADERFUNCTION: one complete header line per call (status line and blank line included).
func curlReceiveHeader(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?) -> Int {
    guard let context else { return 0 }
    let length = size * count
    guard length > 0, let data else { return length }
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
    data.withMemoryRebound(to: UInt8.self, capacity: length) {
        transfer.receiveHeaderLine(UnsafeBufferPointer(start: $0, count: length))
    }
    return length
}
