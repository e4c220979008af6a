import SluiceCore
import Testing

@testable import SluiceAPI

/// Choosing ports for session proxies, without sockets.
@Suite struct ProxyPortPickerTests {
    @Test func goesRoundTheRangeFromWhereItStopped() {
        var picker = ProxyPortPicker(range: PortRange(100, 102))
        #expect(picker.next(excluding: []) == 100)
        #expect(picker.next(excluding: []) == 101)
        #expect(picker.next(excluding: []) == 102)
        // Round again: a port let go is not the next one handed out while others wait their turn.
        #expect(picker.next(excluding: []) == 100)
    }

    @Test func skipsWhatIsTakenAndSaysWhenAllIs() {
        var picker = ProxyPortPicker(range: PortRange(100, 103))
        #expect(picker.next(excluding: [100, 101]) == 102)
        #expect(picker.next(excluding: [100, 101, 102]) == 103)
        #expect(picker.next(excluding: [100, 101, 102, 103]) == nil)
        #expect(picker.next(excluding: [101, 102, 103, 9999]) == 100)
    }

    @Test func aRangeOfOnePort() {
        var picker = ProxyPortPicker(range: PortRange(65535, 65535))
        #expect(picker.next(excluding: []) == 65535)
        #expect(picker.next(excluding: []) == 65535)
        #expect(picker.next(excluding: [65535]) == nil)
    }
}
