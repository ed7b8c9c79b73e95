/// Comparisons whose running time does not depend on where two secrets differ.
public enum ConstantTime {
    /// True when `a` and `b` are byte-for-byte equal; the loop always runs over the longer input.
    public static func equals<A: Collection<UInt8>, B: Collection<UInt8>>(_ a: A, _ b: B) -> Bool {
        // Walks both collections in place (no copies: this runs for every webhook's token).
        var difference = UInt64(truncatingIfNeeded: a.count ^ b.count)
        var left = a.startIndex
        var right = b.startIndex
        while left != a.endIndex || right != b.endIndex {
            var x: UInt8 = 0
            var y: UInt8 = 0
            if left != a.endIndex {
                x = a[left]
                a.formIndex(after: &left)
            }
            if right != b.endIndex {
                y = b[right]
                b.formIndex(after: &right)
            }
            difference |= UInt64(x ^ y)
        }
        return difference == 0
    }

    /// String form of `equals`, over UTF-8 bytes.
    public static func equals(_ a: String, _ b: String) -> Bool {
        equals(a.utf8, b.utf8)
    }
}
