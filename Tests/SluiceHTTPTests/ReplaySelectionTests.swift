import SluiceHTTP
import SluiceModel
import Testing

@Suite struct ReplaySelectionTests {
    private func ids(_ text: String) throws -> [Int64] {
        try ReplaySelection(parsing: text).ids.map(\.rawValue)
    }

    private func error(_ text: String) -> String? {
        do {
            _ = try ReplaySelection(parsing: text)
            return nil
        } catch {
            return error.description
        }
    }

    @Test func singleIdsRangesAndListsMix() throws {
        #expect(try ids("42") == [42])
        #expect(try ids("10-13") == [10, 11, 12, 13])
        #expect(try ids("5-5") == [5])
        #expect(try ids("3,7-9") == [3, 7, 8, 9])
        #expect(try ids(" 3 , 7 - 9 ") == [3, 7, 8, 9], "spaces around items are allowed")
    }

    @Test func orderIsKeptAndRepeatsAreReplayedOnce() throws {
        #expect(try ids("9,2,5") == [9, 2, 5])
        #expect(try ids("1-3,2,3-4,1") == [1, 2, 3, 4])
    }

    @Test(arguments: [
        ("", "empty selection"),
        ("   ", "empty selection"),
        ("1,,2", "empty item"),
        ("3,", "empty item"),
        ("9-3", "reversed range '9-3'"),
        ("abc", "'abc' is not a flow id"),
        ("1-x", "'1-x' is not a flow id"),
        ("-3", "'-3' is not a flow id"),
        ("3-", "'3-' is not a flow id"),
        ("1-2-3", "'1-2-3' is not a flow id"),
        ("+5", "'+5' is not a flow id"),
        ("0", "flow ids start at 1"),
        ("99999999999999999999", "too large"),
        ("1-100001", "more than 100000 flows"),
        ("1-60000,60001-100001", "more than 100000 flows"),
    ])
    func badSelectionsSayWhatIsWrongInOneLine(_ text: String, _ fragment: String) {
        let message = error(text)
        #expect(message?.contains(fragment) == true, "\(text): \(message ?? "accepted")")
        #expect(message?.contains("\n") == false)
    }

    @Test func theLimitItselfIsAccepted() throws {
        #expect(try ids("1-100000").count == 100_000)
        #expect(try ReplaySelection(parsing: "1-100000").ids.last == FlowID(100_000))
    }

    @Test func aHugeRangeIsRefusedWithoutBeingBuilt() {
        // Would take minutes and gigabytes if the ids were made before counting.
        #expect(error("1-9223372036854775807")?.contains("more than") == true)
        #expect(error("5,1-9223372036854775807")?.contains("more than") == true)
    }
}
