/// Byte-wise searching in UTF-8 text.
///
/// `String.contains(_:)` compares Characters, which means grapheme breaking over the whole input;
/// on 16 KiB of hostile text that costs milliseconds. The needles here are ASCII, so comparing
/// UTF-8 bytes gives the same answer at a fraction of the cost.
enum ByteSearch {
    /// The offset of the first occurrence of `needle` in `haystack`.
    static func firstIndex(of needle: String, in haystack: [UInt8]) -> Int? {
        let pattern = Array(needle.utf8)
        guard let first = pattern.first, haystack.count >= pattern.count else { return nil }
        var start = 0
        let last = haystack.count - pattern.count
        while start <= last {
            if haystack[start] == first {
                var offset = 1
                while offset < pattern.count, haystack[start + offset] == pattern[offset] { offset += 1 }
                if offset == pattern.count { return start }
            }
            start += 1
        }
        return nil
    }
}

extension StringProtocol {
    /// True when the UTF-8 bytes of `needle` occur in this text (no Unicode-aware comparison).
    func containsBytes(_ needle: String) -> Bool {
        ByteSearch.firstIndex(of: needle, in: Array(utf8)) != nil
    }
}
