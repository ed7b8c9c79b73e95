import CCurl
import Synchronization

/// `curl_global_init` exactly once per process, before the first handle.
///
/// curl_global_init is not thread-safe on its own; the mutex makes concurrent first clients wait for one init.
enum CurlGlobal {
    private static let initialized = Mutex(false)

    static func initialize() throws(CurlHTTPError) {
        let code = initialized.withLock { done -> CURLcode in
            guard !done else { return CURLE_OK }
            let code = curl_global_init(calgate_curl_global_all())
            done = code == CURLE_OK
            return code
        }
        guard code == CURLE_OK else {
            throw CurlHTTPError(.other, "curl_global_init failed: \(String(cString: curl_easy_strerror(code)))")
        }
    }
}
