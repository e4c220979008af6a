import FuzzHTTP1
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzRequests(FuzzInput(data, size))
    return 0
}

runFuzzer { testOneInput($0, $1) }
