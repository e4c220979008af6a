import FuzzHTTP1
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzResponses(FuzzInput(data, size))
    return 0
}

runFuzzer { testOneInput($0, $1) }
