/// Comparisons whose running time does not depend on where two secrets differ.
public enum ConstantTime {
    /// True when `a` and `b` are byte-for-byte equal; the loop always runs over the longer input.
    public static func equals<A: Collection<UInt8>, B: Collection<UInt8>>(_ a: A, _ b: B) -> Bool {
        let left = Array(a)
        let right = Array(b)
        var difference = UInt64(truncatingIfNeeded: left.count ^ right.count)
        let length = max(left.count, right.count)
        for i in 0..<length {
            let x = i < left.count ? left[i] : 0
            let y = i < right.count ? right[i] : 0
            difference |= UInt64(x ^ y)
        }
        return difference == 0
    }

    /// String form of `equals`, over UTF-8 bytes.
    public static func equals(_ a: String, _ b: String) -> Bool {
        equals(a.utf8, b.utf8)
    }
}
