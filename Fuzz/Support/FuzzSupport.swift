import CLibFuzzer

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Hands the process to libFuzzer, which calls `testOneInput` with each input it tries.
///
/// SwiftPM gives an executable its own `main` (it renames the module's entry point and links it as `main`), so
/// libFuzzer's `main` is never the one that runs: this one calls libFuzzer's driver instead. The target must still
/// define `LLVMFuzzerTestOneInput` (`@_cdecl`), which libFuzzer's own `main` refers to.
public func runFuzzer(_ testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, testOneInput))
}

/// Stops the fuzzer with `message` when an invariant of the code under test is broken. libFuzzer reports the trap
/// as a crash and keeps the input. Only harnesses trap: the parsers themselves report bad input as errors.
public func require(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID,
    line: UInt = #line
) {
    if !condition() { fatalError("invariant broken: \(message())", file: file, line: line) }
}

/// One fuzz input and the ways a harness feeds it: whole, cut at one point, in small pieces and byte by byte.
/// Every choice comes from the input's own hash, so an input that fails replays the same way.
public struct FuzzInput {
    public let bytes: [UInt8]
    /// FNV-1a of the bytes.
    public let seed: UInt64

    public init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        self.init(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    }

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        self.seed = hash
    }

    /// A cut point in `0...bytes.count`.
    public var splitPoint: Int { Int(seed % UInt64(bytes.count + 1)) }

    /// Piece sizes that add up to `bytes.count`: all at once, cut at `splitPoint`, pieces of 1 to 17 bytes, and
    /// byte by byte when there are at most `byteByByteLimit` bytes.
    public func feedings(byteByByteLimit: Int = 1024) -> [[Int]] {
        let count = bytes.count
        var plans = [[count], [splitPoint, count - splitPoint]]
        var generator = SplitMix64(seed: seed)
        var pieces: [Int] = []
        var left = count
        while left > 0 {
            let size = min(left, Int(generator.next() % 17) + 1)
            pieces.append(size)
            left -= size
        }
        plans.append(pieces)
        if count <= byteByByteLimit { plans.append(Array(repeating: 1, count: count)) }
        return plans
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): small and seedable.
public struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
