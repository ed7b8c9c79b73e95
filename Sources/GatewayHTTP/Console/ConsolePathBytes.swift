/// The bytes a console path given as `next` after a code login may hold.
enum ConsolePathBytes {
    /// Letters, digits, `-`, `_`, `.` and `/`.
    static func isPathByte(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
            || byte == 0x2D || byte == 0x5F || byte == 0x2E || byte == 0x2F
    }
}
