/// Bytes appended through a raw pointer: a byte is a store and an increment, a run of bytes one copy. The store's
/// writer builds every JSON line in one; the same appends on an `Array` cost it several times as many
/// instructions (uniqueness and capacity checks, generic `append(contentsOf:)`), measured with callgrind.
///
/// Not copyable, so it owns its storage outright: no reference counting and no copy-on-write checks per append.
public struct ByteSink: ~Copyable, @unchecked Sendable {
    // @unchecked: the storage belongs to this one value, which cannot be copied.
    private var base: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    public private(set) var count = 0

    public init(capacity: Int = 256) {
        self.capacity = max(capacity, 16)
        base = .allocate(capacity: self.capacity)
    }

    deinit {
        base.deallocate()
    }

    @inline(__always)
    public mutating func append(_ byte: UInt8) {
        if _slowPath(count == capacity) { grow(toHold: count + 1) }
        base[count] = byte
        count += 1
    }

    @inline(__always)
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        if _slowPath(count + bytes.count > capacity) { grow(toHold: count + bytes.count) }
        UnsafeMutableRawPointer(base + count).copyMemory(from: source, byteCount: bytes.count)
        count += bytes.count
    }

    @inline(__always)
    public mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        append(UnsafeRawBufferPointer(bytes))
    }

    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    public mutating func append(_ literal: StaticString) {
        // `withUTF8Buffer`, not `utf8Start`: a static string may hold a single scalar instead of a pointer.
        literal.withUTF8Buffer { append(UnsafeRawBufferPointer($0)) }
    }

    /// Appends `count` bytes that `write` stores at the pointer it is given (encoders that write in place).
    public mutating func append(count: Int, _ write: (UnsafeMutablePointer<UInt8>) -> Void) {
        if _slowPath(self.count + count > capacity) { grow(toHold: self.count + count) }
        write(base + self.count)
        self.count += count
    }

    /// A string's UTF-8, as it is (no escaping).
    public mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append($0) }
    }

    public func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// Forgets the bytes, keeping the storage.
    public mutating func removeAll() {
        count = 0
    }

    /// The bytes as an array (a copy).
    public var array: [UInt8] {
        withUnsafeBytes { Array($0) }
    }

    /// Appends the bytes to an array: one copy.
    public func append(to buffer: inout [UInt8]) {
        withUnsafeBytes { buffer.append(contentsOf: $0) }
    }

    private mutating func grow(toHold needed: Int) {
        let newCapacity = max(needed, capacity * 2)
        let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        grown.update(from: base, count: count)
        base.deallocate()
        base = grown
        capacity = newCapacity
    }
}
