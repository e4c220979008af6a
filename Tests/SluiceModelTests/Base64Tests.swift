import Foundation
import Testing

@testable import SluiceModel

@Suite struct Base64Tests {
    @Test func rfc4648Vectors() {
        let vectors = ["": "", "f": "Zg==", "fo": "Zm8=", "foo": "Zm9v", "foob": "Zm9vYg==", "fooba": "Zm9vYmE=", "foobar": "Zm9vYmFy"]
        for (plain, encoded) in vectors {
            #expect(Base64.encode(Array(plain.utf8)) == encoded)
        }
    }

    /// Every length up to a few steps of the six-byte loop, so each way in and out of the three loops is taken,
    /// against Foundation's encoder.
    @Test func agreesWithFoundationAtEveryLengthAndByteValue() {
        var generator = SystemRandomNumberGenerator()
        for length in 0...70 {
            for _ in 0..<20 {
                let bytes = (0..<length).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
                #expect(Base64.encode(bytes) == Data(bytes).base64EncodedString(), "length \(length)")
            }
        }
        let everyByte = Array(0...255).map(UInt8.init) + Array((0...255).reversed()).map(UInt8.init)
        #expect(Base64.encode(everyByte) == Data(everyByte).base64EncodedString())
    }

    /// The 8-byte loads must stay inside the input: an encoding that ends at the end of an allocation.
    @Test func readsNothingPastTheInput() {
        for length in 1...16 {
            let input = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 1)
            defer { input.deallocate() }
            for index in 0..<length { input[index] = UInt8(truncatingIfNeeded: index &* 37) }
            let output = UnsafeMutablePointer<UInt8>.allocate(capacity: Base64.encodedCount(length))
            defer { output.deallocate() }
            Base64.encode(UnsafeRawBufferPointer(input), to: output)
            let text = String(decoding: UnsafeBufferPointer(start: output, count: Base64.encodedCount(length)), as: UTF8.self)
            #expect(text == Data(input).base64EncodedString())
        }
    }

    @Test func jsonObjectWritesTheEncodingAsAString() throws {
        let payload = Data((0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let line = JSONObject(reservingCapacity: 16).base64("payload", payload).line
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(parsed["payload"] as? String == payload.base64EncodedString())
    }
}
