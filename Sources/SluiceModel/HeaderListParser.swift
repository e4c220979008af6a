/// Reads a header list as JSON text, `[["name","value"],...]`: what `JSONObject.headersJSON` writes, and any other
/// JSON of that shape (whitespace between tokens, every string escape).
///
/// Hand-written on bytes because the search indexer and every flow shown in detail read headers back this way:
/// `JSONSerialization` and its dynamic casts cost about 140,000 instructions per exchange, more than relaying the
/// exchange did.
struct HeaderListParser {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var position = 0

    /// The fields of `json`; nil when it is not exactly such a list.
    static func parse(_ json: String) -> [HeaderField]? {
        var json = json
        return json.withUTF8 { utf8 in
            var parser = HeaderListParser(bytes: utf8)
            return parser.list()
        }
    }

    private init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    private mutating func list() -> [HeaderField]? {
        guard take(UInt8(ascii: "[")) else { return nil }
        var fields: [HeaderField] = []
        if !take(UInt8(ascii: "]")) {
            repeat {
                guard take(UInt8(ascii: "[")), let name = string(), take(UInt8(ascii: ",")), let value = string(),
                    take(UInt8(ascii: "]"))
                else { return nil }
                fields.append(HeaderField(name: name, value: value))
            } while take(UInt8(ascii: ","))
            guard take(UInt8(ascii: "]")) else { return nil }
        }
        skipWhitespace()
        return position == bytes.count ? fields : nil
    }

    /// Skips whitespace, then consumes `byte` if it comes next.
    private mutating func take(_ byte: UInt8) -> Bool {
        skipWhitespace()
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): position += 1
            default: return
            }
        }
    }

    /// A JSON string. Runs without escapes are copied whole; the bytes come from a Swift string, so they are
    /// valid UTF-8 already.
    private mutating func string() -> String? {
        guard take(UInt8(ascii: "\"")) else { return nil }
        var start = position
        // Filled only once an escape is met (an empty array allocates nothing), and appended to in place: a copy per
        // escape would make a value of many quotes or backslashes cost its length squared.
        var decoded: [UInt8] = []
        var escapedAny = false
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                let run = UnsafeBufferPointer(rebasing: bytes[start..<position])
                position += 1
                guard escapedAny else { return String(decoding: run, as: UTF8.self) }
                decoded.append(contentsOf: run)
                return String(decoding: decoded, as: UTF8.self)
            }
            if byte < 0x20 { return nil }  // a raw control character: not JSON
            guard byte == UInt8(ascii: "\\") else {
                position += 1
                continue
            }
            escapedAny = true
            decoded.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<position]))
            position += 1
            guard escape(into: &decoded) else { return nil }
            start = position
        }
        return nil  // no closing quote
    }

    /// Decodes the escape after a backslash.
    private mutating func escape(into output: inout [UInt8]) -> Bool {
        guard position < bytes.count else { return false }
        let letter = bytes[position]
        position += 1
        switch letter {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): output.append(letter)
        case UInt8(ascii: "b"): output.append(0x08)
        case UInt8(ascii: "f"): output.append(0x0C)
        case UInt8(ascii: "n"): output.append(0x0A)
        case UInt8(ascii: "r"): output.append(0x0D)
        case UInt8(ascii: "t"): output.append(0x09)
        case UInt8(ascii: "u"):
            guard let unit = hexUnit() else { return false }
            var scalar: Unicode.Scalar?
            if UTF16.isLeadSurrogate(unit) {
                // Only as the first half of a pair: `\ud83d\ude42`.
                guard position + 2 <= bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u")
                else { return false }
                position += 2
                guard let trail = hexUnit(), UTF16.isTrailSurrogate(trail) else { return false }
                scalar = Unicode.Scalar(0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(trail) - 0xDC00))
            } else {
                scalar = Unicode.Scalar(unit)  // nil for a lone trail surrogate
            }
            guard let scalar else { return false }
            UTF8.encode(scalar) { output.append($0) }
        default:
            return false
        }
        return true
    }

    /// Four hex digits.
    private mutating func hexUnit() -> UInt16? {
        guard position + 4 <= bytes.count else { return nil }
        var unit: UInt16 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            unit = unit << 4 | UInt16(digit)
            position += 1
        }
        return unit
    }
}
