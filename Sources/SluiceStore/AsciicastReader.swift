import Foundation
import SluiceModel

/// Reads an asciicast file: version 2 (what Sluice writes) or 3 (asciinema 3.0's, with intervals between events
/// and a `term` object), into its header and events with times since the start.
///
/// A recording being written when Sluice crashed ends in a torn line; that line is left out (`tornLastLine`) and
/// the rest plays. Any other line that is not an event is an error that names it.
public enum AsciicastReader {
    /// A parsed recording.
    public struct Recording: Sendable, Equatable {
        public var header: AsciicastHeader
        public var events: [AsciicastEvent]
        /// The file ended inside a line, which was left out.
        public var tornLastLine: Bool
    }

    /// Reads the file at `path`.
    public static func read(path: String) throws(AsciicastError) -> Recording {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw AsciicastError(line: nil, "cannot read \(path): \(describeFileError(error))")
        }
        return try parse(data)
    }

    public static func parse(_ data: Data) throws(AsciicastError) -> Recording {
        let bytes = [UInt8](data)
        var lines: [(number: Int, range: Range<Int>)] = []
        var start = 0
        var number = 1
        for (index, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") {
            lines.append((number, start..<index))
            start = index + 1
            number += 1
        }
        let unterminated = start < bytes.count
        if unterminated { lines.append((number, start..<bytes.count)) }

        var header: AsciicastHeader?
        var events: [AsciicastEvent] = []
        var torn = false
        var time = 0.0
        for (position, line) in lines.enumerated() {
            let text = bytes[line.range]
            if text.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\t") }) {
                continue
            }
            let isLast = position == lines.count - 1
            do {
                if let known = header {
                    // v3 allows comment lines between events.
                    if known.version == 3 && text.first == UInt8(ascii: "#") { continue }
                    var event = try parseEvent(Data(text))
                    if known.version == 3 {
                        time += event.time
                    } else {
                        time = max(time, event.time)  // players assume time never goes back
                    }
                    event.time = time
                    events.append(event)
                } else {
                    header = try parseHeader(Data(text))
                }
            } catch {
                // Only a crash mid-write leaves an unterminated bad line; before it, everything was whole.
                if isLast && unterminated && header != nil {
                    torn = true
                    break
                }
                throw AsciicastError(line: line.number, error.message)
            }
        }
        guard let header else { throw AsciicastError(line: nil, "empty file: no asciicast header") }
        return Recording(header: header, events: events, tornLastLine: torn)
    }

    private static func parseHeader(_ data: Data) throws(AsciicastError) -> AsciicastHeader {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw AsciicastError(line: nil, "not an asciicast header (a JSON object with version, width, height)")
        }
        guard let version = object["version"] as? Int else { throw AsciicastError(line: nil, "header has no version") }
        let width: Int?
        let height: Int?
        var term: String?
        let env = object["env"] as? [String: Any]
        switch version {
        case 2:
            width = object["width"] as? Int
            height = object["height"] as? Int
            term = env?["TERM"] as? String
        case 3:
            let termObject = object["term"] as? [String: Any]
            width = termObject?["cols"] as? Int
            height = termObject?["rows"] as? Int
            term = termObject?["type"] as? String
        default:
            throw AsciicastError(line: nil, "asciicast version \(version) is not supported (2 and 3 are)")
        }
        guard let width, let height, width > 0, height > 0 else {
            throw AsciicastError(line: nil, "header has no terminal size (width and height)")
        }
        return AsciicastHeader(
            version: version, width: width, height: height, timestamp: (object["timestamp"] as? NSNumber)?.int64Value,
            term: term, shell: env?["SHELL"] as? String, title: object["title"] as? String,
            idleTimeLimit: (object["idle_time_limit"] as? NSNumber)?.doubleValue
        )
    }

    private static func parseEvent(_ data: Data) throws(AsciicastError) -> AsciicastEvent {
        guard let array = try? JSONSerialization.jsonObject(with: data) as? [Any] else {
            throw AsciicastError(line: nil, "not an event: expected [time, code, data]")
        }
        guard array.count >= 3 else { throw AsciicastError(line: nil, "event has \(array.count) fields, expected 3") }
        guard let number = array[0] as? NSNumber, number.doubleValue.isFinite, number.doubleValue >= 0 else {
            throw AsciicastError(line: nil, "event time is not a number of seconds")
        }
        guard let code = array[1] as? String else { throw AsciicastError(line: nil, "event code is not a string") }
        guard let text = array[2] as? String else { throw AsciicastError(line: nil, "event data is not a string") }
        return AsciicastEvent(time: number.doubleValue, code: AsciicastEvent.Code(code), data: text)
    }
}
